"""The platform's wire format (docs/wire-format.md), beyond what every other test checks through
`data_of` and `assert_error`: the activity id, paging, lists in query strings, bodies without
Content-Type, 401 and 403 told apart, the token answer's `expires`, and rate limits."""

import json
import math
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.app import create_app

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (
    APPOINTMENT_TYPES, APPOINTMENTS, EVERYWHERE, META_KEYS, PAGE_KEYS, PEG, PROVIDER, RATE_KEYS, SCHEDULERS, SLOTS, UNKNOWN_UUID,
    assert_error, create_slot, data_of, get_one, open_slots_of, slot_body,
)

JOURNAL = "/api/v4/sandbox/journal"
RATE_LIMIT = "/api/v4/sandbox/rate-limit"
# (EVERYWHERE: every open slot of the data set, more than one default page (100) of them.)


def _meta(answer) -> dict:
    return answer.json()["meta"]


def _uuids(records) -> list[str]:
    return [r["pd_appointment_uuid"] for r in records]


# -- meta: the activity ------------------------------------------------------------------------

def test_every_answer_names_its_activity_in_meta_and_header(client, auth):
    slot = create_slot(client, auth)
    answers = [
        client.get(SCHEDULERS, headers=auth),
        client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth),
        client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth),  # 404, in the envelope
        client.post(SLOTS, headers=auth, json=slot_body(appointment_type="NOPE1")),  # 422
    ]
    data_of(answers[0])
    data_of(answers[1])
    assert_error(answers[2], 404)
    assert_error(answers[3], 422)
    ids = [_meta(answer)["activity_id"] for answer in answers]
    assert ids == [answer.headers["x-activity-id"] for answer in answers]
    assert len(set(ids)) == len(ids), "each request is an activity of its own"


def test_401_and_403_answers_carry_the_activity_header_too(client):
    refused = client.get(SCHEDULERS)
    assert_error(refused, 401, "token_missing")
    narrow = bearer(get_token(client, scope="user_schedule"))
    forbidden = client.post(SLOTS, headers=narrow, json=slot_body())
    assert_error(forbidden, 403, "insufficient_scope")
    assert refused.headers["x-activity-id"] and forbidden.headers["x-activity-id"]
    assert refused.headers["x-activity-id"] != forbidden.headers["x-activity-id"]
    assert forbidden.json()["meta"]["activity_id"] == forbidden.headers["x-activity-id"]  # the 403 is enveloped


def test_the_journal_entry_of_a_request_has_its_activity_id(client, auth):
    narrow = bearer(get_token(client, scope="business_schedule"))
    answers = [
        client.post(SLOTS, headers=auth, json=slot_body()),
        client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth),
        client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": "nope"}),
        client.get(f"{APPOINTMENTS}{doc.BOOKED_SLOT}", headers=narrow),  # 403, in the envelope too
    ]
    assert [a.status_code for a in answers] == [200, 404, 422, 403]
    entries = data_of(client.get(JOURNAL, headers=auth, params={"limit": len(answers)}))["entries"]
    assert [e["activity_id"] for e in reversed(entries)] == [a.headers["x-activity-id"] for a in answers]
    assert [e["activity_id"] for e in reversed(entries)] == [_meta(a)["activity_id"] for a in answers]


def test_processing_time_is_measured(client, auth):
    # The delay is spent inside the request, so it is part of the time measured.
    answer = client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Delay": "120ms"})
    data_of(answer)
    assert _meta(answer)["processing_time"] >= 120


def test_single_records_and_writes_have_no_paging_meta(client, auth):
    slot_answer = client.post(SLOTS, headers=auth, json=slot_body())
    uuid = data_of(slot_answer)["pd_appointment_uuid"]
    for answer in (slot_answer, client.get(f"{APPOINTMENTS}{uuid}", headers=auth),
                   client.get(f"{SCHEDULERS}{doc.POKITDOK}", headers=auth),
                   client.delete(f"{SLOTS}{uuid}", headers=auth)):
        data_of(answer)
        assert set(_meta(answer)) == META_KEYS, _meta(answer)


# -- paging ------------------------------------------------------------------------------------

def _all_pages(client, headers, url, params=None, direction="next"):
    """Every page from the first answer on, following `meta.<direction>`: (metas, records)."""
    metas, records = [], []
    answer = client.get(url, headers=headers, params=params)
    while True:
        records += data_of(answer)
        metas.append(_meta(answer))
        following = metas[-1][direction]
        if following is None:
            return metas, records
        assert len(metas) < 1000, "the links never end"
        answer = client.get(following, headers=headers)


def test_next_links_followed_to_the_end_give_every_record_exactly_once(client, auth):
    everything = data_of(client.get(APPOINTMENTS, headers=auth, params={**EVERYWHERE, "limit": 1000}))
    assert len(everything) > 100, "the default data set has more open slots than a default page"
    metas, records = _all_pages(client, auth, APPOINTMENTS, {**EVERYWHERE, "limit": 25})
    assert _uuids(records) == _uuids(everything)  # each once, in the documented order
    assert records == everything
    count = len(everything)
    assert len(metas) == math.ceil(count / 25)
    for number, meta in enumerate(metas):
        assert PAGE_KEYS <= set(meta)
        assert (meta["count"], meta["limit"], meta["offset"]) == (count, 25, 25 * number)
        assert (meta["previous"] is None) == (number == 0)
        assert (meta["next"] is None) == (number == len(metas) - 1)


def test_previous_links_lead_back_to_the_first_page(client, auth):
    forward, records = _all_pages(client, auth, APPOINTMENTS, {**EVERYWHERE, "limit": 40})
    backward, back_records = _all_pages(client, auth, forward[-1]["previous"], direction="previous")
    assert [m["offset"] for m in backward] == [m["offset"] for m in reversed(forward[:-1])]
    pages = [records[m["offset"]:m["offset"] + 40] for m in backward]
    assert back_records == [record for page in pages for record in page]


def test_the_default_page_is_100_records_and_links_are_absolute_urls_of_the_same_query(client, auth):
    answer = client.get(APPOINTMENTS, headers=auth, params=EVERYWHERE)
    records, meta = data_of(answer), _meta(answer)
    assert (meta["limit"], meta["offset"], meta["previous"]) == (100, 0, None)
    assert len(records) == 100 < meta["count"]
    link = urlsplit(meta["next"])
    assert (link.scheme, link.netloc, link.path) == ("http", "testserver", APPOINTMENTS)
    assert parse_qs(link.query) == {"location": [EVERYWHERE["location"]], "radius": [EVERYWHERE["radius"]],
                                     "offset": ["100"], "limit": ["100"]}
    rest = client.get(meta["next"], headers=auth)
    assert len(data_of(rest)) == meta["count"] - 100
    assert _meta(rest)["next"] is None
    assert urlsplit(_meta(rest)["previous"]).query == link.query.replace("offset=100", "offset=0")


def test_paging_links_never_take_the_host_header(client, auth):
    """A client's `Host` header is not reflected into the links: they name the server's address."""
    answer = client.get(APPOINTMENTS, headers={**auth, "Host": "evil.example:666"}, params=EVERYWHERE)
    assert urlsplit(_meta(answer)["next"]).netloc == "testserver"


def test_paging_links_use_the_configured_public_url(backend):
    app = create_app(make_settings(public_url="https://sandbox.example.org/behind"))
    with app.test_client() as client:
        answer = client.get(APPOINTMENTS, headers={**bearer(get_token(client)), "Host": "evil.example"},
                            params=EVERYWHERE)
    link = urlsplit(_meta(answer)["next"])
    assert (link.scheme, link.netloc, link.path) == ("https", "sandbox.example.org", "/behind" + APPOINTMENTS)


def test_count_is_every_matching_record_and_an_offset_past_the_end_is_an_empty_page(client, auth):
    mine = open_slots_of(client, auth)  # the documented provider's open slots
    answer = client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": PROVIDER, "limit": 2})
    assert _meta(answer)["count"] == len(mine)
    assert data_of(answer) == mine[:2]
    past = client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": PROVIDER, "offset": len(mine) + 5})
    assert data_of(past) == []
    assert (_meta(past)["count"], _meta(past)["next"]) == (len(mine), None)
    create_slot(client, auth)
    again = client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": PROVIDER})
    assert _meta(again)["count"] == len(mine) + 1


@pytest.mark.parametrize("collection, size", [(SCHEDULERS, 1), (APPOINTMENT_TYPES, 2)])
def test_the_catalogue_collections_page_too(client, auth, collection, size):
    everything = data_of(client.get(collection, headers=auth))
    metas, records = _all_pages(client, auth, collection, {"limit": size})
    assert records == everything
    assert len(metas) == math.ceil(len(everything) / size)
    assert {m["count"] for m in metas} == {len(everything)}


def test_a_limit_of_1000_is_the_largest_page(client, auth):
    meta = _meta(client.get(APPOINTMENTS, headers=auth, params={**EVERYWHERE, "limit": 1000}))
    assert meta["limit"] == 1000 and meta["next"] is None


@pytest.mark.parametrize("collection", [SCHEDULERS, APPOINTMENT_TYPES, APPOINTMENTS])
@pytest.mark.parametrize("params, field", [({"limit": 1001}, "limit"), ({"limit": 0}, "limit"),
                                           ({"limit": "ten"}, "limit"), ({"offset": -1}, "offset"),
                                           ({"offset": "first"}, "offset")])
def test_paging_parameters_out_of_range_are_422(client, auth, collection, params, field):
    if collection == APPOINTMENTS:
        params = {"pd_provider_uuid": PROVIDER, **params}
    errors = assert_error(client.get(collection, headers=auth, params=params), 422, field)
    assert field in errors["validation"]


def test_reads_by_uuid_do_not_page(client, auth):
    for path in (f"{SCHEDULERS}{doc.POKITDOK}", f"{APPOINTMENTS}{doc.BOOKED_SLOT}"):
        assert_error(client.get(path, headers=auth, params={"limit": 1}), 422, "limit")


# -- lists in query strings --------------------------------------------------------------------

@pytest.mark.parametrize("query", [
    "location[0]=32.78811&location[1]=-79.932364",  # the Node client's form
    "location%5B0%5D=32.78811&location%5B1%5D=-79.932364",  # the same, brackets escaped
    "location[1]=-79.932364&location[0]=32.78811",  # the index decides, not the order
    "location=32.78811,-79.932364",
    "location[]=32.78811&location[]=-79.932364",  # the Ruby client's (Faraday's) form: the order decides
    "location%5B%5D=32.78811&location%5B%5D=-79.932364",  # the same, as Faraday escapes it
    "location=%5b32.78811%2c+-79.932364%5d",  # a C# string "[32.78811, -79.932364]", HttpUtility-encoded
    "location=[32.78811,-79.932364]",
])
def test_indexed_location_is_the_same_search_as_repeated_keys(client, auth, query):
    repeated = client.get(f"{APPOINTMENTS}?location=32.78811&location=-79.932364", headers=auth)
    other = client.get(f"{APPOINTMENTS}?{query}", headers=auth)
    assert data_of(other) == data_of(repeated)
    assert doc.DELETABLE_SLOT in _uuids(data_of(other))
    assert _meta(other)["count"] == _meta(repeated)["count"]


def test_the_pages_of_an_indexed_search_are_those_of_the_repeated_one(client, auth):
    _, indexed = _all_pages(client, auth, f"{APPOINTMENTS}?location[0]=32.78811&location[1]=-79.932364&limit=3")
    _, repeated = _all_pages(client, auth, f"{APPOINTMENTS}?location=32.78811&location=-79.932364&limit=3")
    assert indexed == repeated and len(indexed) > 3


@pytest.mark.parametrize("query", [
    "location[0]=32.78811",
    "location[0]=32.78811&location[1]=-79.932364&location[2]=5",
    "location[0]=32.78811&location=-79.932364",  # both forms: merged, it would search at (lon, lat)
    "location[0]=32.78811&location[0]=-79.932364",
    "location[1]=32.78811&location[2]=-79.932364",
    "location[]=32.78811&location=-79.932364",
    "location[]=32.78811&location[1]=-79.932364",  # appended and indexed: which is first?
    "location[]=32.78811",
    "location=[32.78811]",
])
def test_a_malformed_indexed_location_is_422(client, auth, query):
    errors = assert_error(client.get(f"{APPOINTMENTS}?{query}", headers=auth), 422, "location")
    assert "location" in errors["message"]


# -- bodies without Content-Type ---------------------------------------------------------------

def test_a_body_without_content_type_is_read_as_json(client, auth):
    slot = create_slot(client, auth)
    answer = client.put(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth,
                        content=json.dumps({"description": "sent without Content-Type"}).encode())
    assert "content-type" not in answer.request.headers
    updated = data_of(answer)
    assert updated["description"] == "sent without Content-Type"
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == updated

    created = client.post(SLOTS, headers=auth, content=json.dumps(slot_body()).encode())
    assert "content-type" not in created.request.headers
    assert data_of(created)["booked"] is False


def test_a_body_without_content_type_that_is_not_json_is_422_not_415(client, auth):
    slot = create_slot(client, auth)
    answer = client.put(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth, content=b"description=x")
    assert "JSON" in assert_error(answer, 422, "body")["message"]
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == slot


# -- 401 and 403 -------------------------------------------------------------------------------

def test_401s_tell_a_missing_a_garbage_and_an_expired_token_apart(backend):
    app = create_app(make_settings(token_ttl_seconds=60))
    now = [1_000_000.0]
    app.sandbox.authority.clock = lambda: now[0]
    with app.test_client() as client:
        token = get_token(client)
        missing = client.get(SCHEDULERS)
        garbage = client.get(SCHEDULERS, headers=bearer("not-a-token-this-server-issued"))
        now[0] += 60
        expired = client.get(SCHEDULERS, headers=bearer(token))

    assert "POST /oauth2/token" in assert_error(missing, 401, "token_missing")["error_description"]
    assert missing.headers["www-authenticate"] == 'Bearer realm="pokitdok-sandbox"'  # no token, no error code

    for answer, code in ((garbage, "invalid_token"), (expired, "token_expired")):
        body = assert_error(answer, 401, code)
        challenge = answer.headers["www-authenticate"]
        assert challenge.startswith('Bearer realm="pokitdok-sandbox", error="invalid_token"'), challenge
        assert f'error_description="{body["error_description"]}"' in challenge
    assert "expired" in expired.json()["error_description"]


@pytest.mark.parametrize("scope, method, path, needed", [
    ("user_schedule", "POST", SLOTS, "business_schedule"),
    ("business_schedule", "GET", f"{APPOINTMENTS}{doc.BOOKED_SLOT}", "user_schedule"),
])
def test_a_token_without_the_scope_is_403_in_the_envelope_as_recorded(client, scope, method, path, needed):
    headers = bearer(get_token(client, scope=scope))
    answer = client.request(method, path, headers=headers, json=slot_body() if method == "POST" else None)
    errors = assert_error(answer, 403, "insufficient_scope")
    assert errors["scope"] == f"'{needed}' scope required to access this API"  # the platform's words, recorded
    assert needed in errors["message"] and scope in errors["message"]
    assert answer.headers["www-authenticate"] == (
        f'Bearer realm="pokitdok-sandbox", error="insufficient_scope", scope="{needed}"')


# -- the token answer --------------------------------------------------------------------------

def test_the_token_answer_expires_about_now_plus_expires_in(client):
    before = time.time()
    answer = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=DEMO)
    after = time.time()
    token = answer.json()
    assert answer.status_code == 200 and "meta" not in token  # OAuth2's answer, not the envelope
    assert isinstance(token["expires"], int)
    assert int(before) + token["expires_in"] <= token["expires"] <= int(after) + token["expires_in"]


def test_the_token_answer_expires_follows_the_clock_and_the_ttl(backend):
    app = create_app(make_settings(token_ttl_seconds=123))
    app.sandbox.authority.clock = lambda: 1_700_000_000.75
    with app.test_client() as client:
        token = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=DEMO).json()
    assert (token["expires"], token["expires_in"]) == (1_700_000_123, 123)


# -- rate limits -------------------------------------------------------------------------------

WINDOW_START = 1_800_000_000  # a minute boundary (1_800_000_000 % 60 == 0)


def _limited_app(rate_limit=None, **settings):
    """A sandbox whose rate-limit clock stands 10 s into a one-minute window, and that clock."""
    app = create_app(make_settings(rate_limit=rate_limit, **settings))
    now = [WINDOW_START + 10.0]
    app.sandbox.extras.rate_limits.clock = lambda: now[0]
    return app, now


def _rate(answer) -> tuple[int, int, int]:
    meta = _meta(answer)
    return meta["rate_limit_amount"], meta["rate_limit_cap"], meta["rate_limit_reset"]


def _assert_rate_limited(answer, cap: int, retry_after: int) -> None:
    body = assert_error(answer, 403, "rate_limit_exceeded")
    assert answer.headers["retry-after"] == str(retry_after)
    assert str(cap) in body["error_description"] and str(WINDOW_START + 60) in body["error_description"]


def test_the_servers_rate_limit_is_counted_in_meta_and_refused_past_the_cap(backend):
    app, now = _limited_app("3/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        first = client.get(SCHEDULERS, headers=auth)
        second = client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": PROVIDER})
        third = client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth)  # errors are counted too
        data_of(first)
        data_of(second)
        assert_error(third, 404)
        assert [_rate(a) for a in (first, second, third)] == [(n, 3, WINDOW_START + 60) for n in (1, 2, 3)]

        refused = client.post(SLOTS, headers=auth, json=slot_body())
        _assert_rate_limited(refused, 3, 50)
        _assert_rate_limited(client.get(SCHEDULERS, headers=auth), 3, 50)
        entry = data_of(client.get(JOURNAL, headers=auth, params={"limit": 2}))["entries"][1]
        assert (entry["operation"], entry["status"]) == ("create_slot", 403)
        assert entry["activity_id"] == refused.headers["x-activity-id"]
        assert entry["error"] == refused.json()["error_description"]

        # The next window: counted afresh; the refused creation changed nothing.
        now[0] = WINDOW_START + 60
        answer = client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": PROVIDER, "limit": 1000})
        assert _rate(answer) == (1, 3, WINDOW_START + 120)
        assert data_of(answer) == data_of(second)


def test_each_tenant_has_its_own_count(backend):
    app, _now = _limited_app("2/minute")
    with app.test_client() as client:
        mine, theirs = bearer(get_token(client)), bearer(get_token(client, ("rate-tenant-b", "secret-b")))
        for _ in range(2):
            data_of(client.get(SCHEDULERS, headers=mine))
        assert_error(client.get(SCHEDULERS, headers=mine), 403, "rate_limit_exceeded")
        assert _rate(client.get(SCHEDULERS, headers=theirs)) == (1, 2, WINDOW_START + 60)


def test_sandbox_administration_and_tokens_are_not_counted(backend):
    app, _now = _limited_app("3/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        data_of(client.get(SCHEDULERS, headers=auth))
        data_of(client.get(SCHEDULERS, headers=auth))
        for _ in range(5):
            get_token(client)
            data_of(client.get(RATE_LIMIT, headers=auth))
            data_of(client.get(JOURNAL, headers=auth))
            data_of(client.get("/api/v4/sandbox/faults", headers=auth))
            data_of(client.get("/api/v4/sandbox/providers", headers=auth))
            data_of(client.get("/api/v4/sandbox/slots", headers=auth, params={"limit": 1}))
        assert data_of(client.get(RATE_LIMIT, headers=auth))["amount"] == 2
        assert _rate(client.get(SCHEDULERS, headers=auth)) == (3, 3, WINDOW_START + 60)
        assert_error(client.get(SCHEDULERS, headers=auth), 403, "rate_limit_exceeded")
        # Past the cap, the limit can still be seen and changed.
        view = data_of(client.get(RATE_LIMIT, headers=auth))
        assert (view["limit"], view["source"]) == ({"cap": 3, "period": "minute"}, "server")
        assert data_of(client.put(RATE_LIMIT, headers=auth, json={"cap": 10, "period": "minute"}))["amount"] == 0
        assert _rate(client.get(SCHEDULERS, headers=auth)) == (1, 10, WINDOW_START + 60)


def test_a_tenant_sets_its_own_limit_and_delete_lifts_it_back_to_none(backend):
    app, _now = _limited_app()  # the server has no limit
    with app.test_client() as client:
        auth = bearer(get_token(client))
        assert RATE_KEYS.isdisjoint(_meta(client.get(SCHEDULERS, headers=auth)))
        assert data_of(client.put(RATE_LIMIT, headers=auth, json={"cap": 2, "period": "minute"})) == {
            "limit": {"cap": 2, "period": "minute"}, "source": "tenant", "amount": 0, "reset": WINDOW_START + 60}
        assert [_rate(client.get(SCHEDULERS, headers=auth)) for _ in range(2)] == [
            (1, 2, WINDOW_START + 60), (2, 2, WINDOW_START + 60)]
        assert data_of(client.get(RATE_LIMIT, headers=auth))["amount"] == 2
        _assert_rate_limited(client.get(SCHEDULERS, headers=auth), 2, 50)
        # Another tenant is not limited.
        other = bearer(get_token(client, ("rate-tenant-c", "secret-c")))
        assert RATE_KEYS.isdisjoint(_meta(client.get(SCHEDULERS, headers=other)))

        assert data_of(client.delete(RATE_LIMIT, headers=auth)) == {
            "limit": None, "source": "server", "amount": 0, "reset": None}
        answer = client.get(SCHEDULERS, headers=auth)
        assert data_of(answer) and RATE_KEYS.isdisjoint(_meta(answer))


def test_delete_goes_back_to_the_servers_limit_with_a_fresh_count(backend):
    app, _now = _limited_app("3/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        data_of(client.put(RATE_LIMIT, headers=auth, json={"cap": 1, "period": "minute"}))
        assert _rate(client.get(SCHEDULERS, headers=auth)) == (1, 1, WINDOW_START + 60)
        _assert_rate_limited(client.get(SCHEDULERS, headers=auth), 1, 50)
        assert data_of(client.delete(RATE_LIMIT, headers=auth)) == {
            "limit": {"cap": 3, "period": "minute"}, "source": "server", "amount": 0, "reset": WINDOW_START + 60}
        assert [_rate(client.get(SCHEDULERS, headers=auth))[0] for _ in range(3)] == [1, 2, 3]
        _assert_rate_limited(client.get(SCHEDULERS, headers=auth), 3, 50)


def test_a_tenant_can_lift_the_servers_limit_for_itself(backend):
    app, _now = _limited_app("1/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        assert data_of(client.put(RATE_LIMIT, headers=auth, json={"cap": None}))["limit"] is None
        for _ in range(3):
            assert RATE_KEYS.isdisjoint(_meta(client.get(SCHEDULERS, headers=auth)))


def test_a_reset_starts_the_count_afresh(backend):
    app, _now = _limited_app("2/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        for _ in range(2):
            data_of(client.get(SCHEDULERS, headers=auth))
        assert_error(client.get(SCHEDULERS, headers=auth), 403, "rate_limit_exceeded")
        data_of(client.post("/api/v4/sandbox/reset", headers=auth))
        assert _rate(client.get(SCHEDULERS, headers=auth)) == (1, 2, WINDOW_START + 60)


@pytest.mark.parametrize("body, field", [({"cap": 0, "period": "minute"}, "cap"), ({"cap": "ten"}, "cap"),
                                         ({"period": "minute"}, "cap"), ({"cap": 5, "period": "fortnight"}, "period"),
                                         ({"cap": 5, "per": "minute"}, "per")])
def test_an_invalid_rate_limit_is_422_and_changes_nothing(client, auth, body, field):
    before = data_of(client.get(RATE_LIMIT, headers=auth))
    assert_error(client.put(RATE_LIMIT, headers=auth, json=body), 422, field)
    assert data_of(client.get(RATE_LIMIT, headers=auth)) == before


def test_changing_the_rate_limit_needs_the_admin_token_when_the_server_has_one(backend):
    app, _now = _limited_app(admin_token="s3cret")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        assert_error(client.put(RATE_LIMIT, headers=auth, json={"cap": 1}), 403, "admin_token_required")
        assert_error(client.delete(RATE_LIMIT, headers=auth), 403, "admin_token_required")
        assert data_of(client.get(RATE_LIMIT, headers=auth))["limit"] is None
        admin = {**auth, "X-Sandbox-Admin-Token": "s3cret"}
        assert data_of(client.put(RATE_LIMIT, headers=admin, json={"cap": 1}))["limit"] == {"cap": 1, "period": "hour"}
        assert data_of(client.delete(RATE_LIMIT, headers=admin))["limit"] is None


def test_the_rate_limit_needs_a_valid_token(client):
    assert_error(client.get(RATE_LIMIT), 401, "token_missing")
    assert_error(client.put(RATE_LIMIT, json={"cap": 1}), 401, "token_missing")


def test_the_rate_limit_is_shown_as_booking_goes_on(backend):
    """A whole booking through the limit: every answer says how much of the window is used."""
    app, _now = _limited_app("5/minute")
    with app.test_client() as client:
        auth = bearer(get_token(client))
        created = client.post(SLOTS, headers=auth, json=slot_body())
        uuid = data_of(created)["pd_appointment_uuid"]
        booked = client.put(f"{APPOINTMENTS}{uuid}", headers=auth, json={"patient": {"_uuid": PEG}})
        assert data_of(booked)["booked"] is True
        cancelled = client.delete(f"{APPOINTMENTS}{uuid}", headers=auth)
        assert data_of(cancelled)["booked"] is False
        assert [_rate(a)[0] for a in (created, booked, cancelled)] == [1, 2, 3]
