"""The whole life of a slot, by hand: create -> get -> book -> update -> cancel -> delete -> 404.

The same chain the stateful property test explores through the contract's links, written out
step by step so a failure names the exact step.
"""

from __future__ import annotations

from pokitdok_sandbox.contract_tests.api import expect_status, expect_that
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, SLOT
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body, patient_of


def test_slot_lifecycle(api, patients):
    steps = Steps(api)
    patient = patients[0]

    # create: an open slot
    slot = steps.create_slot(rule="1. create an open slot")
    slot_uuid = slot["pd_appointment_uuid"]

    # get: the same slot, open, as a one-element list
    record = steps.get_record(slot_uuid, "2. get the new slot")
    expect_that(record.get("booked") is False, api, None, "2. get the new slot", "booked false", "GET", APPOINTMENT,
                actual=f"booked {record.get('booked')!r}")

    # book: the patient holds it, and GET agrees
    steps.book(slot_uuid, patient, rule="3. book the slot")
    record = steps.get_record(slot_uuid, "3. get the booked slot")
    expect_that(record.get("booked") is True and patient_of(record) == patient.lower(), api, None,
                "3. get the booked slot", f"booked true by {patient}", "GET", APPOINTMENT, actual=str(record))

    # update: a description, booking untouched
    answer = steps.update(slot_uuid, {"description": "Welcome to M0d3rN Healthcare"})
    expect_status(api, answer, 200, "4. update the description", "PUT", APPOINTMENT)
    updated = answer_json(answer, api, "PUT", APPOINTMENT)
    expect_that(updated.get("description") == "Welcome to M0d3rN Healthcare" and updated.get("booked") is True,
                api, answer, "4. update the description", "the description set, still booked", "PUT", APPOINTMENT)

    # book + describe in one request, as the documentation's example does (idempotent for the same patient)
    answer = steps.update(slot_uuid, {**patient_body(patient), "description": "Second visit"})
    expect_status(api, answer, 200, "5. book and describe in one request", "PUT", APPOINTMENT)

    # cancel: open again, without patient
    answer = steps.cancel(slot_uuid)
    expect_status(api, answer, 200, "6. cancel the appointment", "DELETE", APPOINTMENT)
    record = steps.get_record(slot_uuid, "6. get the cancelled slot")
    expect_that(record.get("booked") is False and not record.get("patient"), api, None,
                "6. get the cancelled slot", "booked false, no patient", "GET", APPOINTMENT, actual=str(record))

    # delete: gone
    expect_status(api, steps.delete_slot(slot_uuid), 200, "7. delete the open slot", "DELETE", SLOT)
    expect_status(api, steps.get(slot_uuid), 404, "8. the deleted slot is 404", "GET", APPOINTMENT)
