"""The contract's rules as partitions: for each rule, its equivalence classes and boundaries
(inside, on and just outside every edge; every direction; empty, one, a page, more than a page;
every form a value may take).

`RULES` is the catalogue (docs/contract-kit.md lists it too); `cover(run, rule, partition)`
records that a run sent a request of that partition and checked its answer; the summary of
every run says which partitions it exercised (`coverage_lines`). `test_partitions.py` reaches
each of them with fixed boundary cases, checked against the reference model (model.py).
"""

from __future__ import annotations

RULES: dict[str, dict[str, str]] = {
    "radius": {
        "default inside": "no radius: a slot at 98.5 % of 10 miles is listed",
        "default outside": "no radius: a slot at 101.5 % of 10 miles is not listed",
        "mi inside": "`25mi`: a slot at 98.5 % of 25 miles is listed",
        "mi outside": "`25mi`: a slot at 101.5 % of 25 miles is not listed",
        "km inside": "`60km` (37.28 miles): a slot at 98.5 % of it is listed",
        "km outside": "`60km`: a slot at 101.5 % of it (inside 60 miles) is not listed",
        "bare number inside": "`5` (miles): a slot at 4.93 miles is listed (not 5 km)",
        "bare number outside": "`5`: a slot at 5.08 miles is not listed",
        "decimal": "`7.5mi`: inside and outside",
        "zero on the edge": "`0`: a slot at the very place (distance 0 = radius) is listed, none elsewhere",
        "every bearing": "inside and outside at the 8 bearings N, NE, E, SE, S, SW, W, NW",
        "across the antimeridian": "a search at longitude 179.95 finds a slot at -179.95 (7 miles away)",
        "near a pole": "a search at latitude 89.9 finds a slot across the pole (14 miles away)",
        "southern and western": "a search at a place of negative latitude finds its neighbours",
    },
    "dates": {
        "start on the edge": "start_date equal to a slot's start lists it",
        "start just inside": "start_date one microsecond before a slot's start lists it",
        "start just outside": "start_date one microsecond after a slot's start does not list it",
        "start a second outside": "start_date one second after a slot's start does not list it",
        "end on the edge": "end_date equal to a slot's end lists it",
        "end just inside": "end_date one microsecond after a slot's end lists it",
        "end just outside": "end_date one microsecond before a slot's end does not list it",
        "end earlier the same day": "end_date the same day as a slot's end, an hour earlier, does not list it",
        "start later the same day": "start_date the same day as a slot's start, an hour later, does not list it",
        "only start": "start_date alone (open-ended window)",
        "only end": "end_date alone (open-ended window)",
        "offset edges": "window edges written with Z, +02:00 and -05:00, on and just outside the edge",
        "written forms": "slots written naive, with Z, with a negative offset crossing midnight, with microseconds",
        "across midnight": "a slot from 23:30 to 00:30: found by a window on either day's edge, not by one day",
        "across a year": "a slot from December 31 23:45 to January 1 00:15",
        "leap day": "a slot on February 29, in a window of that day only",
        "daylight saving days": "slots on the days US clocks change (the times are UTC: nothing shifts)",
        "documentation day": "a slot on 2014-12-16, the day of the documented records (fresh tenants)",
    },
    "ordering": {
        "by start": "results in increasing start date",
        "equal starts by distance": "slots starting together: nearer first in a location search",
        "equal starts stable across pages": "slots starting together page the same as the unpaged answer",
    },
    "paging": {
        "empty": "no match: count 0, data [], next and previous null",
        "one": "one match: count 1",
        "exactly a page": "100 matches with the default limit: one full page, next null",
        "a page and one": "101 matches: a page of 100, next to a page of 1; count 101 on both",
        "limit 1": "limit 1 walks the matches one by one through meta.next",
        "limit 99, 100, 101": "limits around the default page",
        "limit 1000": "the largest limit: every match in one page",
        "offset at the last": "offset count-1: the last match, previous link",
        "offset at count": "offset count: empty data, count unchanged",
        "offset far beyond": "offset 1000000000: empty data, count unchanged",
        "location search at scale": "a location search of 101 matches pages like a provider search",
        "patient search paged": "a patient's bookings in pages of one",
    },
    "overlap": {
        "equal": "the same times at the same place: 409",
        "contained": "inside another slot: 409",
        "containing": "around another slot: 409",
        "a minute over the start": "ending one minute after another starts: 409",
        "a second over the start": "ending one second after another starts: 409",
        "a microsecond over the start": "ending one microsecond after another starts: 409",
        "a minute over the end": "starting one minute before another ends: 409",
        "a second over the end": "starting one second before another ends: 409",
        "a microsecond over the end": "starting one microsecond before another ends: 409",
        "touching before": "ending as another starts: 200",
        "touching after": "starting as another ends: 200",
        "a microsecond apart": "starting one microsecond after another ends: 200",
        "another type": "another appointment type, same provider, place and times: 409",
        "another place": "same provider and times, another place: 200",
        "another provider": "same place and times, another provider: 200",
        "not the latest slot": "overlapping the first of three slots (made before the others): 409",
        "a booked slot": "overlapping a booked slot: 409",
        "a deleted slot": "the times of a deleted slot: 200",
        "nothing stored": "a refused slot is not listed afterwards",
    },
    "refusals": {
        "slot end equals start": "POST a slot whose end_date equals start_date: 422",
        "slot end a microsecond before start": "422",
        "slot end a microsecond after start": "accepted (200)",
        "latitude on the edge": "latitude 90 and -90, longitude 180 and -180: accepted",
        "latitude just outside": "latitude 90.000001 or -90.000001: 422",
        "longitude just outside": "longitude 180.000001 or -180.000001: 422",
        "unknown type": "an appointment type code nobody listed: 422",
        "unknown provider": "a provider nobody knows: 404",
        "search without selector": "no patient_uuid, pd_provider_uuid or location: 422",
        "search radius without location": "422",
        "search end before start": "422",
        "search end equals start": "422",
        "search latitude outside": "location latitude 91: 422",
        "search radius unreadable": "radius `ten`: 422",
        "limit 0 and 1001": "just outside [1, 1000]: 422",
        "offset -1": "just below 0: 422",
        "booking with disagreeing ids": "patient `_uuid` and `uuid` differ: 422",
        "update without patient or description": "PUT {}: 422",
    },
    "providers places types": {
        "second provider": "slots of a second provider (given or found on the target) in the run",
        "provider filter": "a provider search lists that provider's slots, not the other's",
        "location without provider": "a location search lists both providers' slots there",
        "location and provider": "both filters at once",
        "type filter": "each of two types lists its own slots only, with provider, location or patient",
        "second place": "slots at a second place: a location search there and at the first place",
        "booked elsewhere": "a booking of the second provider's slot shows in the patient's search",
        "patient and provider": "patient_uuid with pd_provider_uuid: that patient's bookings with that provider only",
        "type in another case": "appointment_type in lower case (`at1`) matches no slot of `AT1`, by provider, "
                                "place or patient",
    },
    "conditional reads": {
        "the current tag": "If-None-Match with the page's own ETag: 304",
        "another tag": "If-None-Match with tags that are not the page's (sorting before and after it): 200 and the page",
        "any tag": "If-None-Match `*`: 304",
        "another page's tag": "If-None-Match with the tag of another page of the same list (another offset, "
                              "another limit): 200 and that page",
    },
    "booking and cancel": {
        "booked hidden from location": "a booked slot is listed by neither a location nor a provider search",
        "cancel reopens for location": "after a cancel the slot is listed by a location search again",
        "cancel reopens for provider": "after a cancel the slot is listed by a provider search again",
        "cancel leaves patient search": "after a cancel the patient's search no longer lists it",
        "deleted gone from location": "a deleted slot is listed by no location search",
        "patient with no booking": "a patient without bookings: an empty list",
        "patient filtered by type and dates": "a patient's bookings narrowed by type and window",
    },
    "tokens": {
        "not a form": "a token request sent as JSON: 400 invalid_request",
        "no grant type": "a form without grant_type: 400 invalid_request",
        "another grant type": "grant_type=password: 400 unsupported_grant_type",
        "unknown scope": "a scope the client does not have: 400 invalid_scope",
        "wrong secret": "the run's client with another secret: 401 invalid_client",
        "one scope": "scope=user_schedule: 200, a token of that scope only",
        "both scopes": "both scopes, space separated: 200, a token of both",
        "credentials in the form": "client_id and client_secret in the form body, no HTTP Basic: 200",
    },
    "identifiers": {
        "upper-case uuid read": "a slot read by its uuid in upper case",
        "upper-case provider search": "pd_provider_uuid in upper case finds the same slots",
        "upper-case patient search": "patient_uuid in upper case finds the same bookings",
        "location forms": "location as repeated keys, comma separated and indexed",
    },
}


def cover(run, rule: str, partition: str) -> None:
    """Record that this run exercised `partition` of `rule` (a name of the catalogue)."""
    if partition not in RULES.get(rule, {}):
        raise KeyError(f"{rule!r} / {partition!r} is not a partition of the catalogue (partitions.RULES)")
    run.partitions.add((rule, partition))


def every_partition() -> set[tuple[str, str]]:
    return {(rule, name) for rule, parts in RULES.items() for name in parts}


def coverage_lines(exercised: set) -> list[str]:
    """The summary's account: how many partitions of each rule the run reached, and which it did not."""
    everything = every_partition()
    reached = exercised & everything
    lines = [f"partitions exercised: {len(reached)} of {len(everything)} (the rules of docs/contract-kit.md)"]
    for rule, parts in RULES.items():
        done = [name for name in parts if (rule, name) in reached]
        missing = [name for name in parts if (rule, name) not in reached]
        line = f"  {rule} {len(done)}/{len(parts)}: " + "; ".join(done)
        if missing:
            line += "  NOT EXERCISED: " + "; ".join(missing)
        lines.append(line)
    return lines
