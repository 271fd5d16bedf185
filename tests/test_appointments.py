"""Booking, updating, cancelling and searching appointments: the state rules of docs/decisions.md."""

import threading
from datetime import datetime, timedelta

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.fixtures import generate_dataset
from pokitdok_sandbox.geo import miles_between

from .helpers import (
    APPOINTMENTS, JOHN, MAIN_OFFICE, PEG, PROVIDER, SAM, SECOND_OFFICE, UNKNOWN_UUID, assert_error, book,
    create_slot, data_of, fresh_window, get_one, open_slots_of, search,
)

PEG_RECORD = next(p for p in doc.PATIENTS if p["uuid"] == PEG)


def _uuids(slots):
    return [s["pd_appointment_uuid"] for s in slots]


def _put(client, headers, slot_uuid, body):
    return client.put(f"{APPOINTMENTS}{slot_uuid}", headers=headers, json=body)


def _cancel(client, headers, slot_uuid):
    return client.delete(f"{APPOINTMENTS}{slot_uuid}", headers=headers)


# -- booking ------------------------------------------------------------------

@pytest.mark.parametrize("id_field", ["_uuid", "uuid"])
def test_booking_an_open_slot(client, auth, id_field):
    slot = create_slot(client, auth)
    booked = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG, id_field))
    assert booked["booked"] is True
    assert booked["patient"]["_uuid"] == PEG
    # The seed's `_uuid` and the final documentation's `uuid`, whichever was sent.
    assert booked["patient"]["uuid"] == PEG
    assert (booked["booked"], booked["status"]) == (True, "booked")
    # Unchanged slot fields.
    for name in ("pd_appointment_uuid", "appointment_id", "appointment_type", "start_date", "end_date",
                 "provider_scheduler_uuid"):
        assert booked[name] == slot[name]
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == booked
    assert slot["pd_appointment_uuid"] not in _uuids(open_slots_of(client, auth))
    assert slot["pd_appointment_uuid"] in _uuids(search(client, auth, {"patient_uuid": PEG}))


def test_booking_fills_in_the_known_patient_record(client, auth):
    slot = create_slot(client, auth)
    booked = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    for name in ("first_name", "last_name", "email", "birth_date"):
        assert booked["patient"][name] == PEG_RECORD[name]


def test_booking_patient_fields_sent_are_kept(client, auth):
    slot = create_slot(client, auth)
    booked = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG, phone="800-555-0000"))
    assert booked["patient"]["phone"] == "800-555-0000"


def test_double_booking_by_another_patient_is_409_and_keeps_the_first(client, auth):
    slot = create_slot(client, auth)
    first = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    answer = _put(client, auth, slot["pd_appointment_uuid"],
                  {"patient": {"_uuid": SAM}, "description": "should not be written"})
    assert_error(answer, 409, "patient")
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == first
    assert slot["pd_appointment_uuid"] not in _uuids(search(client, auth, {"patient_uuid": SAM}))


def test_rebooking_by_the_same_patient_is_idempotent(client, auth):
    slot = create_slot(client, auth)
    first = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    again = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG.upper(), "uuid"))
    assert again == first
    assert _uuids(search(client, auth, {"patient_uuid": PEG})).count(slot["pd_appointment_uuid"]) == 1


def test_documented_booking_is_an_idempotent_rebooking(client, auth):
    before = get_one(client, auth, doc.BOOKED_SLOT)
    again = data_of(book(client, auth, doc.BOOKED_SLOT, JOHN))
    assert again["patient"]["_uuid"] == JOHN == before["patient"]["_uuid"]
    assert again == before


def test_patient_id_given_twice_must_agree(client, auth):
    slot = create_slot(client, auth)
    answer = _put(client, auth, slot["pd_appointment_uuid"], {"patient": {"_uuid": PEG, "uuid": SAM}})
    assert_error(answer, 422, "patient._uuid")
    assert get_one(client, auth, slot["pd_appointment_uuid"])["booked"] is False


@pytest.mark.parametrize("body, field", [
    ({}, "body"),
    ({"patient": {}}, "patient"),
    ({"patient": {"first_name": "Peg"}}, "patient"),
    ({"patient": {"_uuid": "nope"}}, "patient._uuid"),
    ({"patient": {"_uuid": PEG + "\n"}}, "patient._uuid"),
    ({"patient": {"uuid": " " + PEG}}, "patient.uuid"),
    ({"booked": True}, "booked"),
    ({"patient": {"_uuid": PEG, "favourite_colour": "blue"}}, "patient.favourite_colour"),
    ({"description": 42}, "description"),
    ({"patient": None}, "patient"),
])
def test_malformed_update_is_422_and_changes_nothing(client, auth, body, field):
    slot = create_slot(client, auth)
    assert_error(_put(client, auth, slot["pd_appointment_uuid"], body), 422, field)
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == slot


def test_book_unknown_slot_is_404(client, auth):
    assert_error(book(client, auth, UNKNOWN_UUID, PEG), 404, "pd_appointment_uuid")


def test_concurrent_bookings_of_one_slot_let_exactly_one_win(app, auth):
    with app.test_client() as setup:
        slot = create_slot(setup, auth)
    patients = [p["uuid"] for p in generate_dataset()["patients"][:8]]
    statuses = {}

    def attempt(patient):
        with app.test_client() as own:
            statuses[patient] = book(own, auth, slot["pd_appointment_uuid"], patient).status_code

    threads = [threading.Thread(target=attempt, args=(p,)) for p in patients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses.values()) == [200] + [409] * (len(patients) - 1)
    winner = next(p for p, status in statuses.items() if status == 200)
    with app.test_client() as check:
        assert get_one(check, auth, slot["pd_appointment_uuid"])["patient"]["_uuid"] == winner


# -- description --------------------------------------------------------------

def test_description_only_update_on_a_booked_appointment(client, auth):
    slot = create_slot(client, auth)
    booked = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    updated = data_of(_put(client, auth, slot["pd_appointment_uuid"], {"description": "Bring your insurance card"}))
    assert updated["description"] == "Bring your insurance card"
    assert updated["booked"] is True and updated["patient"] == booked["patient"]
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == updated


def test_description_only_update_on_an_open_slot_keeps_it_open(client, auth):
    slot = create_slot(client, auth)
    updated = data_of(_put(client, auth, slot["pd_appointment_uuid"], {"description": "Walk-ins welcome"}))
    assert updated["description"] == "Walk-ins welcome"
    assert updated["booked"] is False and "patient" not in updated
    assert slot["pd_appointment_uuid"] in _uuids(open_slots_of(client, auth))


def test_book_and_describe_in_one_request(client, auth):
    slot = create_slot(client, auth)
    answer = _put(client, auth, slot["pd_appointment_uuid"],
                  {"patient": {"_uuid": PEG}, "description": "Welcome to M0d3rN Healthcare"})
    updated = data_of(answer)
    assert updated["booked"] is True and updated["patient"]["_uuid"] == PEG
    assert updated["description"] == "Welcome to M0d3rN Healthcare"
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == updated


# -- cancelling ----------------------------------------------------------------

def test_cancel_reopens_the_slot(client, auth):
    slot = create_slot(client, auth)
    data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    cancelled = data_of(_cancel(client, auth, slot["pd_appointment_uuid"]))
    assert cancelled["pd_appointment_uuid"] == slot["pd_appointment_uuid"]
    assert cancelled["booked"] is False and "patient" not in cancelled
    fetched = get_one(client, auth, slot["pd_appointment_uuid"])
    assert fetched["booked"] is False and "patient" not in fetched
    assert slot["pd_appointment_uuid"] in _uuids(open_slots_of(client, auth))
    assert slot["pd_appointment_uuid"] not in _uuids(search(client, auth, {"patient_uuid": PEG}))
    # Open again: another patient can book it.
    assert data_of(book(client, auth, slot["pd_appointment_uuid"], SAM))["patient"]["_uuid"] == SAM


def test_cancel_an_open_slot_is_409_and_changes_nothing(client, auth):
    slot = create_slot(client, auth)
    assert_error(_cancel(client, auth, slot["pd_appointment_uuid"]), 409, "pd_appointment_uuid")
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == slot


def test_cancel_twice_is_409_the_second_time(client, auth):
    assert data_of(_cancel(client, auth, doc.BOOKED_SLOT))["booked"] is False
    assert_error(_cancel(client, auth, doc.BOOKED_SLOT), 409, "pd_appointment_uuid")


def test_cancel_unknown_is_404(client, auth):
    assert_error(_cancel(client, auth, UNKNOWN_UUID), 404, "pd_appointment_uuid")


def test_get_unknown_is_404_and_malformed_is_422(client, auth):
    assert_error(client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth), 404, "pd_appointment_uuid")
    assert_error(client.get(f"{APPOINTMENTS}not-a-uuid", headers=auth), 422, "pd_appointment_uuid")


def test_get_by_uuid_ignores_case(client, auth):
    assert get_one(client, auth, doc.BOOKED_SLOT.upper())["pd_appointment_uuid"] == doc.BOOKED_SLOT


# -- searching -------------------------------------------------------------------

def test_search_by_patient_returns_only_that_patients_bookings(client, auth):
    mine = [create_slot(client, auth) for _ in range(2)]
    theirs = create_slot(client, auth)
    for slot in mine:
        data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    data_of(book(client, auth, theirs["pd_appointment_uuid"], SAM))
    found = search(client, auth, {"patient_uuid": PEG})
    assert set(_uuids(mine)) <= set(_uuids(found))
    assert theirs["pd_appointment_uuid"] not in _uuids(found)
    for appointment in found:
        assert appointment["booked"] is True and appointment["patient"]["_uuid"] == PEG
    starts = [datetime.fromisoformat(a["start_date"]) for a in found]
    assert starts == sorted(starts)


def test_search_by_patient_without_bookings_is_empty(client, auth):
    assert search(client, auth, {"patient_uuid": UNKNOWN_UUID}) == []


def test_search_by_provider_returns_its_open_slots_in_start_order(client, auth):
    # Created out of order, one of them booked.
    windows = [fresh_window() for _ in range(3)]
    created = [create_slot(client, auth, start=s, end=e) for s, e in reversed(windows)]
    data_of(book(client, auth, created[1]["pd_appointment_uuid"], PEG))
    found = open_slots_of(client, auth)
    assert all(s["booked"] is False and "patient" not in s for s in found)
    assert all(s["provider_scheduler_uuid"] == doc.PROVIDER_SCHEDULER_UUID for s in found)
    assert created[0]["pd_appointment_uuid"] in _uuids(found) and created[2]["pd_appointment_uuid"] in _uuids(found)
    assert created[1]["pd_appointment_uuid"] not in _uuids(found)
    starts = [datetime.fromisoformat(s["start_date"]) for s in found]
    assert starts == sorted(starts)


def test_search_by_provider_excludes_other_providers(client, auth):
    other = next(p for p in generate_dataset()["providers"] if p["pd_provider_uuid"] != PROVIDER)
    found = search(client, auth, {"pd_provider_uuid": other["pd_provider_uuid"]})
    assert found, "a generated provider should have open slots in the default data set"
    assert {s["provider_scheduler_uuid"] for s in found} == {other["provider_scheduler_uuid"]}
    assert not set(_uuids(found)) & set(_uuids(open_slots_of(client, auth)))


def test_location_in_both_query_forms_gives_the_same_result(client, auth):
    exploded = data_of(client.get(f"{APPOINTMENTS}?location=32.78811&location=-79.932364", headers=auth))
    comma = data_of(client.get(f"{APPOINTMENTS}?location=32.78811,-79.932364", headers=auth))
    as_list = data_of(client.get(APPOINTMENTS, headers=auth, params={"location": ["32.78811", "-79.932364"]}))
    assert exploded == comma == as_list
    assert doc.DELETABLE_SLOT in _uuids(exploded)


def _slot_locations():
    """Where each seeded open slot is (the API hides it; the generator is public)."""
    return {s["pd_appointment_uuid"]: s["location"] for s in generate_dataset()["slots"] if not s["booked"]}


def test_location_search_honours_the_radius_and_orders_by_start_then_distance(client, auth):
    origin = (32.78811, -79.932364)
    places = _slot_locations()
    near = search(client, auth, {"location": "32.78811,-79.932364"})
    assert near
    for slot in near:
        assert slot["booked"] is False
        assert miles_between(origin, places[slot["pd_appointment_uuid"]]) <= 10
    expected_near = {u for u, where in places.items() if miles_between(origin, where) <= 10}
    assert set(_uuids(near)) == expected_near
    keys = [(datetime.fromisoformat(s["start_date"]), miles_between(origin, places[s["pd_appointment_uuid"]]))
            for s in near]
    assert keys == sorted(keys)


def test_wider_radius_finds_more_and_a_far_point_finds_none(client, auth):
    near = search(client, auth, {"location": "32.78811,-79.932364"})
    wide = search(client, auth, {"location": "32.78811,-79.932364", "radius": "5000mi"})
    assert set(_uuids(near)) < set(_uuids(wide))
    assert search(client, auth, {"location": "-45.0,170.0"}) == []  # the South Pacific
    assert search(client, auth, {"location": "-45.0,170.0", "radius": "25mi"}) == []


def test_radius_in_kilometres(client, auth):
    origin = (32.78811, -79.932364)
    places = _slot_locations()
    found = search(client, auth, {"location": "32.78811,-79.932364", "radius": "3km"})
    expected = {u for u, where in places.items() if miles_between(origin, where) <= 3 * 0.621371}
    assert set(_uuids(found)) == expected


def test_location_and_provider_combine(client, auth):
    second = create_slot(client, auth, location=SECOND_OFFICE)
    main = create_slot(client, auth, location=MAIN_OFFICE)
    # The two offices are about half a mile apart: a 0.1 mile radius around one excludes the other.
    at_second = search(client, auth, {"pd_provider_uuid": PROVIDER, "location": SECOND_OFFICE, "radius": "0.1"})
    assert second["pd_appointment_uuid"] in _uuids(at_second)
    assert main["pd_appointment_uuid"] not in _uuids(at_second)


def test_new_slot_appears_in_location_search(client, auth):
    slot = create_slot(client, auth, location=MAIN_OFFICE)
    assert slot["pd_appointment_uuid"] in _uuids(search(client, auth, {"location": MAIN_OFFICE}))


def test_appointment_type_filter(client, auth):
    ov = create_slot(client, auth, appointment_type="OV1")
    at = create_slot(client, auth, appointment_type="AT1")
    found = search(client, auth, {"pd_provider_uuid": PROVIDER, "appointment_type": "OV1"})
    assert found and all(s["appointment_type"] == "OV1" for s in found)
    assert ov["pd_appointment_uuid"] in _uuids(found) and at["pd_appointment_uuid"] not in _uuids(found)


def test_date_filters_keep_slots_inside_the_window(client, auth):
    windows = [fresh_window() for _ in range(3)]
    created = [create_slot(client, auth, start=s, end=e) for s, e in windows]
    window_start, window_end = windows[1][0], windows[1][1]
    found = search(client, auth, {"pd_provider_uuid": PROVIDER, "start_date": window_start.isoformat(),
                                  "end_date": window_end.isoformat()})
    assert _uuids(found) == [created[1]["pd_appointment_uuid"]]
    later = search(client, auth, {"pd_provider_uuid": PROVIDER, "start_date": window_start.isoformat()})
    assert set(_uuids(later)) == {created[1]["pd_appointment_uuid"], created[2]["pd_appointment_uuid"]}
    for slot in later:
        assert datetime.fromisoformat(slot["start_date"]) >= window_start
    earlier = search(client, auth, {"pd_provider_uuid": PROVIDER, "end_date": window_end.isoformat()})
    assert created[2]["pd_appointment_uuid"] not in _uuids(earlier)
    assert {created[0]["pd_appointment_uuid"], created[1]["pd_appointment_uuid"]} <= set(_uuids(earlier))
    for slot in earlier:
        assert datetime.fromisoformat(slot["end_date"]) <= window_end


def test_date_filters_accept_offsets(client, auth):
    start, end = fresh_window()
    slot = create_slot(client, auth, start=start, end=end)
    local = {"start_date": (start + timedelta(hours=3)).isoformat() + "+03:00",
             "end_date": end.isoformat() + "Z"}
    assert _uuids(search(client, auth, {"pd_provider_uuid": PROVIDER, **local})) == [slot["pd_appointment_uuid"]]


def test_documented_query_example(client, auth):
    found = search(client, auth, {"patient_uuid": SAM, "appointment_type": "SS1",
                                  "start_date": "2015-01-14T08:00:00", "end_date": "2015-01-16T17:00:00"})
    assert _uuids(found) == [doc.QUERY_PATIENT_SLOT]


@pytest.mark.parametrize("params, field", [
    ({"pd_provider_uuid": PROVIDER, "start_date": "2031-01-02T00:00:00", "end_date": "2031-01-01T00:00:00"},
     "end_date"),
    ({"pd_provider_uuid": PROVIDER, "start_date": "2031-01-01T00:00:00", "end_date": "2031-01-01T00:00:00"},
     "end_date"),
    ({"appointment_type": "OV1"}, "patient_uuid"),
    ({}, "patient_uuid"),
    ({"pd_provider_uuid": PROVIDER, "colour": "blue"}, "colour"),
    ({"pd_provider_uuid": "b691b7f9"}, "pd_provider_uuid"),
    ({"patient_uuid": "peg"}, "patient_uuid"),
    ({"pd_provider_uuid": PROVIDER, "start_date": "yesterday"}, "start_date"),
    ({"pd_provider_uuid": PROVIDER, "start_date": "2031-02-30T00:00:00"}, "start_date"),
    ({"location": "32.78811"}, "location"),
    ({"location": "32.78811,-79.932364,5"}, "location"),
    ({"location": "95,10"}, "location"),
    ({"location": "north,west"}, "location"),
    ({"location": "32.78811,-79.932364", "radius": "far"}, "radius"),
    ({"pd_provider_uuid": PROVIDER, "radius": "5mi"}, "radius"),
    ({"pd_provider_uuid": PROVIDER, "appointment_type": "O V 1"}, "appointment_type"),
])
def test_bad_searches_are_422(client, auth, params, field):
    errors = assert_error(client.get(APPOINTMENTS, headers=auth, params=params), 422, field)
    assert field in errors["validation"]
