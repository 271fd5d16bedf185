"""The scheduling rules, readable top to bottom. No HTTP here, no storage details.

Each public method works on one tenant's data set inside one store
transaction (`stores.base`, opened through the tenant registry, `tenants.py`),
from the first check to the last change, and raises a `SandboxError` before
changing anything when a rule refuses the request. Which backend holds the data
is not this module's business; the stores' neutral refusals become HTTP here.

Records (see `fixtures.generate` for their fields):
  slot          an open slot (`booked` false) or a booked appointment; a booked one may be
                `completed` (`status_of`: open, booked or completed, as the final documentation has it)
  provider      with `provider_scheduler_uuid` and its office `locations`
  patient       a PokitDok user; inside a slot the patient's id field is `_uuid`
  registration  a patient registered with a provider
"""

from __future__ import annotations

import random
import string
import uuid
from datetime import datetime

from . import geo
from .errors import Conflict, NotFound, SandboxError, ScopeRefused, Unprocessable
from .slot_search import SlotSearch
from .stores import KINDS, OverlapRefused, TenantData
from .tenants import Tenants
from .timefmt import format_datetime, parse_datetime


def status_of(slot: dict) -> str:
    """`open`, `booked` or `completed` (a booked appointment marked completed)."""
    if slot.get("completed"):
        return "completed"
    return "booked" if slot["booked"] else "open"


class Scheduling:
    def __init__(self, tenants: Tenants, limits=None):
        """`limits`: the server's `settings.Limits` (None: unlimited)."""
        self.tenants = tenants
        self.limits = limits

    def _transaction(self, tenant_id: str, readonly: bool = False):
        """A tenant's data set in one transaction (`readonly`: for one query that changes nothing)."""
        return self.tenants.transaction(tenant_id, readonly=readonly)

    # -- catalogue -----------------------------------------------------------
    def list_schedulers(self, tenant_id: str) -> list[dict]:
        with self._transaction(tenant_id, readonly=True) as tenant:
            return tenant.all("schedulers")

    def get_scheduler(self, tenant_id: str, scheduler_uuid: str) -> dict:
        with self._transaction(tenant_id, readonly=True) as tenant:
            return self._require(tenant, "schedulers", scheduler_uuid, "scheduler_uuid")

    def list_appointment_types(self, tenant_id: str) -> list[dict]:
        with self._transaction(tenant_id, readonly=True) as tenant:
            return tenant.all("appointment_types")

    def get_appointment_type(self, tenant_id: str, appointment_type_uuid: str) -> dict:
        with self._transaction(tenant_id, readonly=True) as tenant:
            return self._require(tenant, "appointment_types", appointment_type_uuid, "appointment_type_uuid")

    # -- patients ------------------------------------------------------------
    def register_patient(self, tenant_id: str, pd_patient_uuid: str, pd_provider_uuid: str,
                         location: list | None = None) -> dict:
        """Register a PokitDok user with a provider. Idempotent; both must exist."""
        place = list(geo.check_location(location)) if location is not None else None
        with self._transaction(tenant_id) as tenant:
            patient = self._require(tenant, "patients", pd_patient_uuid, "pd_patient_uuid")
            self._require(tenant, "providers", pd_provider_uuid, "pd_provider_uuid")
            registration_id = f"{patient['uuid']}:{pd_provider_uuid.lower()}"
            tenant.insert("registrations", {  # a no-op when registered already
                "registration_id": registration_id,
                "pd_patient_uuid": patient["uuid"],
                "pd_provider_uuid": pd_provider_uuid.lower(),
                "location": place,
            })
            return patient

    # -- slots ---------------------------------------------------------------
    def create_slot(self, tenant_id: str, pd_provider_uuid: str, location: list, appointment_type: str,
                    start_date: str, end_date: str) -> dict:
        """Open a slot. Refused: unknown provider (404), unknown type code (422),
        end not after start (422), overlap with the provider's slot at the same place (409)."""
        place = list(geo.check_location(location))
        start, end = _date_range(start_date, end_date)
        with self._transaction(tenant_id) as tenant:
            provider = self._require(tenant, "providers", pd_provider_uuid, "pd_provider_uuid")
            if not any(t["type"] == appointment_type for t in tenant.all("appointment_types")):
                raise _unknown_type(appointment_type)
            # From here until the end of the transaction no other writer adds a slot for this provider.
            tenant.lock_calendar(provider["pd_provider_uuid"])
            clash = self._overlapping_slot(tenant, provider["pd_provider_uuid"], place, start, end)
            if clash is not None:
                raise _overlap(clash["start_date"], clash["end_date"], clash["pd_appointment_uuid"])
            most = self.limits.tenant_slots if self.limits else None
            if most is not None and tenant.count("slots") >= most:
                raise Conflict(f"this data set holds {most} slots, this server's limit per tenant "
                               "(--max-tenant-slots); delete slots or reset the data set first", "pd_provider_uuid")
            self.tenants.check_room(1, within=tenant)  # all tenants' slots, held until this commits
            slot = {
                "pd_appointment_uuid": str(uuid.uuid4()),
                "appointment_id": _new_appointment_id(),
                "appointment_type": appointment_type,
                "pd_provider_uuid": provider["pd_provider_uuid"],
                "provider_scheduler_uuid": provider["provider_scheduler_uuid"],
                "location": place,
                "start_date": format_datetime(start),
                "end_date": format_datetime(end),
                "booked": False,
                "patient": None,
                "description": None,
            }
            try:
                tenant.insert("slots", slot)
            except OverlapRefused:  # only when a writer skipped lock_calendar: the store still refuses
                raise _overlap(slot["start_date"], slot["end_date"]) from None
            return slot

    def delete_slot(self, tenant_id: str, pd_appointment_uuid: str) -> dict:
        """Delete an open slot. A booked one is a 409: cancel it first."""
        with self._transaction(tenant_id) as tenant:
            slot = self._require(tenant, "slots", pd_appointment_uuid, "pd_appointment_uuid", for_update=True)
            if slot.get("completed"):
                raise Conflict(f"appointment {slot['pd_appointment_uuid']} is completed; a completed appointment "
                               "is kept (it cannot be cancelled or deleted)", "pd_appointment_uuid")
            if slot["booked"]:
                raise Conflict(f"slot {slot['pd_appointment_uuid']} is booked; cancel the appointment "
                               "before deleting the slot", "pd_appointment_uuid")
            tenant.remove("slots", slot["pd_appointment_uuid"])
            return slot

    # -- appointments ----------------------------------------------------------
    def slot_search(self, patient_uuid: str | None = None, pd_provider_uuid: str | None = None,
                    location: list | None = None, radius: str | None = None, appointment_type: str | None = None,
                    start_date: str | None = None, end_date: str | None = None,
                    calendar: bool = False) -> SlotSearch:
        """The filters of GET /schedule/appointments/ (already type-checked by the contract), checked
        and parsed once: 403 or 422 for what cannot be searched. `calendar`: the token lacks
        user_schedule, so the search is a provider-side application's look at the provider's calendar
        (open, booked and completed), by provider and/or location."""
        if calendar and (patient_uuid or not (pd_provider_uuid or location)):
            # As recorded: a search without user_schedule is the scope 403, unless it is the final
            # documentation's business_schedule search (by provider and/or location, no patient).
            raise ScopeRefused("user_schedule", "a search by patient_uuid (or by nothing) needs the user_schedule "
                               "scope; with business_schedule, search by pd_provider_uuid and/or location, or get "
                               "a token with scope=user_schedule from POST /oauth2/token")
        if not (patient_uuid or pd_provider_uuid or location):
            raise Unprocessable("give patient_uuid (booked appointments) or pd_provider_uuid and/or location "
                                "(open slots)", "patient_uuid")
        if radius is not None and not location:
            raise Unprocessable("radius needs a location", "radius")
        origin = geo.check_location(location) if location else None
        miles = geo.parse_radius(radius)
        most = self.limits.radius_miles if self.limits else None
        if most is not None and miles > most:
            raise Unprocessable(f"radius {radius} is wider than this server's limit of {most:g} miles "
                                "(--max-radius); search a smaller area", "radius")
        start = parse_datetime(start_date, "start_date") if start_date else None
        end = parse_datetime(end_date, "end_date") if end_date else None
        if start and end:
            _check_order(start, end)
        return SlotSearch(patient=patient_uuid.lower() if patient_uuid else None,
                          provider=pd_provider_uuid.lower() if pd_provider_uuid else None,
                          origin=origin, radius=miles, appointment_type=appointment_type, start=start, end=end,
                          calendar=calendar)

    def search(self, tenant_id: str, search: SlotSearch) -> list[dict]:
        """A patient's booked appointments (`patient`), or open slots (the calendar's every slot with
        `calendar`) by provider and/or place; narrowed by type and dates; ordered by start, then distance."""
        with self._transaction(tenant_id, readonly=True) as tenant:
            candidates = tenant.search_candidates(search)
        miles = geo.miles_from(search.origin) if search.origin is not None else None

        def order(slot: dict):
            """The slot's place in the answer (start, then distance), or None when it does not match."""
            if search.patient is not None:
                if not slot["booked"] or slot["patient"]["_uuid"].lower() != search.patient:
                    return None
            elif slot["booked"] and not search.calendar:
                return None
            if search.provider is not None and slot["pd_provider_uuid"] != search.provider:
                return None
            if search.appointment_type is not None and slot["appointment_type"] != search.appointment_type:
                return None
            begins = parse_datetime(slot["start_date"], "start_date")
            if search.start is not None and begins < search.start:
                return None
            if search.end is not None and parse_datetime(slot["end_date"], "end_date") > search.end:
                return None
            if miles is None:
                return begins, 0.0
            distance = miles(slot["location"])
            return (begins, distance) if distance <= search.radius else None

        # Each slot measured once; sorted by its key alone (stable: equal keys keep the candidates' order).
        found = [(key, slot) for slot in candidates if (key := order(slot)) is not None]
        found.sort(key=_first)
        return [slot for _key, slot in found]

    def search_page(self, tenant_id: str, search: SlotSearch, limit: int, offset: int) -> tuple[int, list[dict]]:
        """One page of `search`: how many match, and `limit` of them from `offset`.

        A provider's open slots (no patient, no place) are paged by the store when it can
        (`TenantData.open_slots_page`): the cost then does not grow with the number of matches."""
        if search.open_slots_of_provider:
            with self._transaction(tenant_id, readonly=True) as tenant:
                paged = tenant.open_slots_page(search, offset, limit)
            if paged is not None:
                return paged
        found = self.search(tenant_id, search)
        return len(found), found[offset:offset + limit]

    def get_appointment(self, tenant_id: str, pd_appointment_uuid: str) -> dict:
        with self._transaction(tenant_id, readonly=True) as tenant:
            return self._require(tenant, "slots", pd_appointment_uuid, "pd_appointment_uuid")

    def update_appointment(self, tenant_id: str, pd_appointment_uuid: str, patient: dict | None = None,
                           description: str | None = None, mark_completed: bool | None = None) -> dict:
        """With `patient`: book (409 if another patient holds it; same patient is idempotent).
        With `description`: set it, booked, open or completed.
        With `mark_completed` true: a booked appointment becomes completed (idempotent); an open slot is a 409.

        A completed appointment keeps its patient and may still take a new description (and the same
        patient's booking, a no-op); it can no longer be cancelled or booked by another patient (409)."""
        completing = mark_completed is True
        if patient is None and description is None and not completing:
            raise Unprocessable("give patient (to book), description (to update) and/or mark_completed: true "
                                "(to mark a booked appointment completed)", "patient")
        booking = _booking_patient(patient) if patient is not None else None
        with self._transaction(tenant_id) as tenant:
            slot = self._require(tenant, "slots", pd_appointment_uuid, "pd_appointment_uuid", for_update=True)
            if booking is not None:
                holder = slot["patient"]["_uuid"].lower() if slot["booked"] else None
                if holder is not None and holder != booking["_uuid"]:
                    raise Conflict(f"slot {slot['pd_appointment_uuid']} is already "
                                   f"{'completed' if slot.get('completed') else 'booked'} by another patient",
                                   "patient")
                known = tenant.get("patients", booking["_uuid"]) or {}
                slot["patient"] = {**{k: v for k, v in known.items() if k != "uuid"}, **booking}
                slot["booked"] = True
            if completing:
                if not slot["booked"]:
                    raise Conflict(f"slot {slot['pd_appointment_uuid']} is open; only a booked appointment can be "
                                   "marked completed (book it first)", "mark_completed")
                slot["completed"] = True
            if description is not None:
                slot["description"] = description
            tenant.replace("slots", slot)
            return slot

    def cancel_appointment(self, tenant_id: str, pd_appointment_uuid: str) -> dict:
        """Cancel a booking: the slot is open again, without patient. An open slot is a 409."""
        with self._transaction(tenant_id) as tenant:
            slot = self._require(tenant, "slots", pd_appointment_uuid, "pd_appointment_uuid", for_update=True)
            if not slot["booked"]:
                raise Conflict(f"slot {slot['pd_appointment_uuid']} is not booked; nothing to cancel",
                               "pd_appointment_uuid")
            if slot.get("completed"):
                raise Conflict(f"appointment {slot['pd_appointment_uuid']} is completed; a completed appointment "
                               "cannot be cancelled (its description can still be updated)", "pd_appointment_uuid")
            slot["booked"] = False
            slot["patient"] = None
            tenant.replace("slots", slot)
            return slot

    # -- helpers -------------------------------------------------------------
    @staticmethod
    def _require(tenant: TenantData, kind: str, key: str, field: str, for_update: bool = False) -> dict:
        """The record; `for_update` keeps other transactions from changing it until this one ends."""
        record = tenant.get(kind, key.lower(), for_update=for_update)
        if record is None:
            noun = kind[:-1].replace("_", " ")
            raise NotFound(f"no {noun} with {field} {key}", field)
        return record

    @staticmethod
    def _overlapping_slot(tenant: TenantData, provider_uuid: str, place: list, start: datetime,
                          end: datetime) -> dict | None:
        for slot in tenant.overlap_candidates(provider_uuid, place, start, end):
            if (geo.same_place(slot["location"], place)
                    and parse_datetime(slot["start_date"], "start_date") < end
                    and start < parse_datetime(slot["end_date"], "end_date")):
                return slot
        return None


def _unknown_type(code) -> Unprocessable:
    return Unprocessable(f"appointment_type {code!r} is not a known appointment type code", "appointment_type")


def _first(pair: tuple):
    return pair[0]


def _date_range(start_date: str, end_date: str) -> tuple[datetime, datetime]:
    start, end = parse_datetime(start_date, "start_date"), parse_datetime(end_date, "end_date")
    _check_order(start, end)
    return start, end


def _check_order(start: datetime, end: datetime) -> None:
    if end <= start:
        raise Unprocessable("end_date must be after start_date", "end_date")


def _overlap(start_date: str, end_date: str, clash: str | None = None) -> Conflict:
    what = f"slot {clash}" if clash else "a slot"
    return Conflict(f"the provider already has {what} at this location from {start_date} to {end_date}",
                    "start_date")


def _booking_patient(patient: dict) -> dict:
    """The booking patient with its id under `_uuid`; `uuid` is accepted as an alias."""
    given = {k: v for k, v in patient.items() if k not in ("_uuid", "uuid")}
    ids = {patient[k].lower() for k in ("_uuid", "uuid") if patient.get(k)}
    if not ids:
        raise Unprocessable("patient needs its id as _uuid (or uuid)", "patient._uuid")
    if len(ids) > 1:
        raise Unprocessable("patient _uuid and uuid disagree", "patient._uuid")
    return {**given, "_uuid": ids.pop()}


def _new_appointment_id() -> str:
    return "".join(random.choices(string.ascii_uppercase, k=12))


# -- a whole data set at once (a fixture file) --------------------------------------------------

class RecordRefused(Exception):
    """A record of a data set that the rules refuse: `kind`, its `index` in that list, and why."""

    def __init__(self, kind: str, index: int, error: SandboxError):
        super().__init__(error.message)
        self.kind, self.index, self.error = kind, index, error


def check_dataset(dataset: dict) -> None:
    """Raise `RecordRefused` for the first record that could not be there had it been made through
    the operations above: the records it names must exist (a provider's scheduler, a slot's provider
    and appointment type, a booking's patient, a registration's patient and provider), locations and
    date ranges must be valid, a provider's slots at one place must not overlap, and no two records
    of a kind may share a key. `dataset` holds lower-case keys, as the stores keep them."""
    seen: dict[str, set] = {}
    for kind, key_field in KINDS.items():
        keys = seen[kind] = set()
        for index, record in enumerate(dataset.get(kind, ())):
            key = record[key_field]
            if key in keys:
                noun = kind[:-1].replace("_", " ")
                raise RecordRefused(kind, index, Conflict(
                    f"a second {noun} with {key_field} {key}; give each {noun} its own", key_field))
            keys.add(key)

    def require(kind: str, index: int, key, target: str, field: str) -> None:
        if key not in seen[target]:
            noun = target[:-1].replace("_", " ")
            raise RecordRefused(kind, index, NotFound(f"no {noun} with {field} {key}", field))

    def checked(kind: str, index: int, check, *args):
        try:
            return check(*args)
        except SandboxError as error:
            raise RecordRefused(kind, index, error) from None

    for index, record in enumerate(dataset.get("appointment_types", ())):
        require("appointment_types", index, record["scheduler_uuid"], "schedulers", "scheduler_uuid")
    providers = {}
    for index, record in enumerate(dataset.get("providers", ())):
        require("providers", index, record["scheduler_uuid"], "schedulers", "scheduler_uuid")
        for place in record["locations"]:
            checked("providers", index, geo.check_location, place, "locations")
        providers[record["pd_provider_uuid"]] = record
    for index, record in enumerate(dataset.get("registrations", ())):
        require("registrations", index, record["pd_patient_uuid"], "patients", "pd_patient_uuid")
        require("registrations", index, record["pd_provider_uuid"], "providers", "pd_provider_uuid")
        if record.get("location") is not None:
            checked("registrations", index, geo.check_location, record["location"])
    codes = {t["type"] for t in dataset.get("appointment_types", ())}
    calendars: dict[tuple, list] = {}
    for index, slot in enumerate(dataset.get("slots", ())):
        require("slots", index, slot["pd_provider_uuid"], "providers", "pd_provider_uuid")
        if slot["appointment_type"] not in codes:
            raise RecordRefused("slots", index, _unknown_type(slot["appointment_type"]))
        place = checked("slots", index, geo.check_location, slot["location"])
        start, end = checked("slots", index, _date_range, slot["start_date"], slot["end_date"])
        if slot["provider_scheduler_uuid"] != providers[slot["pd_provider_uuid"]]["provider_scheduler_uuid"]:
            raise RecordRefused("slots", index, Unprocessable(
                f"provider_scheduler_uuid {slot['provider_scheduler_uuid']} is not provider "
                f"{slot['pd_provider_uuid']}'s; leave it out (it is the provider's)", "provider_scheduler_uuid"))
        if slot["booked"]:
            booking = checked("slots", index, _booking_patient, slot["patient"] or {})
            require("slots", index, booking["_uuid"], "patients", "patient._uuid")
        elif slot.get("patient"):
            raise RecordRefused("slots", index, Unprocessable(
                "an open slot has no patient; set booked to true or leave the patient out", "patient"))
        place_key = (slot["pd_provider_uuid"], round(place[0], 6), round(place[1], 6))
        calendars.setdefault(place_key, []).append((start, end, index, slot))
    for calendar in calendars.values():
        calendar.sort(key=lambda entry: (entry[0], entry[2]))
        latest = None  # the slot ending last among those started so far
        for entry in calendar:
            if latest is not None and entry[0] < latest[1]:
                earlier = latest[3]
                raise RecordRefused("slots", entry[2], _overlap(earlier["start_date"], earlier["end_date"],
                                                                earlier["pd_appointment_uuid"]))
            if latest is None or entry[1] > latest[1]:
                latest = entry
