"""The shared PostgreSQL store: several worker processes, one winner per slot, and the commands.

The server runs as real processes (`serve --store postgresql://... --workers 4`), so two
requests racing for one slot are served by different processes and only the database
decides; the TinyDB lock cannot help here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from pokitdok_sandbox.fixtures.doc_examples import OPEN_SLOT, PROVIDER_MAIN_OFFICE, PROVIDER_UUID
from pokitdok_sandbox import offload
from pokitdok_sandbox.cli import main
from pokitdok_sandbox.stores import StoreError
from pokitdok_sandbox.stores.pg_schema import MIGRATIONS, SCHEMA
from pokitdok_sandbox.stores import postgres
from pokitdok_sandbox.stores.postgres import PostgresStore, close_pools

from .conftest import bearer, get_token
from .helpers import APPOINTMENTS, assert_error, data_of
from pokitdok_sandbox.testing import running_sandbox
from .helpers import ROOT
from .pg import ADMIN_URL, with_database
from .races import assert_overlapping_creations_leave_no_overlap
from .test_reliability import _client_for, _patient

WORKERS = 4


@pytest.fixture(scope="module")
def team_server(pg_database):
    pg_database.wipe()
    with running_sandbox(pg_database.url, "--workers", str(WORKERS)) as running:
        yield running


def _worker_processes(server) -> int:
    """Child processes of the server (uvicorn's workers)."""
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        count += int(fields[1]) == server.process.pid
    return count


def test_the_server_runs_several_worker_processes(team_server):
    assert _worker_processes(team_server) >= WORKERS


def _race_for(client, slot_uuid: str) -> None:
    barrier = threading.Barrier(50)

    def book(number: int):
        barrier.wait()
        answer = client.put(f"/schedule/appointments/{slot_uuid}", json={"patient": _patient(number)})
        return number, answer.status_code, answer

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(book, range(50)))
    assert sorted(status for _, status, _ in results) == [200] + [409] * 49
    assert all("already booked by another patient" in assert_error(answer, 409, "patient")["message"]
               for _, status, answer in results if status == 409)
    winner = next(number for number, status, _ in results if status == 200)
    [stored] = data_of(client.get(f"/schedule/appointments/{slot_uuid}"))
    assert stored["booked"] is True and stored["patient"]["_uuid"] == _patient(winner)["_uuid"]


def test_fifty_concurrent_bookings_across_workers_have_exactly_one_winner(team_server):
    client = _client_for(team_server, "race")
    # Seed the tenant first, so the race is about the booking alone; then race for several slots.
    assert data_of(client.get(f"/schedule/appointments/{OPEN_SLOT}"))
    slots = [OPEN_SLOT] + [data_of(client.post("/schedule/slots/", json={
        "pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
        "start_date": f"2031-04-0{day}T09:00:00", "end_date": f"2031-04-0{day}T10:00:00"}))[
        "pd_appointment_uuid"] for day in (1, 2, 3, 4)]
    for slot_uuid in slots:
        _race_for(client, slot_uuid)


def test_concurrent_creation_of_one_slot_across_workers_has_exactly_one_winner(team_server):
    client = _client_for(team_server, "same-slot")
    body = {"pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
            "start_date": "2031-05-05T09:00:00", "end_date": "2031-05-05T10:00:00"}
    barrier = threading.Barrier(30)

    def create(_):
        barrier.wait()
        return client.post("/schedule/slots/", json=body)

    with ThreadPoolExecutor(max_workers=30) as pool:
        answers = list(pool.map(create, range(30)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 29
    assert all(assert_error(a, 409, "start_date") for a in answers if a.status_code == 409)
    [created] = [data_of(a) for a in answers if a.status_code == 200]
    assert created["start_date"] == body["start_date"] + ".000000"  # answered with six fractional digits


def test_concurrent_overlapping_slot_creation_across_workers_leaves_no_overlap(team_server):
    assert_overlapping_creations_leave_no_overlap(_client_for(team_server, "overlap"))


def test_new_clients_registering_at_once_on_several_workers_get_one_tenant(team_server):
    credentials = ("team-ci-job", "s3cret")
    with ThreadPoolExecutor(max_workers=12) as pool:
        tokens = list(pool.map(lambda _: team_server.token(credentials), range(12)))
    client = _client_for(team_server, "unused", credentials)
    created = data_of(client.post("/schedule/slots/", json={
        "pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
        "start_date": "2031-06-01T09:00:00", "end_date": "2031-06-01T09:30:00"}))
    # Every token, whichever worker issued it, sees the one data set of the client.
    for token in tokens:
        seen = client.get(f"/schedule/appointments/{created['pd_appointment_uuid']}",
                          headers={"Authorization": f"Bearer {token}"})
        assert data_of(seen) == [created]


def test_a_new_tenant_first_used_on_several_workers_at_once_gets_one_whole_data_set(team_server):
    from pokitdok_sandbox.fixtures import generate_dataset

    client = _client_for(team_server, "first-use")
    barrier = threading.Barrier(20)

    def first_request(_):
        barrier.wait()
        return client.get(f"/schedule/appointments/{OPEN_SLOT}").status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        assert set(pool.map(lambda n: first_request(n), range(20))) == {200}
    view = data_of(client.get("/sandbox/slots", params={"limit": 1}))
    assert view["total"] == len(generate_dataset()["slots"])


def test_the_contract_kit_passes_against_the_multi_worker_server(team_server):
    from pokitdok_sandbox.contract_tests.options import KitOptions
    from pokitdok_sandbox.contract_tests.runner import run

    result = run(KitOptions(base_url=team_server.api, max_examples=5, seed=20240611), quiet=True)
    assert result.passed, result.summary


# -- the commands -------------------------------------------------------------------------

def test_migrate_creates_the_schema_and_is_idempotent(pg_database, capsys):
    url = with_database(ADMIN_URL, pg_database.name)
    assert main(["migrate", "--store", url]) == 0
    assert main(["migrate", "--store", url]) == 0
    assert f"schema version {len(MIGRATIONS)}" in capsys.readouterr().out


def test_seed_and_reset_from_the_command_line(pg_url, capsys):
    assert main(["seed", "--store", pg_url, "--seed", "3", "--slots", "30"]) == 0
    assert "sandbox-demo" in capsys.readouterr().out
    store = PostgresStore(pg_url)
    with store.transaction("sandbox-demo") as tenant:
        assert tenant.count("slots") > 30
        slot = tenant.get("slots", OPEN_SLOT)
        slot["description"] = "changed"
        tenant.replace("slots", slot)
    assert main(["reset", "--store", pg_url]) == 0
    with store.transaction("sandbox-demo") as tenant:
        assert tenant.get("slots", OPEN_SLOT)["description"] != "changed"


def test_the_environment_variable_selects_the_store(pg_url, monkeypatch, capsys):
    monkeypatch.setenv("POKITDOK_SANDBOX_STORE", pg_url)
    assert main(["seed", "--slots", "5"]) == 0
    assert PostgresStore(pg_url).tenant_settings("sandbox-demo")["slots"] == 5


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "POKITDOK_SANDBOX_STORE": ""})


def test_an_unreachable_server_is_a_clear_error_without_the_password():
    result = _cli("migrate", "--store", "postgresql://someone:hunter2@127.0.0.1:1/nowhere")
    assert result.returncode == 2
    assert "postgresql://someone:***@127.0.0.1:1/nowhere" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
    served = _cli("serve", "--store", "postgresql://someone:hunter2@127.0.0.1:1/nowhere", "--workers", "2")
    assert served.returncode == 2 and "Traceback" not in served.stderr and "hunter2" not in served.stderr


def test_a_foreign_schema_is_refused_and_left_alone(pg_database):
    name = f"{pg_database.name}_foreign"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(ADMIN_URL, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {SCHEMA}")
            conn.execute(f"CREATE TABLE {SCHEMA}.slots (id int)")
        with pytest.raises(StoreError) as refused:
            PostgresStore(url)
        assert url in str(refused.value) and "not a pokitdok-sandbox database" in str(refused.value)
        result = _cli("migrate", "--store", url)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute(f"SELECT to_regclass('{SCHEMA}.schema_version')").fetchone()[0] is None
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_newer_schema_is_refused(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {SCHEMA}.schema_version SET version = 999")
    try:
        with pytest.raises(StoreError) as refused:
            PostgresStore(pg_url)
        assert "999" in str(refused.value)
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f"UPDATE {SCHEMA}.schema_version SET version = %s", (len(MIGRATIONS),))


def test_the_database_refuses_overlapping_slots_itself(pg_url):
    """Even a writer that skips the rules cannot store two overlapping slots of one provider at one place."""
    store = PostgresStore(pg_url)
    from pokitdok_sandbox.datasets import SeedSettings
    from pokitdok_sandbox.stores import OverlapRefused
    from pokitdok_sandbox.tenants import Tenants

    Tenants(store, SeedSettings(slots=0)).open("raw")
    slot = {"pd_appointment_uuid": "11111111-1111-4111-8111-111111111111", "appointment_id": "AAAAAAAAAAAA",
            "appointment_type": "AT1", "pd_provider_uuid": PROVIDER_UUID, "provider_scheduler_uuid": "x",
            "location": list(PROVIDER_MAIN_OFFICE), "start_date": "2031-07-01T09:00:00",
            "end_date": "2031-07-01T10:00:00", "booked": False, "patient": None, "description": None}
    with store.transaction("raw") as tenant:
        assert tenant.insert("slots", slot)
    clash = {**slot, "pd_appointment_uuid": "22222222-2222-4222-8222-222222222222",
             "start_date": "2031-07-01T09:30:00", "end_date": "2031-07-01T10:30:00"}
    with pytest.raises(OverlapRefused):  # a neutral error: the rules say 409
        with store.transaction("raw") as tenant:
            tenant.insert("slots", clash)
    elsewhere = {**clash, "location": [PROVIDER_MAIN_OFFICE[0] + 0.001, PROVIDER_MAIN_OFFICE[1]]}
    with store.transaction("raw") as tenant:
        assert tenant.insert("slots", elsewhere)


def test_a_first_version_database_is_brought_to_the_second(pg_url):
    """Version 1 as first released (with the GiST exclusion constraint) and holding data: migrating drops
    the constraint, adds slots_by_calendar and counts each tenant's slots."""
    store = PostgresStore(pg_url)
    from pokitdok_sandbox.fixtures import generate_dataset

    store.put_dataset("old", {"slots": 30}, generate_dataset(slots=30))
    store.close()
    close_pools()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        conn.execute("DROP INDEX slots_by_calendar")
        conn.execute("ALTER TABLE tenants DROP COLUMN slot_count")
        conn.execute("ALTER TABLE slots ADD CONSTRAINT slots_no_overlap EXCLUDE USING gist (tenant WITH =, "
                     "provider WITH =, place_lat WITH =, place_lon WITH =, tsrange(start_at, end_at) WITH &&)")
        conn.execute("UPDATE schema_version SET version = 1")
    assert main(["migrate", "--store", pg_url]) == 0
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname = 'slots_no_overlap'").fetchone()[0] == 0
        assert conn.execute("SELECT to_regclass('slots_by_calendar')").fetchone()[0] is not None
        assert conn.execute("SELECT slot_count FROM tenants WHERE tenant = 'old'").fetchone()[0] == \
            conn.execute("SELECT count(*) FROM slots WHERE tenant = 'old'").fetchone()[0] > 30


def _raw_slot(uuid: str, start: str, end: str, **changes) -> dict:
    return {"pd_appointment_uuid": uuid, "appointment_id": "AAAAAAAAAAAA", "appointment_type": "AT1",
            "pd_provider_uuid": PROVIDER_UUID, "provider_scheduler_uuid": "x", "location": list(PROVIDER_MAIN_OFFICE),
            "start_date": start, "end_date": end, "booked": False, "patient": None, "description": None, **changes}


def test_the_store_keeps_a_calendar_apart_however_slots_are_written(pg_url):
    """A slot moved onto another is refused; a slot ending as the next starts, or starting inside a long
    one that began earlier, is told apart; and the tenant's slot count follows inserts and deletes."""
    store = PostgresStore(pg_url)
    from pokitdok_sandbox.datasets import SeedSettings
    from pokitdok_sandbox.stores import OverlapRefused
    from pokitdok_sandbox.tenants import Tenants

    Tenants(store, SeedSettings(slots=0)).open("raw")
    with store.transaction("raw") as tenant:
        before = tenant.count("slots")
        assert tenant.insert("slots", _raw_slot("11111111-1111-4111-8111-111111111111",
                                                "2031-07-01T08:00:00", "2031-07-01T12:00:00"))
        assert tenant.insert("slots", _raw_slot("22222222-2222-4222-8222-222222222222",
                                                "2031-07-01T12:00:00", "2031-07-01T13:00:00"))
        assert not tenant.insert("slots", _raw_slot("22222222-2222-4222-8222-222222222222",
                                                    "2031-08-01T12:00:00", "2031-08-01T13:00:00"))
        assert tenant.count("slots") == before + 2
    # Inside the long slot that started three hours before: found by the probe of the last earlier start.
    with pytest.raises(OverlapRefused):
        with store.transaction("raw") as tenant:
            tenant.insert("slots", _raw_slot("33333333-3333-4333-8333-333333333333",
                                             "2031-07-01T10:00:00", "2031-07-01T10:30:00"))
    moved = _raw_slot("22222222-2222-4222-8222-222222222222", "2031-07-01T11:00:00", "2031-07-01T13:00:00")
    with pytest.raises(OverlapRefused):
        with store.transaction("raw") as tenant:
            tenant.replace("slots", moved)
    with store.transaction("raw") as tenant:
        tenant.replace("slots", {**moved, "start_date": "2031-07-01T12:30:00"})  # moved, still apart
        tenant.replace("slots", {**moved, "start_date": "2031-07-01T12:30:00", "description": "kept"})
        assert tenant.get("slots", moved["pd_appointment_uuid"])["description"] == "kept"
        tenant.remove("slots", "11111111-1111-4111-8111-111111111111")
        tenant.remove("slots", "11111111-1111-4111-8111-111111111111")  # gone already: counted once
        assert tenant.count("slots") == before + 1
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*) FROM {SCHEMA}.slots WHERE tenant = 'raw'").fetchone()[0] == before + 1


def test_a_data_set_with_overlapping_slots_is_refused_whole(pg_url):
    store = PostgresStore(pg_url)
    from pokitdok_sandbox.fixtures import generate_dataset

    good = generate_dataset(slots=50)
    assert store.put_dataset("checked", {"slots": 50}, good)
    last = good["slots"][-1]
    first = next(slot for slot in good["slots"] if slot["pd_provider_uuid"] == last["pd_provider_uuid"]
                 and slot["location"] == last["location"])
    assert first is not last

    def clash(like: dict) -> dict:
        return _raw_slot("44444444-4444-4444-8444-444444444444", like["start_date"], like["end_date"],
                         pd_provider_uuid=like["pd_provider_uuid"], location=like["location"])

    # Each calendar in time order (checked as it streams), and not (checked by a query before commit).
    for slots in ([*good["slots"], clash(last)], [*good["slots"], clash(first)]):
        with pytest.raises(StoreError, match="overlapping slots"):
            store.put_dataset("checked", {"slots": 51}, {**good, "slots": slots})
    with store.transaction("checked") as tenant:
        assert tenant.count("slots") == len(good["slots"])
        assert tenant.get("slots", "44444444-4444-4444-8444-444444444444") is None
    assert store.tenant_settings("checked") == {"slots": 50}


def test_a_page_of_a_providers_open_slots_is_what_the_rules_would_page(pg_url):
    """`open_slots_page` (the store pages a search by provider alone) against filtering and ordering
    every slot of the provider, as the rules do without it."""
    from datetime import datetime

    from pokitdok_sandbox.fixtures import generate_dataset
    from pokitdok_sandbox.slot_search import SlotSearch

    store = PostgresStore(pg_url)
    data = generate_dataset(slots=400)
    store.put_dataset("paged", {"slots": 400}, data)
    provider = data["slots"][-1]["pd_provider_uuid"]
    with store.transaction("paged") as tenant:
        every = tenant.slots_of_provider(provider, None, None)
    starts = sorted(datetime.fromisoformat(slot["start_date"]) for slot in every)
    windows = [(None, None), (starts[3], None), (None, starts[-4]), (starts[2], starts[9]), (starts[-1], starts[0])]
    for start, end in windows:
        expected = sorted((slot for slot in every if not slot["booked"]
                           and (start is None or datetime.fromisoformat(slot["start_date"]) >= start)
                           and (end is None or datetime.fromisoformat(slot["end_date"]) <= end)),
                          key=lambda slot: (slot["start_date"], slot["pd_appointment_uuid"]))
        for offset, limit in ((0, 100), (0, 2), (3, 5), (len(expected), 10), (len(expected) + 5, 10)):
            with store.transaction("paged", readonly=True) as tenant:
                assert tenant.open_slots_page(SlotSearch(provider=provider, start=start, end=end), offset, limit) == \
                    (len(expected), expected[offset:offset + limit])
    with store.transaction("paged", readonly=True) as tenant:
        assert tenant.open_slots_page(SlotSearch(provider=provider, appointment_type="AT1"), 0, 10) is None  # typed
        assert tenant.open_slots_page(SlotSearch(provider=provider, calendar=True), 0, 10) is None  # booked too


def _sandbox_on(pg_url):
    from pokitdok_sandbox.app import create_app
    from pokitdok_sandbox.settings import Settings

    return create_app(Settings(db_path=None, store_url=pg_url, validate_responses=True))


def _database_now(pg_url):
    """The database's clock now: connections opened from here on are this test's (a fresh pool)."""
    close_pools()
    with psycopg.connect(pg_url, autocommit=True) as admin:
        return admin.execute("SELECT now()").fetchone()[0]


def _cut_connections_opened_since(pg_url, since, wait_until_gone: bool = True) -> int:
    """End this test's sandbox connections (not those of the team server's workers); with
    `wait_until_gone`, only once the database has let them go."""
    with psycopg.connect(pg_url, autocommit=True) as admin:
        mine = ("FROM pg_stat_activity WHERE datname = current_database() "
                "AND application_name = 'pokitdok-sandbox' AND backend_start >= %s")
        cut = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {mine}", (since,)).fetchone()[0]
        if not wait_until_gone:
            return cut
        for _ in range(200):
            if admin.execute(f"SELECT count(*) {mine}", (since,)).fetchone()[0] == 0:
                return cut
            time.sleep(0.01)
    raise AssertionError("the database kept the connections it was asked to end")


def test_connections_cut_by_the_database_are_replaced(pg_url):
    since = _database_now(pg_url)
    with _sandbox_on(pg_url).test_client() as client:
        headers = bearer(get_token(client))
        assert data_of(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers))
        assert _cut_connections_opened_since(pg_url, since, wait_until_gone=False) >= 1
        assert [client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers).status_code for _ in range(3)] == [200] * 3


def test_a_connection_cut_unseen_fails_only_its_first_statement_which_is_sent_again(pg_url, monkeypatch):
    """A pooled connection is handed out without a round trip. One the database ended before its
    socket showed it (as if the notice had not arrived yet) fails the first statement sent on it; that
    statement goes again on a checked connection, and reads and writes answer as usual."""
    since = _database_now(pg_url)
    with _sandbox_on(pg_url).test_client() as client:
        headers = bearer(get_token(client))
        assert data_of(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers))
        monkeypatch.setattr(postgres, "_has_input", lambda conn: False)
        assert _cut_connections_opened_since(pg_url, since) >= 1
        assert data_of(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers))[0]["pd_appointment_uuid"] == \
            OPEN_SLOT
        assert _cut_connections_opened_since(pg_url, since) >= 1
        changed = client.put(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers, json={"description": "after the cut"})
        assert data_of(changed)["description"] == "after the cut"
        assert data_of(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers))[0]["description"] == \
            "after the cut"


def test_an_unavailable_database_is_a_503_in_the_error_shape(pg_url, monkeypatch):
    app = _sandbox_on(pg_url)
    with app.test_client() as client:
        headers = bearer(get_token(client))
        store = app.sandbox.tenants.store

        def gone(*_args, **_kwargs):
            raise psycopg.OperationalError("server closed the connection unexpectedly")

        monkeypatch.setattr(store._pool, "getconn", gone)  # calls on threads
        monkeypatch.setattr(store._loop_connections, "getconn", gone)  # calls on the event loop
        answer = client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers)
    body = assert_error(answer, 503, None)
    assert body["error"] == "store_unavailable"
    assert "PostgreSQL" in body["message"] and "unavailable" in body["message"]


def test_requests_on_the_event_loop_share_a_few_connections_and_keep_them(pg_url, monkeypatch):
    """However many requests come at once, the calls made on the event loop hold at most
    `offload.LOOP_CALLS` connections (the others wait their turn), and keep them for the next ones."""
    opened = []
    connect = postgres._LoopAwareConnection.connect

    def counted(*args, **kwargs):
        opened.append(1)
        return connect(*args, **kwargs)

    monkeypatch.setattr(postgres._LoopAwareConnection, "connect", counted)
    with _sandbox_on(pg_url).test_client() as client, ThreadPoolExecutor(40) as requests:
        headers = bearer(get_token(client))

        def burst():
            return list(requests.map(lambda _: client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers).status_code,
                                     range(80)))

        assert burst() == [200] * 80
        assert 1 <= len(opened) <= offload.LOOP_CALLS
        first = len(opened)
        assert burst() == [200] * 80
        assert len(opened) == first


def test_a_first_use_whose_seed_outlasts_its_request_completes_after_the_503(pg_url, monkeypatch):
    """A new tenant's data set is written by its first request. When that takes longer than the
    request's deadline, the request answers its 503 on time and the seed is let go, not cancelled:
    it completes, and the tenant's next request finds the whole data set."""
    from pokitdok_sandbox.fixtures import generate_dataset

    put_dataset, slow_seeds = PostgresStore.put_dataset, []

    def slow(self, tenant_id, *args, **kwargs):
        if tenant_id == "slow-first-use":
            slow_seeds.append(tenant_id)
            with self._connection(bounded=False) as conn:
                conn.execute("SELECT pg_sleep(%s)", (offload.REQUEST_SECONDS + 0.5,))
        return put_dataset(self, tenant_id, *args, **kwargs)

    monkeypatch.setattr(PostgresStore, "put_dataset", slow)
    app = _sandbox_on(pg_url)
    with app.test_client() as client:
        headers = bearer(get_token(client, ("slow-first-use", "secret")))
        started = time.monotonic()
        first = client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers)
        assert_error(first, 503, None)
        assert time.monotonic() - started < offload.REQUEST_SECONDS + 0.45  # before the seed's end
        time.sleep(1.0)
        assert data_of(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers))[0]["pd_appointment_uuid"] == \
            OPEN_SLOT
    assert slow_seeds == ["slow-first-use"]  # seeded once: the second request found it done
    with app.sandbox.tenants.store.transaction("slow-first-use", readonly=True) as tenant:
        assert tenant.count("slots") == len(generate_dataset()["slots"])


def test_worker_processes_keep_the_serving_options(team_server):
    """Workers are built from the environment; the long-query limit and the error shape still hold."""
    client = _client_for(team_server, "query")
    answer = client.get("/schedule/appointments/", params={"appointment_type": "A" * 30000})
    assert_error(answer, 414, "query")


@pytest.mark.parametrize("url, shown", [
    ("postgresql://sandbox:s3cret@db:5432/sandbox", "postgresql://sandbox:***@db:5432/sandbox"),
    ("postgres://sandbox@db/sandbox?password=s3cret&sslmode=require",
     "postgres://sandbox@db/sandbox?password=***&sslmode=require"),
    ("postgresql://db/sandbox", "postgresql://db/sandbox"),
])
def test_urls_are_shown_without_their_password(url, shown):
    from pokitdok_sandbox.stores import redact

    assert redact(url) == shown


def test_migrate_on_tinydb_has_nothing_to_do_and_creates_nothing(tmp_path, capsys):
    assert main(["migrate", "--db", str(tmp_path / "db.json")]) == 0
    assert "nothing to migrate" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
