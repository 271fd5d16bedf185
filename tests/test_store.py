"""The TinyDB file: durable across restarts, refuses files that are not its own, leaves no litter."""

import json
from contextlib import contextmanager

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.stores import StoreError

from .conftest import bearer, get_token, make_settings
from .helpers import (
    APPOINTMENTS, PEG, SLOTS, assert_error, assert_oauth_error, book, create_slot, data_of, get_one, world_view,
)


def _app(path):
    return create_app(make_settings(db_path=str(path)))


@contextmanager
def _session(path, credentials=None):
    """A server on the file, closed (its file lock released) when the block ends."""
    app = _app(path)
    try:
        with app.test_client() as client:
            yield client, bearer(get_token(client) if credentials is None else get_token(client, credentials))
    finally:
        app.sandbox.tenants.store.close()


def test_a_booking_survives_a_restart(tmp_path):
    db = tmp_path / "db.json"
    with _session(db) as (client, headers):
        slot = create_slot(client, headers)
        booked = data_of(book(client, headers, slot["pd_appointment_uuid"], PEG))
        data_of(client.delete(f"{SLOTS}{doc.DELETABLE_SLOT}", headers=headers))
        view = world_view(client, headers)

    with _session(db) as (client, headers):  # the next server on the same file
        assert get_one(client, headers, slot["pd_appointment_uuid"]) == booked
        assert_error(client.get(f"{APPOINTMENTS}{doc.DELETABLE_SLOT}", headers=headers), 404, "pd_appointment_uuid")
        assert world_view(client, headers) == view


def test_clients_tokens_and_tenants_survive_a_restart(tmp_path):
    db = tmp_path / "db.json"
    with _session(db, ("ci-job", "s3cret")) as (client, headers):
        slot = create_slot(client, headers)

    with _session(db) as (client2, _):
        # The old token is still valid on the new server and sees the same tenant.
        assert get_one(client2, headers, slot["pd_appointment_uuid"]) == slot
        # The client registered itself: the secret is remembered.
        assert_oauth_error(client2.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                        auth=("ci-job", "wrong")), 401, "invalid_client")
        assert get_token(client2, ("ci-job", "s3cret"))


def test_the_file_is_json_and_marked_as_ours(tmp_path):
    db = tmp_path / "db.json"
    with _session(db) as (client, headers):
        create_slot(client, headers)
    data = json.loads(db.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    assert "pokitdok-sandbox" in json.dumps(data.get("_meta"))


@pytest.mark.parametrize("content", [
    b"{not json",
    b'{"x": 1}',
    b"[1, 2, 3]",
    b"null",
    b'{"_meta": {"format": {"name": "something-else", "version": 1}}}',
    b"\xff\xfe\x00garbage",
])
def test_a_file_that_is_not_ours_is_refused_and_left_alone(tmp_path, content):
    db = tmp_path / "db.json"
    db.write_bytes(content)
    with pytest.raises(StoreError) as refused:
        _app(db)
    assert str(db) in str(refused.value)
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["db.json"]


def test_a_newer_format_version_is_refused(tmp_path):
    db = tmp_path / "db.json"
    content = b'{"_meta": {"format": {"name": "pokitdok-sandbox", "version": 999}}}'
    db.write_bytes(content)
    with pytest.raises(StoreError) as refused:
        _app(db)
    assert str(db) in str(refused.value)
    assert db.read_bytes() == content


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(StoreError):
        _app(tmp_path)


def test_a_missing_directory_is_created(tmp_path):
    db = tmp_path / "deeper" / "still" / "db.json"
    with _session(db) as (client, headers):
        assert data_of(client.get("/api/v4/schedule/schedulers/", headers=headers))
    assert db.exists()


def test_writes_leave_no_temporary_files(tmp_path):
    db = tmp_path / "db.json"
    with _session(db) as (client, headers):
        slot = create_slot(client, headers)
        data_of(book(client, headers, slot["pd_appointment_uuid"], PEG))
        data_of(client.delete(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=headers))
        data_of(client.delete(f"{SLOTS}{slot['pd_appointment_uuid']}", headers=headers))
        data_of(client.post("/api/v4/sandbox/seed", headers=headers, json={"seed": 2, "slots": 10}))
        data_of(client.post("/api/v4/sandbox/reset", headers=headers))
    litter = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]
    assert litter == []
    assert db.exists()
    json.loads(db.read_text(encoding="utf-8"))  # always a whole, valid file


def test_in_memory_sandboxes_share_nothing():
    first, second = create_app(make_settings()), create_app(make_settings())
    with first.test_client() as one, second.test_client() as two:
        slot = create_slot(one, bearer(get_token(one)))
        assert_error(two.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=bearer(get_token(two))), 404,
                     "pd_appointment_uuid")


def test_the_backend_is_chosen_by_the_locations_scheme_from_one_table(monkeypatch, tmp_path):
    """`BACKENDS` maps URL schemes to backends for open_store, store_class and the CLI alike; any
    other location is a TinyDB file, a path with a colon in it included."""
    from pokitdok_sandbox import stores
    from pokitdok_sandbox.stores.postgres import PostgresStore
    from pokitdok_sandbox.stores.tinydb import TinyDBStore

    assert stores.backend_for("postgresql://u@h/db") is PostgresStore
    assert stores.backend_for("POSTGRES://u@h/db") is PostgresStore
    for path in (None, "data.json", str(tmp_path / "a:b.json"), "C:\\data\\sandbox.json"):
        assert stores.backend_for(path) is TinyDBStore, path

    class MemoStore(TinyDBStore):  # a backend of its own scheme, kept in memory
        def __init__(self, location):
            super().__init__(None)
            self.description = location

    monkeypatch.setitem(stores.BACKENDS, "memo", lambda: MemoStore)
    settings = make_settings(db_path=None, store_url="memo://scratch")
    assert stores.store_class(settings) is MemoStore
    store = stores.open_store(settings)
    assert isinstance(store, MemoStore) and store.description == "memo://scratch"
    store.close()
