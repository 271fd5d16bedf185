"""The final documentation's rules on any target, when its contract declares them (each test is
skipped for a contract that does not: a target written to the seed alone):

* status: open -> booked -> completed with `mark_completed`; what a completed appointment refuses
  (cancel, delete, another patient's booking) and still takes (a description);
* a missing scope answered as the platform did (the 403 in the envelope, `data.errors.scope`);
* every `meta.activity_id` reads back at `/activities/{activity_id}`, `application_data` kept;
* date-times with six fractional digits, whatever precision the request sent.
"""

from __future__ import annotations

import re

import pytest

from pokitdok_sandbox.contract_tests.api import expect_status, expect_that
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body

ACTIVITIES = "/activities/"
ACTIVITY = "/activities/{activity_id}"
SIX_DIGITS = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}$")
SCOPE_WORDS = "'user_schedule' scope required to access this API"


def _spec(api) -> dict:
    return api.schema.raw_schema


def _declares_completion(api) -> bool:
    schemas = _spec(api).get("components", {}).get("schemas", {})
    return "mark_completed" in schemas.get("AppointmentUpdate", {}).get("properties", {})


def _needs(condition: bool, what: str) -> None:
    if not condition:
        pytest.skip(f"the contract does not declare {what}")


def test_a_booked_appointment_is_marked_completed_and_then_kept(api, patients):
    _needs(_declares_completion(api), "mark_completed")
    steps = Steps(api)
    slot = steps.create_slot(rule="1. create an open slot")
    uuid = slot["pd_appointment_uuid"]
    expect_that(slot.get("status") == "open", api, None, "1. an open slot has status open", "status open",
                "POST", SLOTS, actual=f"status {slot.get('status')!r}")
    answer = steps.update(uuid, {"mark_completed": True})
    expect_status(api, answer, 409, "2. only a booked appointment can be marked completed", "PUT", APPOINTMENT)
    booked = steps.book(uuid, patients[0], rule="3. book the slot")
    expect_that(booked.get("status") == "booked", api, None, "3. a booked appointment has status booked",
                "status booked", "PUT", APPOINTMENT, actual=f"status {booked.get('status')!r}")
    answer = steps.update(uuid, {"mark_completed": True})
    expect_status(api, answer, 200, "4. mark the booked appointment completed", "PUT", APPOINTMENT)
    completed = answer_json(answer, api, "PUT", APPOINTMENT)
    expect_that(completed.get("status") == "completed" and completed.get("booked") is True, api, answer,
                "4. mark the booked appointment completed", "status completed, booked true", "PUT", APPOINTMENT)
    record = steps.get_record(uuid, "5. get the completed appointment")
    expect_that(record.get("status") == "completed", api, None, "5. get the completed appointment",
                "status completed", "GET", APPOINTMENT, actual=str(record))
    # What a completed appointment refuses: the visit took place.
    expect_status(api, steps.cancel(uuid), 409, "6. a completed appointment cannot be cancelled", "DELETE",
                  APPOINTMENT)
    expect_status(api, steps.delete_slot(uuid), 409, "7. a completed appointment's slot cannot be deleted",
                  "DELETE", SLOT)
    expect_status(api, steps.update(uuid, patient_body(patients[1])), 409,
                  "8. a completed appointment cannot be booked by another patient", "PUT", APPOINTMENT)
    # ...and what it still takes.
    answer = steps.update(uuid, {"description": "Seen by the contract kit"})
    expect_status(api, answer, 200, "9. a completed appointment takes a description", "PUT", APPOINTMENT)
    expect_that(answer_json(answer, api, "PUT", APPOINTMENT).get("status") == "completed", api, answer,
                "9. a completed appointment takes a description", "still completed", "PUT", APPOINTMENT)
    # A completed appointment is kept by the target: the run's cleanup would report it as left over.
    steps.target.main.created_slots.pop(uuid.lower(), None)


def test_a_missing_scope_is_the_403_in_the_envelope_as_recorded(api):
    slot = Steps(api).create_slot()["pd_appointment_uuid"]
    answer = api.call("GET", APPOINTMENT, params={"pd_appointment_uuid": slot}, scope="business_schedule")
    expect_status(api, answer, 403, "a business_schedule-only token cannot read an appointment", "GET",
                  APPOINTMENT)
    body = answer.json()
    scope = ((body.get("data") or {}).get("errors") or {}).get("scope") if isinstance(body, dict) else None
    expect_that(scope == SCOPE_WORDS, api, answer, "a missing scope is answered as the platform did",
                f"data.errors.scope {SCOPE_WORDS!r}", "GET", APPOINTMENT, actual=f"{answer.text[:300]}")


def test_answered_date_times_have_six_fractional_digits(api):
    steps = Steps(api)
    body = steps.target.slot_body()  # whole seconds, as most clients send them
    slot = steps.create_slot(body)
    for record, where in ((slot, "POST"), (steps.get_record(slot["pd_appointment_uuid"], "get the new slot"), "GET")):
        for key in ("start_date", "end_date"):
            value = str(record.get(key))
            expect_that(bool(SIX_DIGITS.match(value)), api, None, "date-times are answered with six fractional digits",
                        f"{key} like 2015-02-05T00:00:00.000000", where, SLOTS if where == "POST" else APPOINTMENT,
                        actual=f"{key} {value!r} (sent {body[key]!r})")


def test_every_activity_id_reads_back(api):
    _needs(ACTIVITY in _spec(api).get("paths", {}), "the Activities API")
    steps = Steps(api)
    answers = [
        ("a success", api.call("GET", "/schedule/schedulers/", query={"application_data": '{"kit": 1}'})),
        ("a 404", api.call("GET", APPOINTMENT, params={"pd_appointment_uuid": "00000000-0000-4000-8000-000000000000"})),
        ("a 422", api.call("GET", APPOINTMENTS, query={"pd_provider_uuid": "not-a-uuid"})),
        ("a write", api.call("POST", SLOTS, json=steps.target.slot_body())),
    ]
    created = answers[-1][1]
    if created.status_code < 300:
        steps.target.record_slot(steps.target.main, api.wire.payload(created)["pd_appointment_uuid"])
    for what, answer in answers:
        activity_id = api.wire.meta(answer).get("activity_id")
        rule = f"the activity of {what} reads back"
        expect_that(isinstance(activity_id, str), api, answer, rule, "meta.activity_id", "GET", ACTIVITY)
        read = api.call("GET", ACTIVITY, params={"activity_id": activity_id})
        expect_status(api, read, 200, rule, "GET", ACTIVITY)
        activity = answer_json(read, api, "GET", ACTIVITY)
        expect_that(isinstance(activity, dict) and activity.get("id") == activity_id
                    and isinstance(activity.get("state"), dict) and isinstance(activity.get("history"), list),
                    api, read, rule, f"id {activity_id}, a state and a history", "GET", ACTIVITY)
    first = answer_json(api.call("GET", ACTIVITY, params={"activity_id": api.wire.meta(answers[0][1])["activity_id"]}),
                        api, "GET", ACTIVITY)
    expect_that(first.get("application_data") == {"kit": 1}, api, None, "application_data is kept on the activity",
                "application_data {'kit': 1}", "GET", ACTIVITY, actual=f"{first.get('application_data')!r}")
    listed = api.call("GET", ACTIVITIES, query={"limit": 2})
    expect_status(api, listed, 200, "the activities are listed, paged", "GET", ACTIVITIES)
    expect_that(len(api.wire.payload(listed) or []) <= 2, api, listed, "the activities are listed, paged",
                "at most limit activities", "GET", ACTIVITIES)
