"""Helpers shared by the sandbox's own tests (HTTP only: they never reach into the rules)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from fixtures import doc_examples as doc

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
    answer = client.post(SLOTS, headers=headers, json=slot_body(**overrides))
    assert answer.status_code == 201, answer.text
    return answer.json()


def book(client, headers, slot_uuid: str, patient_uuid: str, id_field: str = "_uuid", **extra):
    return client.put(f"{APPOINTMENTS}{slot_uuid}", headers=headers,
                      json={"patient": {id_field: patient_uuid, **extra}})


def get_one(client, headers, slot_uuid: str) -> dict:
    answer = client.get(f"{APPOINTMENTS}{slot_uuid}", headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert isinstance(body, list) and len(body) == 1
    return body[0]


def search(client, headers, params) -> list[dict]:
    answer = client.get(APPOINTMENTS, headers=headers, params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def open_slots_of(client, headers, provider: str = PROVIDER) -> list[dict]:
    return search(client, headers, {"pd_provider_uuid": provider})


def assert_error(answer, status: int, field: str | None = ...) -> dict:
    """The answer is the declared Error shape with the given status (and field, when given)."""
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers["content-type"]
    body = answer.json()
    assert isinstance(body, dict), body
    assert {"status", "error", "message"} <= set(body), body
    assert set(body) <= {"status", "error", "message", "field"}, body
    assert body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["message"], str) and body["message"]
    assert body.get("field") is None or isinstance(body["field"], str)
    if field is not ...:
        assert body.get("field") == field, body
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
        documented[slot["pd_appointment_uuid"]] = (answer.status_code, answer.json())
    return {"open": everywhere, "bookings": bookings, "documented": documented}
