"""The slot indexes answer a superset of what a full scan finds, and nothing a scan would not."""

import random
from datetime import datetime, timedelta

from pokitdok_sandbox import geo
from pokitdok_sandbox.stores.slot_index import SlotIndex

PROVIDERS = ["p1", "p2", "p3"]
PLACES = [[32.7881, -79.9323], [32.80, -79.95], [40.71, -74.0], [-33.86, 151.2], [64.1, -179.95], [64.1, 179.95]]


def _slots(count, rng):
    slots = []
    for number in range(count):
        start = datetime(2026, 1, 1) + timedelta(minutes=15 * rng.randrange(20000))
        slots.append({
            "pd_appointment_uuid": f"s{number}",
            "pd_provider_uuid": rng.choice(PROVIDERS),
            "location": rng.choice(PLACES),
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(minutes=rng.choice((15, 30, 600)))).isoformat(),
            "patient": {"_uuid": rng.choice(["A", "B"])} if rng.random() < 0.3 else None,
        })
    return slots


def test_index_lookups_match_a_full_scan_through_adds_and_removes():
    rng = random.Random(7)
    slots = _slots(600, rng)
    index = SlotIndex(slots[:400])
    for slot in slots[400:]:
        index.add(slot)
    for slot in slots[:100]:
        index.remove(slot)
    live = slots[100:]
    low, high = "2026-03-01T00:00:00", "2026-04-01T00:00:00"

    assert set(index.of_provider("p1", low, high)) == {
        s["pd_appointment_uuid"] for s in live if s["pd_provider_uuid"] == "p1" and low <= s["start_date"] <= high}
    assert index.of_patient("a") == {
        s["pd_appointment_uuid"] for s in live if s["patient"] and s["patient"]["_uuid"] == "A"}
    assert set(index.starting_between(low, high)) == {
        s["pd_appointment_uuid"] for s in live if low <= s["start_date"] <= high}
    for place in PLACES:
        near = set(index.near(place, 10))
        within = {s["pd_appointment_uuid"] for s in live if geo.miles_between(place, s["location"]) <= 10}
        assert within <= near
        assert all(geo.miles_between(place, s["location"]) < 200 for s in live if s["pd_appointment_uuid"] in near)
        in_window = {s["pd_appointment_uuid"] for s in live if low <= s["start_date"] <= high
                     and geo.miles_between(place, s["location"]) <= 10}
        assert in_window <= set(index.near(place, 10, low, high)) <= near
    assert index.near(PLACES[0], 20000) is None  # most of the map: the caller scans


def test_overlap_candidates_include_every_overlapping_slot():
    rng = random.Random(3)
    slots = _slots(500, rng)
    index = SlotIndex(slots)
    for _ in range(200):
        start = datetime(2026, 1, 1) + timedelta(minutes=rng.randrange(300000))
        end = start + timedelta(minutes=45)
        earliest = start - timedelta(days=index.longest_days("p2"))
        found = set(index.overlap_candidates("p2", start.isoformat(), end.isoformat(), earliest.isoformat()))
        overlapping = {s["pd_appointment_uuid"] for s in slots if s["pd_provider_uuid"] == "p2"
                       and s["start_date"] < end.isoformat() and start.isoformat() < s["end_date"]}
        assert overlapping <= found
