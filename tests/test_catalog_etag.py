"""The schedulers and appointment types lists carry an ETag and answer If-None-Match with a 304."""

from __future__ import annotations

import pytest

from pokitdok_sandbox.app import create_app

from .conftest import bearer, get_token, make_settings
from .helpers import API, APPOINTMENT_TYPES, SCHEDULERS

LISTS = (SCHEDULERS, APPOINTMENT_TYPES)


@pytest.fixture
def served(backend):
    app = create_app(make_settings())
    with app.test_client() as client:
        yield client


@pytest.mark.parametrize("path", LISTS)
def test_the_etag_stays_the_same_while_nothing_changes(served, path):
    headers = bearer(get_token(served))
    first, second = served.get(path, headers=headers), served.get(path, headers=headers)
    assert first.status_code == second.status_code == 200
    tag = first.headers["etag"]
    assert tag.startswith('W/"') and tag.endswith('"')
    assert second.headers["etag"] == tag
    # The meta differs from answer to answer; the tag does not.
    assert first.json()["meta"]["activity_id"] != second.json()["meta"]["activity_id"]


@pytest.mark.parametrize("path", LISTS)
def test_if_none_match_with_the_current_etag_is_a_304_without_body(served, path):
    headers = bearer(get_token(served))
    tag = served.get(path, headers=headers).headers["etag"]
    for sent in (tag, tag.removeprefix("W/"), f'"other", {tag}', "*"):
        answer = served.get(path, headers={**headers, "If-None-Match": sent})
        assert answer.status_code == 304, sent
        assert answer.content == b""
        assert answer.headers["etag"] == tag


@pytest.mark.parametrize("path", LISTS)
def test_if_none_match_with_another_etag_answers_the_page(served, path):
    headers = bearer(get_token(served))
    answer = served.get(path, headers={**headers, "If-None-Match": 'W/"not-the-tag"'})
    assert answer.status_code == 200
    assert answer.json()["data"]
    assert answer.headers["etag"] != 'W/"not-the-tag"'


def test_each_page_has_its_own_etag(served):
    headers = bearer(get_token(served))
    tags = {served.get(f"{APPOINTMENT_TYPES}{query}", headers=headers).headers["etag"]
            for query in ("", "?limit=2", "?limit=2&offset=2")}
    assert len(tags) == 3


def test_a_seed_that_changes_the_appointment_types_gives_a_new_etag(served):
    headers = bearer(get_token(served))
    before = served.get(APPOINTMENT_TYPES, headers=headers).headers["etag"]
    assert served.post(f"{API}/sandbox/seed", headers=headers, json={"seed": 7}).status_code == 200
    after = served.get(APPOINTMENT_TYPES, headers=headers)
    assert after.headers["etag"] != before
    # The tag a client kept from before the seed no longer matches: the new page comes back.
    again = served.get(APPOINTMENT_TYPES, headers={**headers, "If-None-Match": before})
    assert again.status_code == 200
    assert again.json()["data"] == after.json()["data"]


def test_the_etag_names_the_records_not_the_worker(backend):
    """Two servers over one store (a team sandbox's workers) give one page the same tag."""
    tags = set()
    for _ in range(2):
        with create_app(make_settings()).test_client() as client:
            tags.add(client.get(SCHEDULERS, headers=bearer(get_token(client))).headers["etag"])
    assert len(tags) == 1
