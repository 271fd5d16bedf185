"""Hostile requests get a 4xx in the declared error shape, never a 500, and change nothing."""

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc

from .helpers import (
    APPOINTMENTS, PATIENT, PROVIDER, SCHEDULERS, SLOTS, assert_error, assert_oauth_error, slot_body, world_view,
)

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
BOOKED = f"{APPOINTMENTS}{doc.BOOKED_SLOT}"
OPEN = f"{APPOINTMENTS}{doc.OPEN_SLOT}"


def _slot_json(location: str) -> bytes:
    return (b'{"pd_provider_uuid":"' + PROVIDER.encode() + b'","location":' + location.encode()
            + b',"appointment_type":"AT1","start_date":"2031-01-01T10:00:00","end_date":"2031-01-01T11:00:00"}')


def _deep(levels: int, open_: bytes = b"[", close: bytes = b"]") -> bytes:
    return open_ * levels + close * levels


# (id, method, path, content type or None, raw body or None, expected status, expected field).
# The field is the one `data.errors.field` names; for the token endpoint, RFC 6749's error code.
HOSTILE = [
    ("non-utf8 json", "POST", SLOTS, JSON, b'{"appointment_type": "\xff\xfe"}', 422, "body"),
    ("latin-1 json to PUT", "PUT", OPEN, JSON, b'{"description": "caf\xe9"}', 422, "body"),
    ("json array", "POST", SLOTS, JSON, b"[1, 2, 3]", 422, "body"),
    ("json string", "PUT", OPEN, JSON, b'"book it"', 422, "body"),
    ("json number", "POST", PATIENT, JSON, b"42", 422, "body"),
    ("json null", "POST", SLOTS, JSON, b"null", 422, "body"),
    ("not json", "POST", SLOTS, JSON, b"{pd_provider_uuid: 1", 422, "body"),
    ("trailing garbage", "PUT", OPEN, JSON, b'{"description": "x"} trailing', 422, "body"),
    ("empty body", "POST", SLOTS, JSON, b"", 422, "body"),
    ("empty body on PUT", "PUT", OPEN, JSON, b"", 422, "body"),
    ("empty body on patient", "POST", PATIENT, None, None, 422, "body"),
    ("whitespace body", "POST", PATIENT, JSON, b"   ", 422, "body"),
    ("wrong content type", "POST", SLOTS, "text/plain", b"hello", 415, "Content-Type"),
    ("xml", "PUT", OPEN, "application/xml", b"<patient/>", 415, "Content-Type"),
    ("form to a json operation", "POST", PATIENT, FORM, b"pd_patient_uuid=x", 415, "Content-Type"),
    # Starlette cannot parse such a form (a 400 of its own), even on a GET.
    ("multipart without boundary on a GET", "GET", SCHEDULERS, "multipart/form-data", None, 422, "Content-Type"),
    ("multipart without boundary on a DELETE", "DELETE", f"{SLOTS}{doc.DELETABLE_SLOT}", "multipart/form-data", None,
     422, "Content-Type"),
    ("extra body field", "POST", SLOTS, JSON, None, 422, "booked"),  # body built below
    ("huge float", "POST", SLOTS, JSON, _slot_json("[1e999, 0]"), 422, "location.0"),
    ("huge negative float", "POST", SLOTS, JSON, _slot_json("[0, -1e400]"), 422, "location.1"),
    ("5000-digit integer", "POST", SLOTS, JSON, _slot_json("[" + "9" * 5000 + ", 0]"), 422, "body"),
    ("NaN literal", "POST", SLOTS, JSON, _slot_json("[NaN, 0]"), 422, "location.0"),
    # A lone surrogate is valid JSON but not text: no store can answer it, so none may keep it.
    ("lone surrogate in description", "PUT", OPEN, JSON, b'{"description": "a\\ud800b"}', 422, "description"),
    ("lone low surrogate in description", "PUT", BOOKED, JSON, b'{"description": "\\udfff"}', 422, "description"),
    ("lone surrogate in a patient name", "PUT", OPEN, JSON,
     b'{"patient": {"_uuid": "' + doc.PEG_PATIENT.encode() + b'", "first_name": "\\ud83d"}}', 422,
     "patient.first_name"),
    ("lone surrogate in a key", "PUT", OPEN, JSON, b'{"\\ud800": "x"}', 422, "body"),
    ("lone surrogate in a slot", "POST", SLOTS, JSON,
     _slot_json("[32.7, -79.9]").replace(b'"AT1"', b'"AT\\ud8001"'), 422, "appointment_type"),
    ("lone surrogate in a seed", "POST", "/api/v4/sandbox/seed", JSON, b'{"seed": 1, "x": "\\udc00"}', 422, "x"),
    ("NaN fault rate", "PUT", "/api/v4/sandbox/faults", JSON,
     b'{"rules": [{"operation": "*", "status": 503, "rate": NaN}]}', 422, "rules.0.rate"),
    ("Infinity fault rate", "PUT", "/api/v4/sandbox/faults", JSON,
     b'{"rules": [{"operation": "*", "status": 503, "rate": -Infinity}]}', 422, "rules.0.rate"),
    ("surrogate bytes in query", "GET", f"{APPOINTMENTS}?patient_uuid=%ED%A0%80", None, None, 422, "patient_uuid"),
    ("Infinity literal", "POST", PATIENT, JSON,
     b'{"pd_patient_uuid":"' + doc.PEG_PATIENT.encode() + b'","pd_provider_uuid":"' + PROVIDER.encode()
     + b'","location":[Infinity, 0]}', 422, "location.0"),
    ("5000 nested arrays", "POST", SLOTS, JSON, _deep(5000), 422, "body"),
    ("5000 nested objects", "PUT", OPEN, JSON, b'{"a":' * 5000 + b"1" + b"}" * 5000, 422, "body"),
    ("990 nested arrays in a field", "PUT", OPEN, JSON, b'{"description":' + _deep(990) + b"}", 422, "body"),
    ("deep nesting in patient", "PUT", BOOKED, JSON, b'{"patient":{"email":' + _deep(3000) + b"}}", 422, "body"),
    ("newline in path parameter", "GET", f"{APPOINTMENTS}{doc.BOOKED_SLOT}%0A", None, None, 422, "path"),
    ("NUL in path parameter", "DELETE", f"{SLOTS}{doc.DELETABLE_SLOT}%00", None, None, 422, "path"),
    ("non-utf8 path parameter", "GET", f"{APPOINTMENTS}%ff%fe", None, None, 422, "pd_appointment_uuid"),
    ("newline in query", "GET", f"{APPOINTMENTS}?pd_provider_uuid={PROVIDER}%0A", None, None, 422,
     "pd_provider_uuid"),
    ("non-utf8 query", "GET", f"{APPOINTMENTS}?location=%ff,%fe", None, None, 422, "location"),
    ("huge location in query", "GET", f"{APPOINTMENTS}?location=1e999,0", None, None, 422, "location"),
    ("NaN location in query", "GET", f"{APPOINTMENTS}?location=nan,nan", None, None, 422, "location"),
    ("5000-digit latitude in query", "GET", f"{APPOINTMENTS}?location={'9' * 5000},0", None, None, 422, "location"),
    ("date out of range in query", "GET",
     f"{APPOINTMENTS}?pd_provider_uuid={PROVIDER}&start_date=0001-01-01T00:00:00%2B01:00", None, None, 422,
     "start_date"),
    ("date out of range in body", "POST", SLOTS, JSON,
     b'{"pd_provider_uuid":"' + PROVIDER.encode() + b'","location":[32.7,-79.9],"appointment_type":"AT1",'
     b'"start_date":"2031-01-01T10:00:00","end_date":"9999-12-31T23:59:59-01:00"}', 422, "end_date"),
    ("very long uuid", "GET", f"{APPOINTMENTS}{'a' * 10000}", None, None, 422, "pd_appointment_uuid"),
    ("very long query value", "GET", f"{APPOINTMENTS}?patient_uuid={'1' * 10000}", None, None, 422, "patient_uuid"),
    ("query string over 16 KiB", "GET", f"{APPOINTMENTS}?patient_uuid={'1' * 17000}", None, None, 414, "query"),
    ("repeated selector", "GET", f"{APPOINTMENTS}?pd_provider_uuid={PROVIDER}&pd_provider_uuid=nope", None, None,
     422, "pd_provider_uuid"),
    ("seed of the wrong type", "POST", "/api/v4/sandbox/seed", JSON, b'{"seed": [7]}', 422, "seed"),
    ("seed deeply nested", "POST", "/api/v4/sandbox/seed", JSON, b'{"seed":' + _deep(5000) + b"}", 422, "body"),
    ("seed 5000-digit", "POST", "/api/v4/sandbox/seed", JSON, b'{"seed":' + b"7" * 5000 + b"}", 422, "body"),
    ("token: json body", "POST", "/oauth2/token", JSON, b'{"grant_type":"client_credentials"}', 400,
     "invalid_request"),
    ("token: non-utf8 form", "POST", "/oauth2/token", FORM, b"grant_type=client_credentials&scope=\xff", 400,
     "invalid_scope"),
    ("token: percent-encoded junk", "POST", "/oauth2/token", FORM, b"grant_type=%ff%fe&scope=%00", 400,
     "unsupported_grant_type"),
    # The client is known (Basic), grant_type is missing.
    ("token: empty form", "POST", "/oauth2/token", FORM, b"", 400, "invalid_request"),
    ("token: multipart without boundary", "POST", "/oauth2/token", "multipart/form-data", b"", 400, "invalid_request"),
    ("token under base: non-utf8 form", "POST", "/api/v4/oauth2/token", FORM,
     b"grant_type=client_credentials&scope=\xff", 400, "invalid_scope"),
]


@pytest.mark.parametrize("name, method, path, content_type, body, status, field", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_request_is_refused_cleanly(client, auth, name, method, path, content_type, body, status, field):
    headers = dict(auth)
    if path.endswith("/oauth2/token"):
        headers = {"Authorization": "Basic c2FuZGJveC1kZW1vOnNhbmRib3gtZGVtby1zZWNyZXQ="}  # the demo client
    if content_type is not None:
        headers["Content-Type"] = content_type
    if name == "extra body field":
        answer = client.request(method, path, headers=auth, json={**slot_body(), "booked": True})
    else:
        answer = client.request(method, path, headers=headers, content=body)
    assert answer.status_code < 500, f"{name}: {answer.status_code} {answer.text[:300]}"
    if path.endswith("/oauth2/token"):
        assert_oauth_error(answer, status, field)
    else:
        assert_error(answer, status, field)


def test_hostile_requests_change_nothing(client, auth):
    before = world_view(client, auth)
    for name, method, path, content_type, body, _status, _field in HOSTILE:
        if path.endswith("/oauth2/token"):
            continue
        headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
        answer = client.request(method, path, headers=headers, content=body)
        assert 400 <= answer.status_code < 500, name
    assert world_view(client, auth) == before


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v4/schedule/slots/"), ("PUT", SLOTS), ("PATCH", BOOKED), ("POST", BOOKED),
    ("GET", "/api/v4/nothing"), ("GET", "/api/v5/schedule/schedulers/"), ("DELETE", "/oauth2/token"),
])
def test_unknown_routes_and_methods_use_the_error_shape(client, auth, method, path):
    answer = client.request(method, path, headers=auth)
    assert answer.status_code in (404, 405), answer.text
    assert_error(answer, answer.status_code, None)
    if answer.status_code == 405:
        assert answer.headers["allow"]


def test_a_record_an_older_version_stored_with_a_lone_surrogate_is_still_read(app, client, auth):
    """Earlier versions stored `"\\ud800"` as sent (both stores can hold it); answering it raised.
    Such a value is answered with U+FFFD in its place, wherever the record appears."""
    store = app.sandbox.tenants.store
    with store.transaction("sandbox-demo") as tenant:
        slot = tenant.get("slots", doc.BOOKED_SLOT)
        slot["description"] = "before\ud800after"
        slot["patient"] = {**slot["patient"], "first_name": "\udfff"}
        tenant.replace("slots", slot)
    answers = [client.get(BOOKED, headers=auth),
               client.get(APPOINTMENTS, headers=auth, params={"patient_uuid": slot["patient"]["_uuid"]}),
               client.put(BOOKED, headers=auth, json={"description": "mended"})]
    for answer in answers:
        assert answer.status_code == 200, answer.text
    found = next(s for s in answers[1].json()["data"] if s["pd_appointment_uuid"] == doc.BOOKED_SLOT)
    assert answers[0].json()["data"][0]["description"] == found["description"] == "before\ufffdafter"
    assert found["patient"]["first_name"] == "\ufffd"
    assert answers[2].json()["data"]["description"] == "mended"  # and it can be mended


def test_a_surrogate_pair_and_a_nul_are_text_and_kept(client, auth):
    """Only a lone surrogate is refused: a pair (`\\ud83d\\ude00`, one character) and NUL are stored as sent."""
    for sent, kept in ((b'"\\ud83d\\ude00 ok"', "\U0001F600 ok"), (b'"a\\u0000b"', "a\x00b")):
        answer = client.put(OPEN, headers={**auth, "Content-Type": JSON}, content=b'{"description": ' + sent + b"}")
        assert answer.status_code == 200, answer.text
        assert client.get(OPEN, headers=auth).json()["data"][0]["description"] == kept
