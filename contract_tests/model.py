"""The reference model: the records a run creates, as the contract says they must be.

A `Record` is what the contract says a slot is after the writes the run made to it: its type,
provider, location and dates as opened, booked or not, by which patient (with the fields the
booking sent), its description. Fields only the server can choose (`appointment_id`,
`provider_scheduler_uuid`) are learned from the first answer and must not change afterwards.

`Query` is a search as sent; `Query.problems_with(item)` says which filters a result breaks (any
result, the run's or not), `Record.matches(query)` whether one of the run's records must be listed.
`Model.check_search(query, items)` checks an answer both ways: every result satisfies every filter,
and every record of the model that satisfies them is there, with the content the model holds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime

from .oracle import parse_datetime, written

EARTH_RADIUS_MILES = 3958.8
MILES_PER_KM = 0.621371
DEFAULT_RADIUS_MILES = 10.0
BEARINGS = (0, 45, 90, 135, 180, 225, 270, 315)  # degrees: N, NE, E, SE, S, SW, W, NW
_RADIUS = re.compile(r"^\s*(?P<amount>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>mi|km)?\s*$")


def miles_between(a, b) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a[0], a[1], b[0], b[1]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(min(1.0, math.sqrt(h)))


def destination(origin, miles: float, bearing: float) -> tuple[float, float]:
    """The place `miles` from `origin` along the great circle of `bearing` degrees (0 north, 90 east)."""
    lat1, lon1, b = math.radians(origin[0]), math.radians(origin[1]), math.radians(bearing)
    d = miles / EARTH_RADIUS_MILES
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lon2 = lon1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2))
    lon = (math.degrees(lon2) + 180) % 360 - 180
    return round(math.degrees(lat2), 6), round(lon, 6)


def parse_radius(value) -> float | None:
    """`25mi`, `40km` or a bare number (miles); None when absent (the default) or unreadable."""
    if value is None:
        return DEFAULT_RADIUS_MILES
    match = _RADIUS.match(str(value))
    if not match:
        return None
    amount = float(match["amount"])
    return amount * MILES_PER_KM if match["unit"] == "km" else amount


def parse_location(value) -> tuple[float, float] | None:
    """A query's location as sent: [lat, lon] (repeated keys), "lat,lon", or one "lat,lon" in a list."""
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    try:
        lat, lon = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return None
    return lat, lon


def patient_id(item: dict) -> str | None:
    patient = item.get("patient") if isinstance(item, dict) else None
    if isinstance(patient, dict):
        value = patient.get("_uuid") or patient.get("uuid")
        return str(value).lower() if value else None
    return None


def _first(value):
    return value[0] if isinstance(value, (list, tuple)) and len(value) == 1 else value


@dataclass
class Query:
    """A search of GET /schedule/appointments/ as the kit sent it."""

    patient: str | None = None
    provider: str | None = None
    location: tuple[float, float] | None = None
    radius: float = DEFAULT_RADIUS_MILES
    appointment_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    radius_text: str | None = None  # the radius as sent (None: the default)
    date_offset: int | None = None  # how start_date/end_date are written (oracle.written): naive, Z (0), +02:00 (2)

    @classmethod
    def from_params(cls, params: dict | None) -> "Query | None":
        """The query as sent; None when the kit cannot read a filter (then it checks nothing)."""
        params = dict(params or {})
        if any(value in ("", [], [""]) for value in params.values()):
            return None  # an empty filter: absent or matching nothing? the contract does not say
        query = cls()
        if params.get("patient_uuid") not in (None, ""):
            query.patient = str(_first(params["patient_uuid"])).lower()
        if params.get("pd_provider_uuid") not in (None, ""):
            query.provider = str(_first(params["pd_provider_uuid"])).lower()
        if params.get("location") not in (None, "", []):
            query.location = parse_location(params["location"])
            if query.location is None:
                return None
            radius = parse_radius(_first(params.get("radius")))
            if radius is None:
                return None
            query.radius = radius
            query.radius_text = _first(params.get("radius"))
        if params.get("appointment_type") not in (None,):
            query.appointment_type = str(_first(params["appointment_type"]))
        for key in ("start_date", "end_date"):
            if params.get(key) is not None:
                moment = parse_datetime(_first(params[key]))
                if moment is None:
                    return None
                setattr(query, "start" if key == "start_date" else "end", moment)
        if not (query.patient or query.provider or query.location):
            return None
        return query

    def params(self) -> dict:
        """The query string the kit sends for this query."""
        out: dict = {}
        if self.patient:
            out["patient_uuid"] = self.patient
        if self.provider:
            out["pd_provider_uuid"] = self.provider
        if self.location:
            out["location"] = [repr(self.location[0]), repr(self.location[1])]
            if self.radius_text is not None:
                out["radius"] = self.radius_text
        if self.appointment_type:
            out["appointment_type"] = self.appointment_type
        if self.start:
            out["start_date"] = written(self.start, self.date_offset)
        if self.end:
            out["end_date"] = written(self.end, self.date_offset)
        return out

    def problems_with(self, item) -> list[str]:
        """The filters this result breaks, from what any result shows (the run's records or not)."""
        if not isinstance(item, dict):
            return [f"a result is not an object: {item!r}"[:200]]
        problems = []
        booked = item.get("booked")
        if self.patient:
            if booked is not True or patient_id(item) != self.patient:
                problems.append(f"patient_uuid={self.patient} asks for that patient's booked appointments, "
                                f"got booked {booked!r} by {patient_id(item)}")
        elif booked is not False:
            problems.append(f"a search without patient_uuid lists open slots only, got booked {booked!r}")
        if self.appointment_type is not None and item.get("appointment_type") != self.appointment_type:
            problems.append(f"appointment_type={self.appointment_type}, got {item.get('appointment_type')!r}")
        start, end = parse_datetime(item.get("start_date")), parse_datetime(item.get("end_date"))
        if self.start is not None and (start is None or start < self.start):
            problems.append(f"start_date={self.start.isoformat()}: a result starts at or after it, "
                            f"got start_date {item.get('start_date')!r}")
        if self.end is not None and (end is None or end > self.end):
            problems.append(f"end_date={self.end.isoformat()}: a result ends at or before it, "
                            f"got end_date {item.get('end_date')!r}")
        return problems

    def describe(self) -> str:
        return "&".join(f"{k}={','.join(v) if isinstance(v, list) else v}" for k, v in self.params().items())


@dataclass
class Record:
    """One slot the run opened, as the contract says it is now."""

    uuid: str
    provider: str
    location: tuple[float, float]
    appointment_type: str
    start: datetime
    end: datetime
    booked: bool = False
    patient: dict | None = None  # the patient as the booking sent it (`_uuid` and the given fields)
    description: str | None = None
    appointment_id: str | None = None  # learned from the first answer
    provider_scheduler_uuid: str | None = None  # learned from the first answer
    # The start the kit's clock gave the slot this record was opened at or next to: the run's
    # other slots lie at least 10 minutes before it and 2 hours after it.
    allotted: datetime | None = None

    def matches(self, query: Query, margin: float = 0.0) -> bool:
        """Whether the record satisfies the query. `margin` widens (> 0) or narrows (< 0) the radius
        by that fraction: geometry is not decided by another implementation's rounding."""
        if query.patient:
            if not self.booked or (self.patient or {}).get("_uuid", "").lower() != query.patient:
                return False
        elif self.booked:
            return False
        if query.provider and query.provider != self.provider.lower():
            return False
        if query.location and miles_between(query.location, self.location) > query.radius * (1 + margin) + margin:
            return False
        if query.appointment_type is not None and query.appointment_type != self.appointment_type:
            return False
        if query.start is not None and self.start < query.start:
            return False
        return not (query.end is not None and self.end > query.end)

    def learn(self, item: dict) -> None:
        """The fields the server chooses, from the first answer that shows the record."""
        if self.appointment_id is None and isinstance(item.get("appointment_id"), str):
            self.appointment_id = item["appointment_id"]
        if self.provider_scheduler_uuid is None and isinstance(item.get("provider_scheduler_uuid"), str):
            self.provider_scheduler_uuid = item["provider_scheduler_uuid"]

    def differences(self, item) -> list[str]:
        """Where an answer's copy of this record differs from the model (every field the answer shows)."""
        if not isinstance(item, dict):
            return [f"not an object: {item!r}"[:200]]
        out = []
        if str(item.get("pd_appointment_uuid", "")).lower() != self.uuid:
            out.append(f"pd_appointment_uuid {item.get('pd_appointment_uuid')!r}, not {self.uuid}")
        if item.get("appointment_type") != self.appointment_type:
            out.append(f"appointment_type {item.get('appointment_type')!r}, not {self.appointment_type!r}")
        for key, want in (("start_date", self.start), ("end_date", self.end)):
            if parse_datetime(item.get(key)) != want:
                out.append(f"{key} {item.get(key)!r}, not {want.isoformat()}")
        for key in ("appointment_id", "provider_scheduler_uuid"):
            known = getattr(self, key)
            if known is not None and item.get(key) != known:
                out.append(f"{key} {item.get(key)!r}, not {known!r} as first answered")
        if item.get("booked") is not self.booked:
            out.append(f"booked {item.get('booked')!r}, not {self.booked}")
        patient = item.get("patient")
        if self.booked:
            if patient_id(item) != self.patient["_uuid"].lower():
                out.append(f"patient._uuid {patient_id(item)!r}, not {self.patient['_uuid']}")
            for key, value in self.patient.items():
                if key != "_uuid" and (not isinstance(patient, dict) or patient.get(key) != value):
                    shown = patient.get(key) if isinstance(patient, dict) else None
                    out.append(f"patient.{key} {_short(shown)}, not {_short(value)} as booked")
        elif patient not in (None, {}):
            out.append(f"patient {_short(patient)} on an open slot (no patient expected)")
        description = item.get("description")
        if self.description is None:
            if description is not None:
                out.append(f"description {_short(description)}, none was set")
        elif description != self.description:
            out.append(f"description {_short(description)}, not {_short(self.description)}")
        return out

    def view(self) -> dict:
        """The record as the model holds it, for a report."""
        view = {"pd_appointment_uuid": self.uuid, "appointment_type": self.appointment_type,
                "booked": self.booked, "start_date": self.start.isoformat(), "end_date": self.end.isoformat()}
        if self.patient:
            view["patient"] = self.patient
        if self.description is not None:
            view["description"] = self.description
        return view


@dataclass
class Model:
    """The run's records by uuid, and the uuids it deleted."""

    records: dict[str, Record] = field(default_factory=dict)  # in the order the run opened them
    deleted: dict[str, None] = field(default_factory=dict)  # in the order the run deleted them

    def add(self, record: Record) -> Record:
        self.records[record.uuid.lower()] = record
        return record

    def get(self, uuid: str) -> Record | None:
        return self.records.get(str(uuid).lower())

    def remove(self, uuid: str) -> None:
        self.records.pop(str(uuid).lower(), None)
        self.deleted[str(uuid).lower()] = None

    def clash(self, location, start: datetime, end: datetime) -> "Record | None":
        """The run's record a new slot of the kit's provider at `location` would overlap (same place:
        equal to 6 decimals; touching ends do not overlap)."""
        place = (round(location[0], 6), round(location[1], 6))
        for record in self.records.values():
            if (round(record.location[0], 6), round(record.location[1], 6)) == place \
                    and record.start < end and start < record.end:
                return record
        return None

    def expected(self, query: Query) -> list[Record]:
        return sorted((r for r in self.records.values() if r.matches(query, margin=-0.01)), key=lambda r: r.start)

    def check_search(self, query: Query, items, *, complete: bool = True) -> list[str]:
        """Both ways: each result satisfies the query (and, if it is the run's, is as the model
        holds it); each of the model's records that satisfies the query is listed. `complete`:
        the answer holds every match (not one page of several)."""
        if not isinstance(items, list):
            return [f"the answer is not a list: {_short(items)}"]
        problems, listed = [], set()
        previous = None
        previous_own = None  # (start, miles) of the run's record above, for ties in a location search
        for index, item in enumerate(items):
            uuid = str(item.get("pd_appointment_uuid", "")).lower() if isinstance(item, dict) else ""
            for problem in query.problems_with(item):
                problems.append(f"result {index} ({uuid or '?'}) breaks the filter: {problem}")
            if uuid in listed:
                problems.append(f"result {index} ({uuid}) is listed twice")
            listed.add(uuid)
            if uuid in self.deleted:
                problems.append(f"result {index} ({uuid}) was deleted by the run and is still listed")
            record = self.records.get(uuid)
            if record is not None:
                if not record.matches(query, margin=0.01):
                    why = self._why_not(record, query)
                    problems.append(f"result {index} ({uuid}) does not satisfy the query: {why}")
                problems += [f"result {index} ({uuid}): {d}" for d in record.differences(item)]
            start = parse_datetime(item.get("start_date")) if isinstance(item, dict) else None
            if previous is not None and start is not None and start < previous:
                problems.append(f"result {index} ({uuid}) starts before the one above it: results are "
                                "ordered by start date")
            previous = start or previous
            if record is not None and query.location is not None:
                miles = miles_between(query.location, record.location)
                if previous_own is not None and previous_own[0] == record.start and miles < previous_own[1] * 0.99 - 0.01:
                    problems.append(f"result {index} ({uuid}) starts with the one above it and lies nearer "
                                    f"({miles:.2f} miles, not {previous_own[1]:.2f}): results are ordered by start "
                                    "date, then distance")
                previous_own = (record.start, miles)
            elif start is not None and (previous_own is None or start != previous_own[0]):
                previous_own = None
        if complete:
            for record in self.expected(query):
                if record.uuid not in listed:
                    problems.append(f"{record.uuid} satisfies the query and is missing "
                                    f"(the run's record: {_short(record.view())})")
        return problems

    @staticmethod
    def _why_not(record: Record, query: Query) -> str:
        if query.provider and query.provider != record.provider.lower():
            return f"it belongs to provider {record.provider}, not {query.provider}"
        if query.location and miles_between(query.location, record.location) > query.radius:
            return (f"it is {miles_between(query.location, record.location):.1f} miles from {list(query.location)}, "
                    f"outside the radius of {query.radius:g} miles")
        return "see the filters above"


def _short(value, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
