"""The scheduling rules of the contract, over HTTP only: any correct implementation passes.

Every slot here is the kit's own (far-future, random time, the kit's provider) and is removed
at the end of the run; every answer is also checked against the contract's schemas.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pokitdok_sandbox.contract_tests.api import expect_status, expect_that, names_a_field, validation_of
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, parse_datetime
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body, patient_of

# Searches are checked both ways against a few records the run keeps (plugin.resident_records).
pytestmark = pytest.mark.usefixtures("resident_records")


@pytest.fixture
def steps(api) -> Steps:
    return Steps(api)


def test_a_new_slot_is_open_and_answers_what_was_asked(steps, target):
    body = target.slot_body()
    slot = steps.create_slot(body)
    rule = "a created slot is the one asked for"
    for key in ("start_date", "end_date"):
        expect_that(parse_datetime(slot.get(key)) == parse_datetime(body[key]), steps.api, None, rule,
                    f"{key} {body[key]}", "POST", SLOTS, actual=f"{key} {slot.get(key)!r}")
    expect_that(slot.get("appointment_type") == body["appointment_type"], steps.api, None, rule,
                f"appointment_type {body['appointment_type']}", "POST", SLOTS,
                actual=f"appointment_type {slot.get('appointment_type')!r}")
    record = steps.get_record(slot["pd_appointment_uuid"], "a created slot can be read back")
    expect_that(record.get("booked") is False, steps.api, None, "a created slot can be read back", "booked false",
                "GET", APPOINTMENT, actual=f"booked {record.get('booked')!r}")


def test_double_booking_by_another_patient_is_refused_with_409(steps, patients):
    first, second = patients
    slot = steps.create_slot()["pd_appointment_uuid"]
    steps.book(slot, first)
    answer = steps.update(slot, patient_body(second))
    expect_status(steps.api, answer, 409, "double booking is refused", "PUT", APPOINTMENT,
                  "the slot is booked by another patient")
    record = steps.get_record(slot, "a refused booking changes nothing")
    expect_that(patient_of(record) == first.lower(), steps.api, None, "a refused booking changes nothing",
                f"still booked by {first}", "GET", APPOINTMENT, actual=f"patient {patient_of(record)}")


def test_booking_again_for_the_same_patient_is_idempotent(steps, patients):
    slot = steps.create_slot()["pd_appointment_uuid"]
    steps.book(slot, patients[0])
    steps.book(slot, patients[0], rule="re-booking by the same patient answers 200 (idempotent)")


def test_cancelling_reopens_the_slot_for_anyone(steps, patients):
    first, second = patients
    slot = steps.create_slot()["pd_appointment_uuid"]
    steps.book(slot, first)
    answer = steps.cancel(slot)
    rule = "cancelling reopens the slot"
    expect_status(steps.api, answer, 200, rule, "DELETE", APPOINTMENT, "the slot, open again")
    cancelled = answer_json(answer, steps.api, "DELETE", APPOINTMENT)
    expect_that(cancelled.get("booked") is False and not cancelled.get("patient"), steps.api, answer, rule,
                "booked false and no patient", "DELETE", APPOINTMENT)
    record = steps.get_record(slot, rule)
    expect_that(record.get("booked") is False and not record.get("patient"), steps.api, None, rule,
                "GET shows the slot open", "GET", APPOINTMENT, actual=str(record))
    steps.book(slot, second, rule="a reopened slot can be booked by another patient")


def test_cancelling_an_open_slot_is_refused_with_409(steps):
    slot = steps.create_slot()["pd_appointment_uuid"]
    expect_status(steps.api, steps.cancel(slot), 409, "only a booked appointment can be cancelled", "DELETE",
                  APPOINTMENT, "the slot is not booked")


def test_a_booked_slot_cannot_be_deleted(steps, patients):
    slot = steps.create_slot()["pd_appointment_uuid"]
    steps.book(slot, patients[0])
    expect_status(steps.api, steps.delete_slot(slot), 409, "a booked slot cannot be deleted", "DELETE", SLOT,
                  "cancel it first")
    record = steps.get_record(slot, "a refused delete changes nothing")
    expect_that(record.get("booked") is True, steps.api, None, "a refused delete changes nothing",
                "the slot still exists, booked", "GET", APPOINTMENT, actual=str(record))


def test_a_deleted_slot_is_gone(steps):
    slot = steps.create_slot()["pd_appointment_uuid"]
    expect_status(steps.api, steps.delete_slot(slot), 200, "an open slot can be deleted", "DELETE", SLOT)
    expect_status(steps.api, steps.get(slot), 404, "a deleted slot is gone", "GET", APPOINTMENT)
    expect_status(steps.api, steps.delete_slot(slot), 404, "a deleted slot is gone", "DELETE", SLOT)


def test_an_overlapping_slot_is_refused_with_409(steps, target):
    start = target.next_slot_start()
    steps.create_slot(target.slot_body(start, minutes=60))
    answer = steps.create_slot_answer(target.slot_body(start + timedelta(minutes=30), minutes=60))
    expect_status(steps.api, answer, 409, "a slot may not overlap another slot of the provider at the location",
                  "POST", SLOTS, "it overlaps the slot created just before")


def test_patient_queries_return_only_that_patients_bookings(steps, patients):
    first, second = patients
    mine, theirs = steps.create_slot()["pd_appointment_uuid"], steps.create_slot()["pd_appointment_uuid"]
    steps.book(mine, first)
    steps.book(theirs, second)
    answer = steps.search({"patient_uuid": first})
    rule = "a patient query returns that patient's bookings only"
    expect_status(steps.api, answer, 200, rule, "GET", APPOINTMENTS)
    found = answer_json(answer, steps.api, "GET", APPOINTMENTS)
    ids = {str(item.get("pd_appointment_uuid", "")).lower() for item in found}
    expect_that(mine.lower() in ids, steps.api, answer, rule, f"includes the booking {mine}", "GET", APPOINTMENTS)
    expect_that(theirs.lower() not in ids, steps.api, answer, rule, f"not the other patient's booking {theirs}",
                "GET", APPOINTMENTS)
    strangers = [item for item in found if item.get("booked") is not True or patient_of(item) != first.lower()]
    expect_that(not strangers, steps.api, answer, rule, f"every item booked by {first}", "GET", APPOINTMENTS,
                actual=f"{len(strangers)} item(s) of other patients or open slots, e.g. {strangers[:1]}")


def test_open_slot_queries_list_open_slots_only(steps, target, patients):
    start = target.next_slot_start()
    slot = steps.create_slot(target.slot_body(start))["pd_appointment_uuid"]
    window = {"pd_provider_uuid": target.options.provider_uuid,
              "start_date": (start - timedelta(minutes=1)).isoformat(),
              "end_date": (start + timedelta(hours=1)).isoformat()}
    rule = "a provider query lists the provider's open slots"
    answer = steps.search(window)
    expect_status(steps.api, answer, 200, rule, "GET", APPOINTMENTS)
    ids = {str(item.get("pd_appointment_uuid", "")).lower() for item in answer_json(answer, steps.api, "GET",
                                                                                    APPOINTMENTS)}
    expect_that(slot.lower() in ids, steps.api, answer, rule, f"includes the open slot {slot}", "GET", APPOINTMENTS)
    steps.book(slot, patients[0])
    answer = steps.search(window)
    ids = {str(item.get("pd_appointment_uuid", "")).lower() for item in answer_json(answer, steps.api, "GET",
                                                                                    APPOINTMENTS)}
    expect_that(slot.lower() not in ids, steps.api, answer, "a booked slot is no longer listed as open",
                f"no {slot} once booked", "GET", APPOINTMENTS)


def test_a_description_update_keeps_the_booking(steps, patients):
    slot = steps.create_slot()["pd_appointment_uuid"]
    steps.book(slot, patients[0])
    answer = steps.update(slot, {"description": "Contract kit check-up"})
    rule = "a description update changes the description only"
    expect_status(steps.api, answer, 200, rule, "PUT", APPOINTMENT)
    updated = answer_json(answer, steps.api, "PUT", APPOINTMENT)
    expect_that(updated.get("description") == "Contract kit check-up" and updated.get("booked") is True
                and patient_of(updated) == patients[0].lower(), steps.api, answer, rule,
                "the new description, still booked by the same patient", "PUT", APPOINTMENT)


@pytest.mark.parametrize("change, status, rule", [
    ({"swap_dates": True}, "invalid", "end_date must be after start_date"),
    ({"appointment_type": "NO-SUCH-TYPE"}, 422, "appointment_type must be a known appointment type code"),
    ({"pd_provider_uuid": "random"}, 404, "the provider must exist"),
], ids=["end-before-start", "unknown-type", "unknown-provider"])
def test_invalid_slots_are_refused(steps, target, change, status, rule):
    body, change = target.slot_body(), dict(change)
    if change.pop("swap_dates", False):
        body["start_date"], body["end_date"] = body["end_date"], body["start_date"]
    if change.get("pd_provider_uuid") == "random":
        change["pd_provider_uuid"] = target.unknown_uuid()
    body.update(change)
    status = steps.api.wire.invalid if status == "invalid" else status
    expect_status(steps.api, steps.create_slot_answer(body), status, rule, "POST", SLOTS)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_unknown_appointments_are_404(steps, method):
    unknown = steps.target.unknown_uuid()
    answer = {"GET": lambda: steps.get(unknown),
              "PUT": lambda: steps.update(unknown, {"description": "nobody's"}),
              "DELETE": lambda: steps.cancel(unknown)}[method]()
    expect_status(steps.api, answer, 404, "an unknown appointment is 404", method, APPOINTMENT)
    if method == "DELETE":
        expect_status(steps.api, steps.delete_slot(unknown), 404, "an unknown slot is 404", "DELETE", SLOT)


def test_a_tenants_records_are_invisible_to_another(steps, target, api):
    """Each client id is its own data set: a slot of the run's tenant is unknown to another tenant,
    by uuid and through search. (Only where the target gives the run tenants of its own.)"""
    if not target.main.fresh:
        pytest.skip("a shared target: the run has one client only")
    other = target.tenant("neighbour")
    body = target.slot_body()
    slot = steps.create_slot(body)["pd_appointment_uuid"]
    rule = "another tenant does not see the run's records"
    answer = api.call("GET", APPOINTMENT, params={"pd_appointment_uuid": slot}, tenant=other)
    expect_status(api, answer, 404, rule, "GET", APPOINTMENT, "the slot belongs to another client id")
    answer = api.call("GET", APPOINTMENTS, tenant=other, query={
        "pd_provider_uuid": body["pd_provider_uuid"], "start_date": body["start_date"], "end_date": body["end_date"]})
    expect_status(api, answer, 200, rule, "GET", APPOINTMENTS)
    listed = {str(item.get("pd_appointment_uuid", "")).lower() for item in answer_json(answer, api, "GET", APPOINTMENTS)}
    expect_that(slot.lower() not in listed, api, answer, rule, f"no {slot} in another tenant's search",
                "GET", APPOINTMENTS)


# -- refusals: what the contract refuses although the schema lets it through ---------------------

def _expect_refused_naming(steps, answer, fields: tuple, rule: str, method: str, path: str) -> None:
    """422, and data.errors.validation names one of `fields` (a client shows the message next to it)."""
    expect_status(steps.api, answer, steps.api.wire.invalid, rule, method, path)
    if steps.api.wire.enveloped:
        validation = validation_of(steps.api, answer)
        expect_that(names_a_field(validation, fields), steps.api, answer, rule,
                    f"data.errors.validation names {' or '.join(fields)}", method, path,
                    actual=f"validation {validation!r}")


@pytest.mark.parametrize("change, fields, rule", [
    ({"swap_dates": True}, ("start_date", "end_date"), "end_date must be after start_date"),
    ({"location": [95.0, -79.932364]}, ("location",), "a latitude is within [-90, 90]"),
    ({"appointment_type": "NO-SUCH-TYPE"}, ("appointment_type",), "appointment_type must be a known code"),
    ({"colour": "blue"}, ("colour", "body"), "a field the contract does not declare is refused"),
], ids=["end-before-start", "latitude-95", "unknown-type", "unknown-field"])
def test_a_refused_slot_names_the_field_at_fault(steps, target, change, fields, rule):
    """422, and data.errors.validation names the field (a client shows the message next to it)."""
    body, change = target.slot_body(), dict(change)
    if change.pop("swap_dates", False):
        body["start_date"], body["end_date"] = body["end_date"], body["start_date"]
    body.update(change)
    answer = steps.create_slot_answer(body)
    _expect_refused_naming(steps, answer, fields, rule, "POST", SLOTS)


@pytest.mark.parametrize("query, fields, rule", [
    ({"swap_dates": True}, ("start_date", "end_date"), "end_date must be after start_date"),
    ({"location": "95,-79.932364", "radius": "10mi"}, ("location",), "a latitude is within [-90, 90]"),
    ({"radius": "10mi"}, ("location", "radius"), "radius needs a location"),
    ({"no_selector": True}, ("patient_uuid", "pd_provider_uuid", "location", "request"),
     "a search needs patient_uuid, pd_provider_uuid or location"),
], ids=["end-before-start", "latitude-95", "radius-without-location", "no-selector"])
def test_a_refused_search_names_the_field_at_fault(steps, target, query, fields, rule):
    start = target.next_slot_start()
    params = {"pd_provider_uuid": target.options.provider_uuid, "start_date": start.isoformat(),
              "end_date": (start + timedelta(days=1)).isoformat()}
    query = dict(query)
    if query.pop("swap_dates", False):
        params["start_date"], params["end_date"] = params["end_date"], params["start_date"]
    if query.pop("no_selector", False) or "location" in query:
        params.pop("pd_provider_uuid")
    params.update(query)
    answer = steps.search(params)
    _expect_refused_naming(steps, answer, fields, rule, "GET", APPOINTMENTS)


# -- paging: the pages of a collection are the collection ----------------------------------------

CATALOGUES = {"/schedule/schedulers/": "scheduler_uuid", "/schedule/appointmenttypes/": "appointment_type_uuid"}


def _page(api, path: str, query: dict, rule: str):
    answer = api.call("GET", path, query=query)
    expect_status(api, answer, 200, rule, "GET", path)
    return answer, answer_json(answer, api, "GET", path), api.wire.meta(answer)


def _link_query(link) -> dict | None:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(link).query, keep_blank_values=True)) if isinstance(link, str) else None


@pytest.mark.parametrize("path", [*CATALOGUES, APPOINTMENTS])
def test_the_pages_of_a_collection_are_the_collection(api, target, path):
    """Walked with a small limit by meta.next, then back by meta.previous, the pages hold exactly the
    records of one page of 1000, in the same order, each page the slice at its offset, and every page
    states the same meta.count: that is, offset, limit, count and both links agree with the data."""
    if not api.wire.paged:
        pytest.skip("the contract declares no paging")
    if path == APPOINTMENTS and not target.main.fresh:
        pytest.skip("a shared target: other users' slots may change between the pages")
    base = {"pd_provider_uuid": target.options.provider_uuid} if path == APPOINTMENTS else {}
    key = CATALOGUES.get(path, "pd_appointment_uuid")
    rule = "the pages of a collection are the collection (limit, offset, count, next, previous)"
    answer, everything, meta = _page(api, path, {**base, "limit": 1000}, rule)
    ids = [str(item.get(key, "")).lower() for item in everything]
    count = meta.get("count", len(ids)) if api.wire.enveloped else len(ids)
    if len(ids) == 1000:
        pytest.skip("more than one page of 1000 records")
    expect_that(count == len(ids), api, answer, rule, f"meta.count {len(ids)} (the records of one page of 1000)",
                "GET", path, actual=f"meta.count {count!r}")
    limit = max(1, -(-len(ids) // 4))  # four or five pages
    query, pages, seen = {**base, "limit": limit}, [], 0
    while query is not None and seen <= len(ids) // limit + 1:
        answer, items, meta = _page(api, path, query, rule)
        offset = int(query.get("offset") or 0)
        got = [str(item.get(key, "")).lower() for item in items]
        expect_that(got == ids[offset:offset + limit], api, answer, rule,
                    f"the records at {offset}..{offset + limit - 1} of the whole list", "GET", path,
                    actual=f"{got[:3]}... ({len(got)} records)")
        expect_that(meta.get("count") == len(ids), api, answer, rule, f"meta.count {len(ids)} on every page",
                    "GET", path, actual=f"meta.count {meta.get('count')!r}")
        pages.append((offset, meta))
        query, seen = _link_query(meta.get("next")), seen + 1
    walked = [offset for offset, _meta in pages]
    expect_that(walked == list(range(0, len(ids), limit)) or (not ids and walked == [0]), api, None, rule,
                f"meta.next leads through offsets {list(range(0, len(ids), limit))}", "GET", path,
                actual=f"offsets {walked}")
    for (offset, meta), (before, _) in zip(pages[1:], pages):
        back = _link_query(meta.get("previous")) or {}
        expect_that(str(back.get("offset")) == str(before) and str(back.get("limit")) == str(limit), api, None,
                    rule, f"meta.previous of the page at {offset} is the page at {before} (limit {limit})",
                    "GET", path, actual=f"meta.previous {meta.get('previous')!r}")


LISTINGS = {"schedulers": ("/schedule/schedulers/", "scheduler_uuid"),
            "appointment-types": ("/schedule/appointmenttypes/", "appointment_type_uuid"),
            "a-patients-bookings": (APPOINTMENTS, "pd_appointment_uuid"),
            "a-providers-open-slots": (APPOINTMENTS, "pd_appointment_uuid")}


@pytest.mark.parametrize("listing", list(LISTINGS))
def test_a_listed_record_reads_the_same_by_its_uuid(api, target, patients, listing):
    """Every record of the schedulers and appointment types lists, and of the first page of a patient's
    bookings and of a provider's open slots (the target's own data included), is the record GET by its
    uuid answers: one record, one content, whichever way it is read."""
    path, key = LISTINGS[listing]
    query = {"patient_uuid": patients[0]} if listing == "a-patients-bookings" else \
        {"pd_provider_uuid": target.options.provider_uuid} if listing == "a-providers-open-slots" else {}
    if api.wire.paged:
        query["limit"] = 1000 if path in CATALOGUES else 10
    rule = "a record in a list is the record its uuid reads"
    listed = api.call("GET", path, query=query)
    expect_status(api, listed, 200, rule, "GET", path)
    by_uuid = APPOINTMENT if path == APPOINTMENTS else path + "{" + key + "}"
    param = "pd_appointment_uuid" if path == APPOINTMENTS else key
    for record in answer_json(listed, api, "GET", path):
        answer = api.call("GET", by_uuid, params={param: record.get(key)})
        expect_status(api, answer, 200, rule, "GET", by_uuid)
        read = answer_json(answer, api, "GET", by_uuid)
        read = read[0] if isinstance(read, list) and len(read) == 1 else read
        expect_that(read == record, api, answer, rule, f"the listed record {record}", "GET", by_uuid,
                    actual=str(read))
