"""Helpers shared by the sandbox's own tests (HTTP only: they never reach into the rules)."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from pathlib import Path

from pokitdok_sandbox.fixtures import doc_examples as doc

ROOT = Path(__file__).resolve().parent.parent  # the checkout
API = "/api/v4"
SLOTS = f"{API}/schedule/slots/"
APPOINTMENTS = f"{API}/schedule/appointments/"
PATIENT = f"{API}/schedule/patient/"
SCHEDULERS = f"{API}/schedule/schedulers/"
APPOINTMENT_TYPES = f"{API}/schedule/appointmenttypes/"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"

PROVIDER = doc.PROVIDER_UUID
MAIN_OFFICE = list(doc.PROVIDER_MAIN_OFFICE)
SECOND_OFFICE = list(doc.PROVIDER_SECOND_OFFICE)
PEG = doc.PEG_PATIENT
JOHN = doc.JOHN_DOE_BOOKING
SAM = doc.QUERY_PATIENT

# A location search that finds every seeded open slot.
EVERYWHERE = {"location": "37,-96", "radius": "3000mi"}
# Far from every seeded slot (2014-2015 documented ones, 2026-2027 generated ones).
FREE_DAY = datetime(2031, 3, 3, 8, 0)
_hours = itertools.count()


def iso(moment: datetime) -> str:
    return moment.isoformat()


def fresh_window(hours: int = 1) -> tuple[datetime, datetime]:
    """A time window no other test in this process has used (so slots never clash by accident)."""
    start = FREE_DAY + timedelta(hours=next(_hours) * 3)
    return start, start + timedelta(hours=hours)


def slot_body(start: datetime | None = None, end: datetime | None = None, **overrides) -> dict:
    if start is None:
        start, end = fresh_window()
    body = {
        "pd_provider_uuid": PROVIDER,
        "location": MAIN_OFFICE,
        "appointment_type": "AT1",
        "start_date": iso(start),
        "end_date": iso(end if end is not None else start + timedelta(hours=1)),
    }
    body.update(overrides)
    return body


def create_slot(client, headers, **overrides) -> dict:
    return data_of(client.post(SLOTS, headers=headers, json=slot_body(**overrides)))


def book(client, headers, slot_uuid: str, patient_uuid: str, id_field: str = "_uuid", **extra):
    return client.put(f"{APPOINTMENTS}{slot_uuid}", headers=headers,
                      json={"patient": {id_field: patient_uuid, **extra}})


def get_one(client, headers, slot_uuid: str) -> dict:
    body = data_of(client.get(f"{APPOINTMENTS}{slot_uuid}", headers=headers))
    assert isinstance(body, list) and len(body) == 1
    return body[0]


def search(client, headers, params) -> list[dict]:
    """Every result of a search, all pages followed through `meta.next`."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    # A list value is sent as repeated keys (as httpx does with a dict), never as its str().
    pairs = [(key, item) for key, value in pairs
             for item in (value if isinstance(value, (list, tuple)) else [value])]
    if not any(key == "limit" for key, _value in pairs):
        pairs.append(("limit", 1000))
    results, answer = [], client.get(APPOINTMENTS, headers=headers, params=pairs)
    while True:
        results += data_of(answer)
        following = answer.json()["meta"]["next"]
        if following is None:
            return results
        answer = client.get(following, headers=headers)


def open_slots_of(client, headers, provider: str = PROVIDER) -> list[dict]:
    return search(client, headers, {"pd_provider_uuid": provider})


META_KEYS = {"activity_id", "application_mode", "processing_time"}
PAGE_KEYS = {"count", "limit", "offset", "next", "previous"}
RATE_KEYS = {"rate_limit_amount", "rate_limit_cap", "rate_limit_reset"}


def assert_meta(meta: dict) -> None:
    """The platform's meta: the activity, the mode, the time taken (and paging, rate limits, and the
    `message` that says an `async=true` request was answered at once)."""
    assert META_KEYS <= set(meta) <= META_KEYS | PAGE_KEYS | RATE_KEYS | {"message"}, meta
    assert isinstance(meta["activity_id"], str) and meta["activity_id"]
    assert meta["application_mode"] == "test"
    assert isinstance(meta["processing_time"], int) and meta["processing_time"] >= 0


def data_of(answer, status: int = 200):
    """The `data` of a successful answer, once its envelope is checked (`{meta, data}`, 200)."""
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers["content-type"]
    body = answer.json()
    assert isinstance(body, dict) and set(body) == {"meta", "data"}, body
    assert_meta(body["meta"])
    assert answer.headers.get("x-activity-id") == body["meta"]["activity_id"]
    return body["data"]


def assert_error(answer, status: int, field: str | None = ...) -> dict:
    """The answer is the declared error shape with the given status (and field, when given).

    401 and the rate-limit and admin-token 403s are the platform's bare `{"message", ...}`; a missing
    scope is a 403 in the envelope with `data.errors.scope` in the platform's recorded words; every
    other error is the envelope with `data.errors` (a 422 with `validation`). Answers the error
    object: the bare body, or `data.errors`. For a 403, `field` names the code (`error`).
    """
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers["content-type"]
    body = answer.json()
    assert isinstance(body, dict), body
    if status == 403 and "data" in body:
        assert set(body) == {"meta", "data"}, body
        assert_meta(body["meta"])
        errors = body["data"]["errors"]
        assert set(errors) == {"scope", "status", "error", "message", "field"}, errors
        assert (errors["status"], errors["error"], errors["field"]) == (403, "insufficient_scope", "scope"), errors
        assert re.fullmatch(r"'[a-z_]+'( and '[a-z_]+')* scopes? required to access this API", errors["scope"]), errors
        if field is not ...:
            assert errors["error"] == field, errors
        return errors
    if status in (401, 403):
        assert set(body) == {"message", "error", "error_description"}, body
        assert body["message"] == {401: "Unauthorized", 403: "Forbidden"}[status]
        assert isinstance(body["error_description"], str) and body["error_description"]
        if field is not ...:
            assert body["error"] == field, body  # for a bare error, `field` names the code
        return body
    assert set(body) == {"meta", "data"}, body
    assert_meta(body["meta"])
    assert set(body["data"]) == {"errors"}, body
    errors = body["data"]["errors"]
    assert {"status", "error", "message", "field"} <= set(errors) <= {"status", "error", "message", "field",
                                                                      "validation"}, errors
    assert errors["status"] == status
    assert isinstance(errors["error"], str) and errors["error"]
    assert isinstance(errors["message"], str) and errors["message"]
    assert errors["field"] is None or isinstance(errors["field"], str)
    if status == 422:
        validation = errors["validation"]
        assert validation and all(isinstance(m, list) and m and all(isinstance(x, str) for x in m)
                                  for m in validation.values()), errors
        assert (errors["field"] or "request") in validation, errors
    else:
        assert "validation" not in errors, errors
    if field is not ...:
        assert errors["field"] == field, errors
    return errors


def assert_oauth_error(answer, status: int, code: str) -> dict:
    """The token endpoint's refusal: RFC 6749's `{"error", "error_description"}` with the given status and code."""
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers["content-type"]
    body = answer.json()
    assert isinstance(body, dict) and set(body) == {"error", "error_description"}, body
    assert body["error"] == code, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


def world_view(client, headers) -> dict:
    """Everything a client can see of its data set through the API, in a comparable form.

    Open slots everywhere (every seeded place is in the continental US: its middle, with the widest
    radius the sandbox allows by default), the bookings of every
    documented patient, and one-by-one lookups of the documented slots.
    """
    everywhere = search(client, headers, EVERYWHERE)
    bookings = {p: search(client, headers, {"patient_uuid": p})
                for p in (doc.PEG_PATIENT, doc.JOHN_DOE_BOOKING, doc.JOHN_DOE_LISTED, doc.QUERY_PATIENT)}
    documented = {}
    for slot in doc.SLOTS:
        answer = client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=headers)
        # The payload (or the error), never `meta`: it differs from one request to the next.
        seen = data_of(answer) if answer.status_code == 200 else assert_error(answer, answer.status_code)
        documented[slot["pd_appointment_uuid"]] = (answer.status_code, seen)
    return {"open": everywhere, "bookings": bookings, "documented": documented}
