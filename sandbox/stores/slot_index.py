"""Secondary indexes over one tenant's slots, so lookups cost the same at 1k or 100k slots.

Kept in memory beside the data and updated on every change:
  * by provider, sorted by start date (search by provider, overlap checks),
  * the open slots by provider, and by provider and appointment type, sorted by start date, with
    their end dates (a search by provider pages through these and counts them by bisection,
    so its cost does not grow with the number of matches),
  * by patient (a patient's bookings),
  * by start date (date windows without a provider),
  * by map cell of about 7 miles (location searches).
Dates are the stored ISO strings, which sort like the dates they stand for.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Iterator

from sortedcontainers import SortedList

CELL_DEGREES = 0.1
MILES_PER_DEGREE_LAT = 69.0
MAX_CELLS = 2500  # beyond this a location search is wide enough to scan everything


class SlotIndex:
    def __init__(self, slots: Iterable[dict] = ()):
        self._by_provider: dict[str, SortedList] = defaultdict(SortedList)
        self._longest: dict[str, float] = defaultdict(float)  # longest slot per provider, in days
        self._by_patient: dict[str, set[str]] = defaultdict(set)
        self._by_start = SortedList()
        self._by_cell: dict[tuple[int, int], SortedList] = defaultdict(SortedList)
        # (provider, None) -> its open slots; (provider, type) -> those of that appointment type.
        self._open: dict[tuple[str, str | None], SortedList] = defaultdict(SortedList)
        self._open_ends: dict[str, str] = {}  # an open slot's key -> its end date
        for slot in slots:
            self.add(slot)

    def add(self, slot: dict) -> None:
        key = slot["pd_appointment_uuid"]
        entry = (slot["start_date"], key)
        self._by_provider[slot["pd_provider_uuid"]].add(entry)
        self._longest[slot["pd_provider_uuid"]] = max(self._longest[slot["pd_provider_uuid"]], _days(slot))
        self._by_start.add(entry)
        self._by_cell[cell_of(slot["location"])].add(entry)
        if slot.get("patient"):
            self._by_patient[slot["patient"]["_uuid"].lower()].add(key)
        if not slot["booked"]:
            self._open[(slot["pd_provider_uuid"], None)].add(entry)
            self._open[(slot["pd_provider_uuid"], slot["appointment_type"])].add(entry)
            self._open_ends[key] = slot["end_date"]

    def remove(self, slot: dict) -> None:
        key = slot["pd_appointment_uuid"]
        entry = (slot["start_date"], key)
        self._by_provider[slot["pd_provider_uuid"]].discard(entry)
        self._by_start.discard(entry)
        self._by_cell[cell_of(slot["location"])].discard(entry)
        if slot.get("patient"):
            self._by_patient[slot["patient"]["_uuid"].lower()].discard(key)
        if not slot["booked"]:
            self._open[(slot["pd_provider_uuid"], None)].discard(entry)
            self._open[(slot["pd_provider_uuid"], slot["appointment_type"])].discard(entry)
            self._open_ends.pop(key, None)

    # -- lookups: each yields slot uuids, a superset the caller filters exactly --
    def of_provider(self, provider: str, start: str | None = None, end: str | None = None) -> Iterator[str]:
        """Slots of a provider starting in [start, end], in start order."""
        entries = self._by_provider.get(provider)
        if not entries:
            return iter(())
        return (key for _, key in entries.irange(_low(start), _high(end)))

    def open_page(self, provider: str, kind: str | None, start: str | None, end: str | None,
                  end_minus_longest: str | None, offset: int, limit: int) -> tuple[int, list[str]]:
        """Open slots of a provider (of appointment type `kind`, or any) starting at or after `start`
        and ending by `end`, in start order: how many there are, and the keys of `limit` of them
        from `offset`. Exact, not a superset.

        Positions are found by bisection. `end_minus_longest` is `end` less the provider's longest
        slot: a slot starting before it ends by `end`, so only the slots starting from there to
        `end` (a few) have their end date checked; the count never visits the others.
        """
        entries = self._open.get((provider, kind))
        if not entries:
            return 0, []
        low = entries.bisect_left(_low(start)) if start is not None else 0
        high = entries.bisect_right(_high(end)) if end is not None else len(entries)
        high = max(high, low)
        settled = high if end is None else min(max(entries.bisect_left(_low(end_minus_longest)), low), high)
        # [low, settled): every one ends by `end`; [settled, high): those that do.
        tail = [key for _, key in entries.islice(settled, high) if self._open_ends[key] <= end] \
            if settled < high else []
        count = settled - low + len(tail)
        first = low + offset
        keys = [key for _, key in entries.islice(first, min(first + limit, settled))] if first < settled else []
        keys += tail[max(first - settled, 0):][:limit - len(keys)]
        return count, keys

    def overlap_candidates(self, provider: str, start: str, end: str, start_minus_longest: str) -> Iterator[str]:
        """Slots of a provider that start before `end` and not long before `start`.

        `start_minus_longest` is `start` less the provider's longest slot, so any
        slot starting earlier has ended before `start`.
        """
        entries = self._by_provider.get(provider)
        if not entries:
            return iter(())
        return (key for s, key in entries.irange(_low(start_minus_longest), (end, ""), inclusive=(True, False)))

    def longest_days(self, provider: str) -> float:
        return self._longest.get(provider, 0.0)

    def of_patient(self, patient: str) -> set[str]:
        return set(self._by_patient.get(patient.lower(), ()))

    def starting_between(self, start: str | None, end: str | None) -> Iterator[str]:
        return (key for _, key in self._by_start.irange(_low(start), _high(end)))

    def near(self, point, miles: float, start: str | None = None, end: str | None = None) -> list[str] | None:
        """Slots starting in [start, end] in the map cells within `miles` of `point`;
        None when that is most of the map."""
        cells = cells_near(point, miles)
        if cells is None:
            return None
        found: list[str] = []
        for cell in cells:
            entries = self._by_cell.get(cell)
            if entries:
                found.extend(key for _, key in entries.irange(_low(start), _high(end)))
        return found


def cells_near(point, miles: float) -> list[tuple[int, int]] | None:
    """The map cells within `miles` of `point`; None when that is most of the map."""
    lat, lon = point
    dlat = miles / MILES_PER_DEGREE_LAT
    cos_lat = max(math.cos(math.radians(lat)), 0.01)
    dlon = miles / (MILES_PER_DEGREE_LAT * cos_lat)
    lat_cells = range(_bucket(lat - dlat), _bucket(lat + dlat) + 1)
    lon_cells = range(_bucket(lon - dlon), _bucket(lon + dlon) + 1)
    if len(lat_cells) * len(lon_cells) > MAX_CELLS or dlon >= 180:
        return None
    return list(dict.fromkeys((a, _wrap_lon_bucket(b)) for a in lat_cells for b in lon_cells))


def _bucket(degrees: float) -> int:
    return math.floor(degrees / CELL_DEGREES)


def _wrap_lon_bucket(bucket: int) -> int:
    cells = round(360 / CELL_DEGREES)
    return (bucket + cells // 2) % cells - cells // 2


def cell_of(location) -> tuple[int, int]:
    return _bucket(location[0]), _wrap_lon_bucket(_bucket(location[1]))


def _low(start: str | None):
    return (start, "") if start is not None else None


def _high(end: str | None):
    return (end, "\uffff") if end is not None else None


def _days(slot: dict) -> float:
    from datetime import datetime

    start = datetime.fromisoformat(slot["start_date"])
    end = datetime.fromisoformat(slot["end_date"])
    return (end - start).total_seconds() / 86400
