"""POST /schedule/slots/ and DELETE /schedule/slots/{uuid}: the slot rules of docs/decisions.md."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.fixtures import generate_dataset

from .helpers import (
    APPOINTMENTS, MAIN_OFFICE, PEG, PROVIDER, SECOND_OFFICE, SLOTS, UNKNOWN_UUID, assert_error, book, create_slot,
    data_of, fresh_window, get_one, open_slots_of, slot_body,
)


def _delete(client, headers, slot_uuid):
    return client.delete(f"{SLOTS}{slot_uuid}", headers=headers)


def test_create_slot_answers_200_with_an_open_slot(client, auth):
    start, end = fresh_window()
    slot = data_of(client.post(SLOTS, headers=auth, json=slot_body(start, end, appointment_type="OV1")))
    uuid.UUID(slot["pd_appointment_uuid"])
    assert slot["booked"] is False
    assert "patient" not in slot
    assert slot["appointment_type"] == "OV1"
    assert datetime.fromisoformat(slot["start_date"]) == start
    assert datetime.fromisoformat(slot["end_date"]) == end
    assert slot["provider_scheduler_uuid"] == doc.PROVIDER_SCHEDULER_UUID
    assert isinstance(slot["appointment_id"], str) and slot["appointment_id"]
    # It is really there: as a one-element GET and among the provider's open slots.
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == slot
    assert slot["pd_appointment_uuid"] in {s["pd_appointment_uuid"] for s in open_slots_of(client, auth)}


def test_created_slots_get_distinct_ids(client, auth):
    first, second = create_slot(client, auth), create_slot(client, auth)
    assert first["pd_appointment_uuid"] != second["pd_appointment_uuid"]


def _count(client, auth):
    return len(open_slots_of(client, auth))


@pytest.mark.parametrize("override, status, field", [
    ({"pd_provider_uuid": UNKNOWN_UUID}, 404, "pd_provider_uuid"),
    ({"appointment_type": "ZZ9"}, 422, "appointment_type"),
    ({"location": [90.5, -79.9]}, 422, "location"),
    ({"location": [-91, -79.9]}, 422, "location"),
    ({"location": [32.7, 180.5]}, 422, "location.1"),
    ({"location": [32.7]}, 422, "location"),
    ({"pd_provider_uuid": "not-a-uuid"}, 422, "pd_provider_uuid"),
    ({"start_date": "16/12/2031 10:00"}, 422, "start_date"),
    ({"start_date": "2031-02-30T10:00:00"}, 422, "start_date"),
])
def test_refused_slot_is_not_created(client, auth, override, status, field):
    before = _count(client, auth)
    assert_error(client.post(SLOTS, headers=auth, json=slot_body(**override)), status, field)
    assert _count(client, auth) == before


@pytest.mark.parametrize("missing", ["pd_provider_uuid", "location", "appointment_type", "start_date", "end_date"])
def test_every_slot_field_is_required(client, auth, missing):
    body = slot_body()
    del body[missing]
    errors = assert_error(client.post(SLOTS, headers=auth, json=body), 422, missing)
    assert errors["message"].startswith(f"{missing} is required")


@pytest.mark.parametrize("minutes", [0, -30])
def test_end_not_after_start_is_422(client, auth, minutes):
    start, _ = fresh_window()
    before = _count(client, auth)
    answer = client.post(SLOTS, headers=auth, json=slot_body(start, start + timedelta(minutes=minutes)))
    errors = assert_error(answer, 422, "end_date")
    assert errors["validation"] == {"end_date": ["must be after start_date"]}
    assert _count(client, auth) == before


def test_end_before_start_once_offsets_are_applied_is_422(client, auth):
    # 10:00Z to 11:00+01:00 is 10:00Z to 10:00Z: an empty slot.
    answer = client.post(SLOTS, headers=auth, json=slot_body(
        start_date="2031-06-02T10:00:00Z", end_date="2031-06-02T11:00:00+01:00"))
    assert_error(answer, 422, "end_date")


def test_overlap_with_same_provider_same_location_is_409_and_changes_nothing(client, auth):
    start, end = fresh_window(hours=2)
    first = create_slot(client, auth, start=start, end=end)
    before = open_slots_of(client, auth)
    for a, b in [(start, end), (start + timedelta(minutes=30), end + timedelta(minutes=30)),
                 (start - timedelta(minutes=30), start + timedelta(minutes=1)),
                 (start + timedelta(minutes=10), end - timedelta(minutes=10)),
                 (start - timedelta(hours=1), end + timedelta(hours=1))]:
        answer = client.post(SLOTS, headers=auth, json=slot_body(a, b))
        body = assert_error(answer, 409)
        assert first["pd_appointment_uuid"] in body["message"]
    assert open_slots_of(client, auth) == before


def test_overlap_with_a_booked_slot_is_409_too(client, auth):
    start, end = fresh_window()
    slot = create_slot(client, auth, start=start, end=end)
    assert data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))["booked"] is True
    assert_error(client.post(SLOTS, headers=auth, json=slot_body(start, end)), 409)


def test_same_time_at_another_location_is_allowed(client, auth):
    start, end = fresh_window()
    create_slot(client, auth, start=start, end=end, location=MAIN_OFFICE)
    answer = client.post(SLOTS, headers=auth, json=slot_body(start, end, location=SECOND_OFFICE))
    assert data_of(answer)["booked"] is False


def test_adjacent_slots_do_not_overlap(client, auth):
    start, end = fresh_window(hours=2)
    middle = start + timedelta(hours=1)
    create_slot(client, auth, start=start, end=middle)
    after = data_of(client.post(SLOTS, headers=auth, json=slot_body(middle, end)))
    assert datetime.fromisoformat(after["start_date"]) == middle
    before = data_of(client.post(SLOTS, headers=auth, json=slot_body(start - timedelta(hours=1), start)))
    assert datetime.fromisoformat(before["end_date"]) == start


def test_overlap_is_judged_on_utc_times(client, auth):
    start, end = fresh_window()
    create_slot(client, auth, start=start, end=end)
    # The same hour written with a +02:00 offset.
    shifted = {"start_date": (start + timedelta(hours=2)).isoformat() + "+02:00",
               "end_date": (end + timedelta(hours=2)).isoformat() + "+02:00"}
    assert_error(client.post(SLOTS, headers=auth, json=slot_body(**shifted)), 409)


@pytest.mark.parametrize("suffix, offset", [("Z", timedelta(0)), ("+02:00", timedelta(hours=2)),
                                            ("-05:30", timedelta(hours=-5, minutes=-30)), ("", timedelta(0))])
def test_dates_are_answered_in_utc_without_offset(client, auth, suffix, offset):
    start, end = fresh_window()
    local_start, local_end = start + offset, end + offset
    answer = client.post(SLOTS, headers=auth, json=slot_body(
        start_date=local_start.isoformat(timespec="microseconds") + suffix,
        end_date=local_end.isoformat() + suffix))
    slot = data_of(answer)
    for name, expected in (("start_date", start), ("end_date", end)):
        written = slot[name]
        assert not written.endswith(("Z", "z")) and "+" not in written and written.count("-") == 2, written
        parsed = datetime.fromisoformat(written)
        assert parsed.tzinfo is None and parsed == expected


def test_fractional_seconds_are_kept(client, auth):
    start, _ = fresh_window()
    given = start.replace(microsecond=197709)
    slot = create_slot(client, auth, start_date=given.isoformat() + "Z",
                       end_date=(given + timedelta(minutes=30)).astimezone(timezone.utc).isoformat())
    assert datetime.fromisoformat(slot["start_date"]) == given
    assert datetime.fromisoformat(slot["end_date"]) == given + timedelta(minutes=30)


def test_delete_open_slot_then_it_is_gone(client, auth):
    slot = create_slot(client, auth)
    assert data_of(_delete(client, auth, slot["pd_appointment_uuid"]))["pd_appointment_uuid"] == \
        slot["pd_appointment_uuid"]
    assert_error(client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth), 404,
                 "pd_appointment_uuid")
    assert slot["pd_appointment_uuid"] not in {s["pd_appointment_uuid"] for s in open_slots_of(client, auth)}
    assert_error(_delete(client, auth, slot["pd_appointment_uuid"]), 404, "pd_appointment_uuid")


def test_deleted_slot_frees_its_time(client, auth):
    start, end = fresh_window()
    slot = create_slot(client, auth, start=start, end=end)
    data_of(_delete(client, auth, slot["pd_appointment_uuid"]))
    again = data_of(client.post(SLOTS, headers=auth, json=slot_body(start, end)))
    assert again["pd_appointment_uuid"] != slot["pd_appointment_uuid"]


def test_delete_booked_slot_is_409_and_keeps_the_booking(client, auth):
    slot = create_slot(client, auth)
    booked = data_of(book(client, auth, slot["pd_appointment_uuid"], PEG))
    assert_error(_delete(client, auth, slot["pd_appointment_uuid"]), 409, "pd_appointment_uuid")
    assert get_one(client, auth, slot["pd_appointment_uuid"]) == booked


def test_documented_booked_slot_cannot_be_deleted(client, auth):
    assert_error(_delete(client, auth, doc.BOOKED_SLOT), 409)
    assert get_one(client, auth, doc.BOOKED_SLOT)["booked"] is True


def test_delete_unknown_slot_is_404(client, auth):
    assert_error(_delete(client, auth, UNKNOWN_UUID), 404, "pd_appointment_uuid")


def test_delete_with_malformed_uuid_is_422(client, auth):
    assert_error(_delete(client, auth, "ab21e95b"), 422, "pd_appointment_uuid")


def test_another_provider_at_the_same_time_and_place_is_allowed(client, auth):
    # A generated provider of the default data set (the generator is public and deterministic).
    other = next(p for p in generate_dataset()["providers"] if p["pd_provider_uuid"] != PROVIDER)
    start, end = fresh_window()
    create_slot(client, auth, start=start, end=end)
    answer = client.post(SLOTS, headers=auth, json=slot_body(start, end, pd_provider_uuid=other["pd_provider_uuid"]))
    assert data_of(answer)["provider_scheduler_uuid"] == other["provider_scheduler_uuid"]
    # ...while the documented provider again, same time and place, clashes.
    assert_error(client.post(SLOTS, headers=auth, json=slot_body(start, end)), 409)


def test_provider_uuid_is_matched_case_insensitively(client, auth):
    slot = create_slot(client, auth, pd_provider_uuid=PROVIDER.upper())
    assert slot["provider_scheduler_uuid"] == doc.PROVIDER_SCHEDULER_UUID
