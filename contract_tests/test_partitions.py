"""Every rule of the contract at its partitions and boundaries (partitions.RULES): inside, on and
just outside every edge, in every direction, at every scale a page has, across providers, places
and types. Each case is a request whose answer the contract fixes; searches are checked both ways
against the reference model (model.py), refusals must carry the contract's status, and each case
records its partition, so the summary says which ones the run reached.

The cases are fixed (no randomness but the run's clock, which derives from the seed): a failure
replays exactly. Every slot is the kit's own, in a window of the kit's clock (or, for calendar
edges in a fresh tenant, on fixed real dates at the run's second place), and is removed at the end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from pokitdok_sandbox.contract_tests.api import expect_status, names_a_field, validation_of
from pokitdok_sandbox.contract_tests.model import BEARINGS, Model, Query, Record, destination, miles_between, parse_radius
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, parse_datetime, written
from pokitdok_sandbox.contract_tests.partitions import cover
from pokitdok_sandbox.contract_tests.report import ContractViolation
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body

pytestmark = pytest.mark.usefixtures("resident_records")

MICRO = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DATES = ("start_date", "end_date")
SELECTORS = ("patient_uuid", "pd_provider_uuid", "location", "request")  # as test_rules accepts
INSIDE, OUTSIDE = 0.985, 1.015  # fractions of a radius: clear of any implementation's rounding


def near(origin, radius: str | None = None, **filters) -> Query:
    query = Query(location=tuple(origin), radius=parse_radius(radius), radius_text=radius)
    for key, value in filters.items():
        setattr(query, key, value)
    return query


class Lab:
    """The cases of one test: its records (a model of their own), requests checked as they go."""

    def __init__(self, api, contract_run):
        self.api, self.run, self.steps = api, contract_run, Steps(api)
        self.target = api.target
        self.options = contract_run.options
        self.model = Model()
        self.provider = self.options.provider_uuid.lower()
        self.origin = tuple(self.options.location)
        types = list(dict.fromkeys([self.target.appointment_type] + list(self.target.appointment_types)))
        self.types = types[:2]
        self.fresh = self.target.main.fresh

    def cover(self, rule: str, partition: str) -> None:
        cover(self.run, rule, partition)

    def fail(self, rule: str, partition: str, expected: str, answer, operation: str, actual: str | None = None):
        raise ContractViolation(f"partition {rule}: {partition}", expected, answer, operation=operation,
                                actual=actual, rule=f"{rule}: {partition}")

    # -- slots ------------------------------------------------------------------------------
    def body(self, start: datetime, end: datetime, place=None, provider=None, kind=None, offset=None) -> dict:
        return {"pd_provider_uuid": provider or self.options.provider_uuid, "location": list(place or self.origin),
                "appointment_type": kind or self.types[0], "start_date": written(start, offset),
                "end_date": written(end, offset)}

    def post(self, body: dict):
        self.target.issued_starts.add(body["start_date"])
        return self.steps.create_slot_answer(body)

    def slot(self, start: datetime, end: datetime, place=None, provider=None, kind=None, offset=None,
             rule: str = "", partition: str = "") -> Record:
        """Open a slot the contract accepts (200) and keep it in the model."""
        body = self.body(start, end, place, provider, kind, offset)
        answer = self.post(body)
        made = self.api.payload(answer, "POST", SLOTS) if answer.status_code < 300 else None
        if answer.status_code != self.api.wire.created or not isinstance(made, dict):
            if rule:
                self.fail(rule, partition, f"{self.api.wire.created} (the slot is valid and overlaps nothing of its "
                          "provider at its place)", answer, f"POST {SLOTS}")
            expect_status(self.api, answer, self.api.wire.created, "create an open slot", "POST", SLOTS,
                          f"a valid slot ({body})")
        record = self.model.add(Record(uuid=made["pd_appointment_uuid"].lower(), provider=body["pd_provider_uuid"],
                                       location=tuple(body["location"]), appointment_type=body["appointment_type"],
                                       start=start, end=end))
        record.learn(made)
        differences = record.differences(made)
        if differences:
            self.fail(rule or "dates", partition or "written forms", f"the slot as asked: {record.view()}", answer,
                      f"POST {SLOTS}", actual="; ".join(differences))
        return record

    def quick_slots(self, bodies: list[dict]) -> list[Record]:
        """Many slots (for paging), each answer's status and content checked, the schema once."""
        records = []
        for index, body in enumerate(bodies):
            if index == 0:
                records.append(self.slot(parse_datetime(body["start_date"]), parse_datetime(body["end_date"]),
                                         body["location"]))
                continue
            self.target.issued_starts.add(body["start_date"])
            answer = self.target.request("POST", SLOTS, json=body)
            made = self.target.payload(answer)
            if isinstance(made, dict) and isinstance(made.get("pd_appointment_uuid"), str):
                self.target.record_slot(self.target.main, made["pd_appointment_uuid"])
            if answer.status_code != self.api.wire.created or not isinstance(made, dict):
                expect_status(self.api, answer, self.api.wire.created, "create an open slot", "POST", SLOTS,
                              "touching slots of one provider at one place")
            record = self.model.add(Record(uuid=made["pd_appointment_uuid"].lower(), provider=body["pd_provider_uuid"],
                                           location=tuple(body["location"]), appointment_type=body["appointment_type"],
                                           start=parse_datetime(body["start_date"]),
                                           end=parse_datetime(body["end_date"])))
            record.learn(made)
            records.append(record)
        return records

    def remove(self, records) -> None:
        """Delete open slots the test no longer needs (a booked one is cancelled first)."""
        for record in records:
            if record.booked:
                self.target.request("DELETE", APPOINTMENT.format(pd_appointment_uuid=record.uuid))
            answer = self.target.request("DELETE", SLOT.format(pd_appointment_uuid=record.uuid))
            if answer.status_code < 300:
                self.target.main.created_slots.pop(record.uuid, None)
                self.model.remove(record.uuid)

    def book(self, record: Record, patient: str) -> None:
        body = patient_body(patient)
        answer = self.steps.update(record.uuid, body)
        expect_status(self.api, answer, 200, "booking an open slot", "PUT", APPOINTMENT)
        record.booked, record.patient = True, {"_uuid": patient.lower(), **{k: v for k, v in body["patient"].items()
                                                                            if k != "_uuid"}}

    def cancel(self, record: Record) -> None:
        answer = self.steps.cancel(record.uuid)
        expect_status(self.api, answer, 200, "cancelling a booking", "DELETE", APPOINTMENT)
        record.booked, record.patient = False, None

    # -- searches ---------------------------------------------------------------------------
    def search(self, rule: str, partition: str, query: Query, *, params: dict | None = None, limit: int = 1000,
               offset: int | None = None, own: bool = True, must_list=(), must_not_list=()):
        """One search, its answer checked both ways against the model. `own`: the window holds only
        the test's records (in a fresh tenant nothing else may be listed); `params`: replaces what
        the query would send (another written form of the same query)."""
        self.cover(rule, partition)
        sent = dict(params if params is not None else query.params())
        if limit is not None:
            sent["limit"] = limit
        if offset is not None:
            sent["offset"] = offset
        answer = self.api.call("GET", APPOINTMENTS, query=sent, conform=False)
        operation = f"GET {APPOINTMENTS}"
        if answer.status_code != 200:
            self.fail(rule, partition, "200 (a search with a selector)", answer, operation)
        self.api.conforms("GET", APPOINTMENTS, answer, query=sent, model_checked=True)
        items = self.api.payload(answer, "GET", APPOINTMENTS)
        meta = self.api.wire.meta(answer) if self.api.wire.paged else {}
        whole = offset in (None, 0) and len(self.model.expected(query)) < (limit or 100)
        problems = self.model.check_search(query, items, complete=whole)
        listed = [str(i.get("pd_appointment_uuid", "")).lower() for i in items if isinstance(i, dict)]
        if own and self.fresh:
            problems += [f"{uuid} is listed, yet the test's window holds no such record of the run (a refused "
                         "write stored?)" for uuid in listed if uuid not in self.model.records]
        problems += [f"{r.uuid} must be listed ({self._where(r, query)})" for r in must_list if r.uuid not in listed]
        problems += [f"{r.uuid} must not be listed ({self._where(r, query)})" for r in must_not_list if r.uuid in listed]
        if problems:
            self.fail(rule, partition, f"every result matches {query.describe()}, every matching record of the "
                      "run is listed, in order", answer, operation, actual="\n".join(problems[:8]))
        return answer, items, meta

    def _where(self, record: Record, query: Query) -> str:
        text = f"{record.start.isoformat()} to {record.end.isoformat()}"
        if query.location:
            text += f", {miles_between(query.location, record.location):.3f} miles away"
        return text

    def expect_page(self, rule: str, partition: str, query: Query, limit: int | None, offset: int | None = None):
        """One page of a search whose matches are all the test's: `meta.count` is the number of
        matches, `data` the slice at `offset` of the model's order."""
        answer, items, meta = self.search(rule, partition, query, limit=limit, offset=offset)
        expected = self.model.expected(query)
        start = offset or 0
        want = [r.uuid for r in expected[start:start + (limit or 100)]]
        got = [str(i.get("pd_appointment_uuid", "")).lower() for i in items if isinstance(i, dict)]
        if self.api.wire.paged and meta.get("count") != len(expected) and self.fresh:
            self.fail(rule, partition, f"meta.count {len(expected)} (every match, not the page)", answer,
                      f"GET {APPOINTMENTS}", actual=f"meta.count {meta.get('count')!r}")
        if got != want and (self.fresh or not set(want) <= set(got)):
            self.fail(rule, partition, f"{len(want)} records: the slice [{start}:{start + (limit or 100)}] of the "
                      f"{len(expected)} matches in start order", answer, f"GET {APPOINTMENTS}",
                      actual=f"{len(got)} records; first {got[:2]}, last {got[-1:]}; wanted first {want[:2]}, "
                             f"last {want[-1:]}")
        return answer, items, meta

    def refused(self, rule: str, partition: str, status: int, method: str, path: str, fields: tuple = (), **request):
        """A request the contract refuses with `status`: exactly that status; a 422's validation
        names one of `fields` (the field at fault)."""
        self.cover(rule, partition)
        answer = self.api.call(method, path, conform=False, **request)
        if answer.status_code < 300 and method == "POST" and path == SLOTS:
            made = self.target.payload(answer)
            if isinstance(made, dict) and isinstance(made.get("pd_appointment_uuid"), str):
                self.target.record_slot(self.target.main, made["pd_appointment_uuid"])
        if answer.status_code != status:
            self.fail(rule, partition, f"{status} (the contract refuses this request with {status})", answer,
                      f"{method} {path}")
        self.api.conforms(method, path, answer, params=request.get("params"), query=request.get("query"),
                          body=request.get("json"))
        if fields and status == self.api.wire.invalid and self.api.wire.enveloped:
            validation = validation_of(self.api, answer)
            if not names_a_field(validation, fields):
                self.fail(rule, partition, f"data.errors.validation names {' or '.join(fields)} (the field at fault)",
                          answer, f"{method} {path}", actual=f"validation {validation!r}")
        return answer

    def window(self, start: datetime, end: datetime, **filters) -> Query:
        return Query(provider=filters.pop("provider", self.provider), start=start, end=end, **filters)


@pytest.fixture
def lab(api, contract_run) -> Lab:
    return Lab(api, contract_run)


# -- radius, units, bearings, the edges of the globe --------------------------------------------

def test_radius_partitions(lab):
    at = lab.target.next_slot_start()
    start, end = at + 10 * MINUTE, at + 40 * MINUTE
    o = lab.origin
    placed: dict[str, list] = {}

    def ring(name, miles_list, bearings=(0,)):
        for miles in miles_list:
            for bearing in bearings:
                placed.setdefault(name, []).append(lab.slot(start, end, destination(o, miles, bearing)))

    centre = lab.slot(start, end, o)
    ring("default in", [10 * INSIDE], BEARINGS)
    ring("default out", [10 * OUTSIDE], BEARINGS)
    ring("mi", [25 * INSIDE, 25 * OUTSIDE], (0, 225))
    km = 60 * 0.621371
    ring("km", [km * INSIDE, km * OUTSIDE], (90, 315))
    ring("bare", [5 * INSIDE, 5 * OUTSIDE], (180, 45))
    ring("decimal", [7.5 * INSIDE, 7.5 * OUTSIDE], (270,))
    window = dict(start=start, end=end)
    lab.search("radius", "default inside", near(o, **window), must_list=placed["default in"])
    lab.cover("radius", "default outside")
    lab.cover("radius", "every bearing")
    lab.cover("ordering", "equal starts by distance")
    lab.cover("ordering", "by start")
    lab.search("radius", "mi inside", near(o, "25mi", **window))
    lab.cover("radius", "mi outside")
    lab.search("radius", "km inside", near(o, "60km", **window))
    lab.cover("radius", "km outside")
    lab.search("radius", "bare number inside", near(o, "5", **window))
    lab.cover("radius", "bare number outside")
    lab.search("radius", "decimal", near(o, "7.5mi", **window))
    lab.search("radius", "zero on the edge", near(o, "0", **window), must_list=[centre])
    lab.search("radius", "zero on the edge", near(o, "0km", **window), must_list=[centre])
    # the same query in each form a location may take
    query = near(o, "20mi", **window)
    params = query.params()
    lab.search("identifiers", "location forms", query, params={**params, "location": f"{o[0]!r},{o[1]!r}"})
    indexed = {k: v for k, v in params.items() if k != "location"}
    indexed.update({"location[0]": repr(o[0]), "location[1]": repr(o[1])})
    lab.search("identifiers", "location forms", query, params=indexed)
    # ties on the start: a provider search pages them as its unpaged answer does
    every = lab.window(start, end)
    _, whole, _ = lab.search("ordering", "equal starts stable across pages", every)
    paged = []
    for offset in range(0, len(lab.model.records) + 7, 7):
        _, items, _ = lab.search("ordering", "equal starts stable across pages", every, limit=7, offset=offset)
        paged += items
    if [i.get("pd_appointment_uuid") for i in paged] != [i.get("pd_appointment_uuid") for i in whole]:
        lab.fail("ordering", "equal starts stable across pages", "pages of 7 (offsets 0, 7, ...) give the unpaged "
                 "answer, in its order", None, f"GET {APPOINTMENTS}",
                 actual=f"pages: {[i.get('pd_appointment_uuid') for i in paged]}")
    lab.remove(list(lab.model.records.values()))


@pytest.mark.parametrize("case", ["antimeridian", "pole", "south-west"])
def test_radius_at_the_edges_of_the_globe(lab, case):
    at = lab.target.next_slot_start()
    start, end = at + 10 * MINUTE, at + 40 * MINUTE
    if case == "antimeridian":
        origin, partition, radius = (0.5, 179.95), "across the antimeridian", None
        inside, outside = [(0.5, -179.95), (0.45, -179.99)], [(0.5, -179.7)]
    elif case == "pole":
        origin, partition, radius = (89.9, 10.0), "near a pole", "20mi"
        inside, outside = [(89.9, -170.0), (89.95, 100.0)], [(89.55, 10.0)]
    else:
        origin, partition, radius = (-33.45, -70.66), "southern and western", None
        inside = [destination((-33.45, -70.66), 10 * INSIDE, b) for b in (135, 225)]
        outside = [destination((-33.45, -70.66), 10 * OUTSIDE, b) for b in (45, 315)]
    inner = [lab.slot(start, end, place) for place in inside]
    outer = [lab.slot(start, end, place) for place in outside]
    lab.search("radius", partition, near(origin, radius, start=start, end=end), must_list=inner, must_not_list=outer)
    lab.remove(inner + outer)


# -- date windows: every edge, to the microsecond, in every written form, across calendar edges --

def test_date_window_partitions(lab):
    at = lab.target.next_slot_start()
    s = at + timedelta(minutes=20, microseconds=250000)
    e = s + timedelta(minutes=30, microseconds=500000)
    slot = lab.slot(s, e, offset=-5, rule="dates", partition="written forms")  # written at -05:00
    other = lab.slot(at + 70 * MINUTE, at + 90 * MINUTE, offset=0, rule="dates", partition="written forms")
    lab.cover("dates", "written forms")
    hour = timedelta(hours=1)
    cases = [
        ("start on the edge", s, e, True), ("start just inside", s - MICRO, e, True),
        ("start just outside", s + MICRO, e + hour, False), ("start a second outside", s + SECOND, e + hour, False),
        ("end on the edge", s - hour, e, True), ("end just inside", s - hour, e + MICRO, True),
        ("end just outside", s - hour, e - MICRO, False), ("end earlier the same day", s - hour, e - hour, False),
        ("start later the same day", s + hour, e + 2 * hour, False),
    ]
    for partition, low, high, listed in cases:
        lab.search("dates", partition, lab.window(low, high),
                   **({"must_list": [slot]} if listed else {"must_not_list": [slot]}))
    # open-ended windows: only the kit's provider, checked against the filter (older slots are listed too)
    lab.search("dates", "only start", lab.window(s, None), own=False, must_list=[slot, other])
    lab.search("dates", "only start", lab.window(s + MICRO, None), own=False, must_list=[other], must_not_list=[slot])
    lab.search("dates", "only end", lab.window(None, e), own=False, must_list=[slot], must_not_list=[other])
    lab.search("dates", "only end", lab.window(None, e - MICRO), own=False, must_not_list=[slot, other])
    # the edges written with offsets: the same instants
    for hours, low, high, listed in ((0, s, e, True), (2, s, e, True), (-5, s, e, True), (-5, s + MICRO, e, False),
                                     (2, s, e - MICRO, False)):
        query = lab.window(low, high)
        params = {**query.params(), "start_date": written(low, hours), "end_date": written(high, hours)}
        lab.search("dates", "offset edges", query, params=params,
                   **({"must_list": [slot]} if listed else {"must_not_list": [slot]}))
    lab.remove([slot, other])


# Calendar edges (UTC): a fresh tenant uses these real dates at the run's second place; a shared
# one the same days of a far-future leap year (years the kit's clock never gives).
CALENDAR = [
    ("across midnight", datetime(2026, 12, 7, 23, 30), datetime(2026, 12, 8, 0, 30)),
    ("across a year", datetime(2025, 12, 31, 23, 45), datetime(2026, 1, 1, 0, 15)),
    ("leap day", datetime(2024, 2, 29, 12, 0), datetime(2024, 2, 29, 12, 30)),
    ("daylight saving days", datetime(2026, 3, 8, 7, 0), datetime(2026, 3, 8, 7, 30)),
    ("daylight saving days", datetime(2026, 11, 1, 5, 30), datetime(2026, 11, 1, 6, 30)),
    ("documentation day", datetime(2014, 12, 16, 12, 0), datetime(2014, 12, 16, 12, 30)),
]


def _far_year(seed: int, year: int) -> int:
    """The far-future year standing for `year` in a shared tenant: leap when `year` is."""
    base = 2904 + 4 * (seed % 240)  # 2904..3860, leap years past the kit's clock (2300-2899)
    return base + (year - 2024) if year != 2024 else base


def test_calendar_edge_partitions(lab):
    place = lab.target.other_place()
    for partition, start, end in CALENDAR:
        if not lab.fresh:
            if partition == "documentation day":
                continue
            year = _far_year(lab.run.seed, start.year)
            start, end = start.replace(year=year), end.replace(year=year + end.year - start.year)
        record = lab.slot(start, end, place, rule="dates", partition=partition)
        day = datetime(start.year, start.month, start.day)
        by_place = dict(provider=None, location=tuple(place), radius=1.0, radius_text="1mi")
        # the slot's own window finds it; its first day alone does not, unless it ends that day
        lab.search("dates", partition, Query(start=start, end=end, **by_place), own=False, must_list=[record])
        first_day = Query(start=day, end=day + timedelta(days=1) - MICRO, **by_place)
        inside_day = end <= day + timedelta(days=1)
        lab.search("dates", partition, first_day, own=False,
                   **({"must_list": [record]} if inside_day else {"must_not_list": [record]}))
        # an hour off (a server reading offset-less dates as local time) loses it
        lab.search("dates", partition, Query(start=start + timedelta(hours=1), end=end + timedelta(hours=1),
                                             **by_place), own=False, must_not_list=[record])
        lab.search("dates", partition, Query(start=start, end=end, provider=lab.provider), own=False,
                   must_list=[record])
        lab.remove([record])


# -- paging at scale ------------------------------------------------------------------------------

def test_paging_partitions(lab, patients):
    at = lab.target.next_slot_start()
    bodies = [lab.body(at + i * MINUTE, at + (i + 1) * MINUTE) for i in range(101)]
    records = lab.quick_slots(bodies)
    full = lab.window(at, at + 101 * MINUTE)
    answer, items, meta = lab.expect_page("paging", "a page and one", full, limit=None)
    if lab.api.wire.paged:
        following = meta.get("next")
        if not following:
            lab.fail("paging", "a page and one", "meta.next links the second page (101 matches, 100 a page)",
                     answer, f"GET {APPOINTMENTS}", actual=f"meta.next {following!r}")
        lab.expect_page("paging", "a page and one", full, limit=None, offset=100)
    lab.expect_page("paging", "exactly a page", lab.window(at, at + 100 * MINUTE), limit=None)
    lab.expect_page("paging", "one", lab.window(at, at + MINUTE), limit=None)
    lab.expect_page("paging", "empty", lab.window(at + 101 * MINUTE, at + 102 * MINUTE), limit=None)
    for limit in (99, 100, 101):
        lab.expect_page("paging", "limit 99, 100, 101", full, limit=limit)
        lab.expect_page("paging", "limit 99, 100, 101", full, limit=limit, offset=limit - 1)
    lab.expect_page("paging", "limit 1000", full, limit=1000)
    for offset in (0, 1, 2):
        lab.expect_page("paging", "limit 1", full, limit=1, offset=offset)
    lab.expect_page("paging", "offset at the last", full, limit=10, offset=100)
    lab.expect_page("paging", "offset at count", full, limit=10, offset=101)
    lab.expect_page("paging", "offset far beyond", full, limit=10, offset=1000000000)
    places = near(lab.origin, "1mi", start=at, end=at + 101 * MINUTE)
    lab.expect_page("paging", "location search at scale", places, limit=None)
    lab.expect_page("paging", "location search at scale", places, limit=None, offset=100)
    lab.expect_page("paging", "location search at scale", places, limit=1000)
    # a patient's bookings, a page at a time
    for record in records[10:13]:
        lab.book(record, patients[0])
    mine = Query(patient=patients[0].lower(), start=at, end=at + 101 * MINUTE)
    for offset in range(4):
        lab.expect_page("paging", "patient search paged", mine, limit=1, offset=offset)
    lab.expect_page("paging", "exactly a page", lab.window(at, at + 100 * MINUTE), limit=97)
    lab.remove(records)


# -- overlaps: every relative position, across types, places and providers ----------------------

def test_overlap_partitions(lab):
    at = lab.target.next_slot_start()
    s, e = at + 30 * MINUTE, at + 90 * MINUTE
    base = lab.slot(s, e)
    refused = [
        ("equal", s, e), ("contained", s + 10 * MINUTE, e - 10 * MINUTE),
        ("containing", s - 10 * MINUTE, e + 10 * MINUTE),
        ("a minute over the start", s - 20 * MINUTE, s + MINUTE), ("a second over the start", s - 20 * MINUTE, s + SECOND),
        ("a microsecond over the start", s - 20 * MINUTE, s + MICRO),
        ("a minute over the end", e - MINUTE, e + 20 * MINUTE), ("a second over the end", e - SECOND, e + 20 * MINUTE),
        ("a microsecond over the end", e - MICRO, e + 20 * MINUTE),
    ]
    if len(lab.types) > 1:
        refused.append(("another type", s, e, lab.types[1]))
    for partition, low, high, *kind in refused:
        lab.refused("overlap", partition, 409, "POST", SLOTS, json=lab.body(low, high, kind=kind[0] if kind else None))
    lab.search("overlap", "nothing stored", lab.window(s - 30 * MINUTE, e + 30 * MINUTE), must_list=[base])
    lab.slot(s - 20 * MINUTE, s, rule="overlap", partition="touching before")
    lab.slot(e, e + 20 * MINUTE, rule="overlap", partition="touching after")
    lab.slot(s, e, lab.target.other_place(), rule="overlap", partition="another place")
    other = lab.target.other_provider()
    if other:
        lab.slot(s, e, provider=other, rule="overlap", partition="another provider")
    for name in ("touching before", "touching after", "another place", "another provider"):
        if name != "another provider" or other:
            lab.cover("overlap", name)
    lab.search("overlap", "nothing stored", lab.window(s - 30 * MINUTE, e + 30 * MINUTE))
    # one microsecond apart; the first of three slots made out of order; booked and deleted slots
    at = lab.target.next_slot_start()
    first = lab.slot(at + 60 * MINUTE, at + 70 * MINUTE)
    earlier = lab.slot(at + 10 * MINUTE, at + 20 * MINUTE)
    last = lab.slot(at + 80 * MINUTE, at + 90 * MINUTE)
    lab.refused("overlap", "not the latest slot", 409, "POST", SLOTS, json=lab.body(at + 65 * MINUTE, at + 75 * MINUTE))
    lab.slot(at + 70 * MINUTE + MICRO, at + 80 * MINUTE, rule="overlap", partition="a microsecond apart")
    lab.cover("overlap", "a microsecond apart")
    lab.book(last, lab.options.patients[0])
    lab.refused("overlap", "a booked slot", 409, "POST", SLOTS, json=lab.body(at + 85 * MINUTE, at + 95 * MINUTE))
    lab.remove([earlier])
    lab.slot(at + 10 * MINUTE, at + 20 * MINUTE, rule="overlap", partition="a deleted slot")
    lab.cover("overlap", "a deleted slot")
    lab.search("overlap", "nothing stored", lab.window(at, at + 100 * MINUTE), must_list=[first])
    lab.remove(list(lab.model.records.values()))


# -- refusals: the contract's status, exactly ---------------------------------------------------

def test_refusal_partitions(lab):
    at = lab.target.next_slot_start()
    s = at + 10 * MINUTE
    r = "refusals"
    lab.refused(r, "slot end equals start", 422, "POST", SLOTS, DATES, json=lab.body(s, s))
    lab.refused(r, "slot end a microsecond before start", 422, "POST", SLOTS, DATES, json=lab.body(s, s - MICRO))
    lab.slot(s, s + MICRO, rule=r, partition="slot end a microsecond after start")
    lab.cover(r, "slot end a microsecond after start")
    for index, place in enumerate(((90.0, 0.0), (-90.0, 0.0), (0.0, 180.0), (0.0, -180.0))):
        lab.slot(s + (index + 1) * MINUTE, s + (index + 2) * MINUTE, place, rule=r, partition="latitude on the edge")
    lab.cover(r, "latitude on the edge")
    for place in ((90.000001, 0.0), (-90.000001, 0.0)):
        lab.refused(r, "latitude just outside", 422, "POST", SLOTS, ("location",), json=lab.body(s, s + MINUTE, place))
    for place in ((0.0, 180.000001), (0.0, -180.000001)):
        lab.refused(r, "longitude just outside", 422, "POST", SLOTS, ("location",), json=lab.body(s, s + MINUTE, place))
    lab.refused(r, "unknown type", 422, "POST", SLOTS, ("appointment_type",), json=lab.body(s, s + MINUTE, kind="NO-SUCH-TYPE"))
    lab.refused(r, "unknown provider", 404, "POST", SLOTS,
                json=lab.body(s, s + MINUTE, provider=lab.target.unknown_uuid()))
    window = {"start_date": s.isoformat(), "end_date": (s + MINUTE).isoformat()}
    o = [repr(v) for v in lab.origin]
    lab.refused(r, "search without selector", 422, "GET", APPOINTMENTS, SELECTORS, query={**window, "appointment_type": "AT1"})
    lab.refused(r, "search radius without location", 422, "GET", APPOINTMENTS, ("location", "radius"),
                query={"pd_provider_uuid": lab.provider, "radius": "10mi"})
    lab.refused(r, "search end before start", 422, "GET", APPOINTMENTS, DATES,
                query={"pd_provider_uuid": lab.provider, "start_date": s.isoformat(), "end_date": (s - MICRO).isoformat()})
    lab.refused(r, "search end equals start", 422, "GET", APPOINTMENTS, DATES,
                query={"pd_provider_uuid": lab.provider, "start_date": s.isoformat(), "end_date": s.isoformat()})
    lab.refused(r, "search latitude outside", 422, "GET", APPOINTMENTS, ("location",), query={"location": ["91", o[1]]})
    lab.refused(r, "search radius unreadable", 422, "GET", APPOINTMENTS, ("radius",), query={"location": o, "radius": "ten"})
    for limit in (0, 1001):
        lab.refused(r, "limit 0 and 1001", 422, "GET", APPOINTMENTS, ("limit",), query={"pd_provider_uuid": lab.provider,
                                                                            "limit": limit})
    lab.refused(r, "offset -1", 422, "GET", APPOINTMENTS, ("offset",), query={"pd_provider_uuid": lab.provider, "offset": -1})
    slot = next(iter(lab.model.records.values()))
    patient = lab.options.patients
    lab.refused(r, "booking with disagreeing ids", 422, "PUT", APPOINTMENT, ("patient",), params={"pd_appointment_uuid": slot.uuid},
                json={"patient": {"_uuid": patient[0], "uuid": patient[1]}})
    lab.refused(r, "update without patient or description", 422, "PUT", APPOINTMENT,
                ("patient", "description", "body"),
                params={"pd_appointment_uuid": slot.uuid}, json={})
    lab.search(r, "update without patient or description", lab.window(at, at + 30 * MINUTE))  # nothing changed
    lab.remove(list(lab.model.records.values()))


# -- providers, places, types; booking, cancel and delete; identifiers ----------------------------

def test_provider_place_and_type_partitions(lab, patients):
    at = lab.target.next_slot_start()
    o, p = lab.origin, lab.target.other_place()
    kinds = lab.types if len(lab.types) > 1 else lab.types * 2
    window = dict(start=at, end=at + 100 * MINUTE)
    mine = lab.slot(at, at + 20 * MINUTE, o, kind=kinds[0])
    mine_there = lab.slot(at, at + 20 * MINUTE, p, kind=kinds[1], rule="providers places types",
                          partition="second place")
    other = lab.target.other_provider()
    theirs = []
    if other:
        theirs = [lab.slot(at + 30 * MINUTE, at + 50 * MINUTE, o, provider=other, kind=kinds[0],
                           rule="providers places types", partition="second provider"),
                  lab.slot(at + 60 * MINUTE, at + 80 * MINUTE, p, provider=other, kind=kinds[1],
                           rule="providers places types", partition="second provider")]
        lab.cover("providers places types", "second provider")
        lab.search("providers places types", "provider filter", lab.window(**window, provider=other.lower()),
                   must_list=theirs, must_not_list=[mine, mine_there])
        lab.search("providers places types", "location and provider",
                   near(o, "1mi", provider=other.lower(), **window), must_list=theirs[:1], must_not_list=[mine])
    lab.search("providers places types", "provider filter", lab.window(**window), must_list=[mine, mine_there],
               must_not_list=theirs)
    lab.search("providers places types", "location without provider", near(o, "1mi", **window),
               must_list=[mine] + theirs[:1], must_not_list=[mine_there] + theirs[1:])
    lab.search("providers places types", "second place", near(p, "1mi", **window),
               must_list=[mine_there] + theirs[1:], must_not_list=[mine])
    lab.search("providers places types", "second place", near(o, "5mi", **window))
    for kind in dict.fromkeys(kinds):
        lab.search("providers places types", "type filter", lab.window(**window, appointment_type=kind))
        lab.search("providers places types", "type filter", near(o, "5mi", appointment_type=kind, **window))
    # bookings across providers and places; the identifiers in upper case
    booked = theirs[1] if theirs else mine_there
    lab.book(booked, patients[0])
    lab.search("providers places types", "booked elsewhere", Query(patient=patients[0].lower(), **window),
               must_list=[booked])
    for kind in dict.fromkeys(kinds):
        lab.search("providers places types", "type filter", Query(patient=patients[0].lower(),
                                                                  appointment_type=kind, **window))
    if theirs:  # a booking with each provider: the provider narrows the patient's search
        lab.book(mine, patients[0])
        for provider, listed, unlisted in ((lab.provider, mine, booked), (other.lower(), booked, mine)):
            lab.search("providers places types", "patient and provider",
                       Query(patient=patients[0].lower(), provider=provider, **window), must_list=[listed],
                       must_not_list=[unlisted])
    for code in dict.fromkeys(kind.lower() for kind in kinds if kind.lower() != kind):
        for query in (lab.window(**window, appointment_type=code), near(o, "5mi", appointment_type=code, **window),
                      Query(patient=patients[0].lower(), appointment_type=code, **window)):
            lab.search("providers places types", "type in another case", query,
                       must_not_list=[r for r in lab.model.records.values() if r.appointment_type != code])
    query = Query(patient=patients[0].lower(), **window)
    lab.search("identifiers", "upper-case patient search", query,
               params={**query.params(), "patient_uuid": patients[0].upper()}, must_list=[booked])
    query = lab.window(**window)
    lab.search("identifiers", "upper-case provider search", query,
               params={**query.params(), "pd_provider_uuid": lab.provider.upper()},
               must_list=[r for r in (mine, mine_there) if not r.booked])
    lab.cover("identifiers", "upper-case uuid read")
    answer = lab.steps.get(mine.uuid.upper())
    expect_status(lab.api, answer, 200, "a slot reads back by its uuid in upper case", "GET", APPOINTMENT)
    items = answer_json(answer, lab.api, "GET", APPOINTMENT)
    if not (isinstance(items, list) and len(items) == 1 and not mine.differences(items[0])):
        lab.fail("identifiers", "upper-case uuid read", f"the slot {mine.view()}", answer, f"GET {APPOINTMENT}")
    lab.remove(list(lab.model.records.values()))


def test_booking_and_cancel_partitions(lab, patients):
    at = lab.target.next_slot_start()
    o = lab.origin
    window = dict(start=at, end=at + 100 * MINUTE)
    rule = "booking and cancel"
    slot = lab.slot(at + 10 * MINUTE, at + 40 * MINUTE, destination(o, 4, 135))
    neighbour = lab.slot(at + 50 * MINUTE, at + 80 * MINUTE, o)
    lab.search(rule, "patient with no booking", Query(patient=patients[1].lower(), **window))
    lab.book(slot, patients[0])
    lab.search(rule, "booked hidden from location", near(o, **window), must_not_list=[slot], must_list=[neighbour])
    lab.search(rule, "booked hidden from location", lab.window(**window), must_not_list=[slot])
    lab.book(neighbour, patients[0])
    kinds = dict.fromkeys([slot.appointment_type, neighbour.appointment_type] + lab.types)
    for kind in kinds:
        lab.search(rule, "patient filtered by type and dates", Query(patient=patients[0].lower(), appointment_type=kind,
                                                                      **window))
    lab.search(rule, "patient filtered by type and dates",
               Query(patient=patients[0].lower(), start=slot.start, end=slot.end), own=False, must_list=[slot],
               must_not_list=[neighbour])
    lab.search(rule, "patient filtered by type and dates",
               Query(patient=patients[0].lower(), start=slot.start, end=slot.end - MICRO), own=False,
               must_not_list=[slot, neighbour])
    lab.cancel(slot)
    lab.search(rule, "cancel reopens for location", near(o, **window), must_list=[slot])
    lab.search(rule, "cancel reopens for provider", lab.window(**window), must_list=[slot])
    lab.search(rule, "cancel leaves patient search", Query(patient=patients[0].lower(), **window),
               must_list=[neighbour], must_not_list=[slot])
    lab.remove([slot])
    lab.search(rule, "deleted gone from location", near(o, "20mi", **window))
    lab.remove([neighbour])


# -- the token endpoint: each refusal with RFC 6749's status and error code ------------------------

def test_token_partitions(lab):
    target, tenant = lab.target, lab.target.main
    credentials = (tenant.client_id, tenant.client_secret)
    form = {"grant_type": "client_credentials"}
    cases = [
        ("not a form", dict(json=form, auth=credentials), 400, "invalid_request"),
        ("no grant type", dict(data={"scope": "user_schedule"}, auth=credentials), 400, "invalid_request"),
        ("another grant type", dict(data={"grant_type": "password"}, auth=credentials), 400, "unsupported_grant_type"),
        ("unknown scope", dict(data={**form, "scope": "no_such_scope"}, auth=credentials), 400, "invalid_scope"),
        ("wrong secret", dict(data=form, auth=(tenant.client_id, tenant.client_secret + "-wrong")), 401,
         "invalid_client"),
        ("one scope", dict(data={**form, "scope": "user_schedule"}, auth=credentials), 200, "user_schedule"),
        ("both scopes", dict(data={**form, "scope": "user_schedule business_schedule"}, auth=credentials), 200,
         "business_schedule user_schedule"),
        ("credentials in the form", dict(data={**form, "scope": "user_schedule", "client_id": credentials[0],
                                               "client_secret": credentials[1]}), 200, "user_schedule"),
    ]
    for partition, request, status, code in cases:
        lab.cover("tokens", partition)
        answer = target._send("POST", target.token_url, **request)
        try:
            body = answer.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        if answer.status_code != status:
            lab.fail("tokens", partition, f"{status} ({code})", answer, "POST /oauth2/token")
        shown = body.get("error") if status != 200 else " ".join(sorted(str(body.get("scope", "")).split()))
        if shown != code:
            lab.fail("tokens", partition, f"{status} with {'error' if status != 200 else 'scope'} {code!r}", answer,
                     "POST /oauth2/token", actual=f"{'error' if status != 200 else 'scope'} {shown!r}")


# -- conditional reads of the catalogue ------------------------------------------------------------

@pytest.mark.parametrize("path", ["/schedule/appointmenttypes/", "/schedule/schedulers/"])
def test_conditional_read_partitions(lab, path):
    first = lab.api.call("GET", path, conform=False)
    tag = first.headers.get("ETag")
    if first.status_code != 200 or not tag:
        pytest.skip(f"GET {path} answers no ETag: no conditional reads to check")
    page = lab.api.payload(first, "GET", path)
    lab.cover("conditional reads", "the current tag")
    answer = lab.api.call("GET", path, headers={"If-None-Match": tag}, conform=False)
    if answer.status_code != 304:
        lab.fail("conditional reads", "the current tag", f"304 (If-None-Match {tag}, the page's own tag)", answer,
                 f"GET {path}")
    lab.cover("conditional reads", "any tag")
    answer = lab.api.call("GET", path, headers={"If-None-Match": "*"}, conform=False)
    if answer.status_code != 304:
        lab.fail("conditional reads", "any tag", "304 (If-None-Match *)", answer, f"GET {path}")
    opaque = tag.removeprefix("W/").strip('"')
    for other in (f'"{opaque[:-1]}0"' if not opaque.endswith("0") else f'"{opaque[:-1]}1"', '"0000"', '"zzzz"',
                  'W/"zzzz"'):
        lab.cover("conditional reads", "another tag")
        answer = lab.api.call("GET", path, headers={"If-None-Match": other}, conform=False)
        if answer.status_code != 200 or lab.api.payload(answer, "GET", path) != page:
            lab.fail("conditional reads", "another tag", f"200 and the page (If-None-Match {other} is not its tag "
                     f"{tag})", answer, f"GET {path}")
    # A tag names one page: the first page's tag sent for the second page, or for a longer first page, is not
    # theirs (a server whose tag leaves out the offset or the limit answers 304 and the client keeps a wrong page).
    first_of_one = lab.api.call("GET", path, query={"limit": 1}, conform=False)
    one_tag = first_of_one.headers.get("ETag")
    if first_of_one.status_code == 200 and one_tag and len(page) > 1:
        for query in ({"limit": 1, "offset": 1}, {"limit": 2}):
            lab.cover("conditional reads", "another page's tag")
            plain = lab.api.call("GET", path, query=query, conform=False)
            answer = lab.api.call("GET", path, query=query, headers={"If-None-Match": one_tag}, conform=False)
            if answer.status_code != 200 or lab.api.payload(answer, "GET", path) != lab.api.payload(plain, "GET", path):
                lab.fail("conditional reads", "another page's tag",
                         f"200 and the page (If-None-Match {one_tag} is the tag of ?limit=1, not of this page)",
                         answer, f"GET {path}?{'&'.join(f'{k}={v}' for k, v in query.items())}")
