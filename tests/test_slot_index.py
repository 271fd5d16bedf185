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
        patient = {"_uuid": rng.choice(["A", "B"])} if rng.random() < 0.3 else None
        slots.append({
            "pd_appointment_uuid": f"s{number}",
            "pd_provider_uuid": rng.choice(PROVIDERS),
            "location": rng.choice(PLACES),
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(minutes=rng.choice((15, 30, 600)))).isoformat(),
            "appointment_type": rng.choice(["AT1", "AT2"]),
            "booked": patient is not None,
            "patient": patient,
        })
    return slots


def _churned_index(slots: list, built: int, removed: int) -> tuple[SlotIndex, list]:
    """An index built from the first `built` slots, given the rest one by one, then the first
    `removed` taken out again; and the slots it should hold."""
    index = SlotIndex(slots[:built])
    for slot in slots[built:]:
        index.add(slot)
    for slot in slots[:removed]:
        index.remove(slot)
    return index, slots[removed:]


def test_index_lookups_match_a_full_scan_through_adds_and_removes():
    rng = random.Random(7)
    index, live = _churned_index(_slots(600, rng), built=400, removed=100)
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


def test_open_pages_count_and_cut_like_a_full_scan():
    rng = random.Random(11)
    slots = _slots(800, rng)
    index, live = _churned_index(slots, built=600, removed=150)
    windows = [(None, None), ("2026-03-01T00:00:00", "2026-04-01T00:00:00"), ("2026-03-01T00:00:00", None),
               (None, "2026-02-10T05:07:00"), ("2026-05-05T10:00:00", "2026-05-05T10:20:00")]
    for provider in PROVIDERS:
        longest = max(datetime.fromisoformat(s["end_date"]) - datetime.fromisoformat(s["start_date"])
                      for s in slots if s["pd_provider_uuid"] == provider)
        for kind in (None, "AT1", "AT2"):
            for low, high in windows:
                expected = [s["pd_appointment_uuid"] for s in sorted(live, key=lambda s: (s["start_date"],
                                                                                           s["pd_appointment_uuid"]))
                            if s["pd_provider_uuid"] == provider and not s["booked"]
                            and (kind is None or s["appointment_type"] == kind)
                            and (low is None or s["start_date"] >= low) and (high is None or s["end_date"] <= high)]
                settled = (datetime.fromisoformat(high) - longest).isoformat() if high else None
                for offset, limit in ((0, 100), (0, 3), (2, 5), (len(expected) - 2, 10), (len(expected) + 5, 10)):
                    offset = max(offset, 0)
                    count, keys = index.open_page(provider, kind, low, high, settled, offset, limit)
                    assert count == len(expected)
                    assert keys == expected[offset:offset + limit], (provider, kind, low, high, offset, limit)


def test_a_search_by_provider_pages_as_the_full_search_cuts():
    """The rules' paged search (the store's index on TinyDB) against the full search, sliced."""
    from pokitdok_sandbox.app import create_app
    from .conftest import make_settings

    app = create_app(make_settings(db_path=None))
    rules, tenant = app.sandbox.rules, app.sandbox.settings.demo_client_id
    slots = rules.search(tenant, rules.slot_search(location=[37, -96], radius="3000mi"))
    rng = random.Random(3)
    for slot in rng.sample(slots, 20):  # book some, so open and booked slots mix
        rules.update_appointment(tenant, slot["pd_appointment_uuid"], {"_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7"})
    providers = sorted({slot["pd_provider_uuid"] for slot in slots})
    sizes = []
    for provider in providers[:6]:
        for kind in (None, "AT1", "AT2"):
            for start, end in ((None, None), ("2026-12-01T00:00:00", "2027-01-01T00:00:00"),
                               ("2026-12-07T09:30:00", "2026-12-09T10:15:00"), (None, "2026-12-20T12:00:00")):
                query = rules.slot_search(pd_provider_uuid=provider.upper(), appointment_type=kind,
                                          start_date=start, end_date=end)
                everything = rules.search(tenant, query)
                sizes.append(len(everything))
                for offset, limit in ((0, 100), (0, 1), (1, 2), (max(len(everything) - 1, 0), 5), (500, 5)):
                    assert rules.search_page(tenant, query, limit, offset) == \
                        (len(everything), everything[offset:offset + limit])
    assert max(sizes) > 5 and 0 in sizes
