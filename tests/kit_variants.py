"""Broken sandboxes for the kit's partition suite: each an otherwise correct sandbox with one
behaviour broken, the way a real implementation of the API plausibly breaks it, visible by one
direct request. `VARIANTS[name](monkeypatch)` breaks it (on the Scheduling rules or the
geometry); `tests/test_kit_partitions.py` proves the kit reports each.

Only the sandbox's own modules are patched, so the same variants can be run against any version
of the kit (e.g. to see which ones an older kit misses).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import datetime, timedelta

from pokitdok_sandbox import geo
from pokitdok_sandbox.scheduling import Scheduling
from pokitdok_sandbox.timefmt import parse_datetime

VARIANTS = {}


def variant(function):
    VARIANTS[function.__name__.replace("_", "-")] = function
    return function


def _search(monkeypatch, transform):
    """Replace the full search by `transform(self, tenant, query, original)`; pages cut from it."""
    original = Scheduling.search

    def search(self, tenant_id, query):
        return transform(self, tenant_id, query, original)

    def search_page(self, tenant_id, query, limit, offset):
        found = self.search(tenant_id, query)
        return len(found), found[offset:offset + limit]

    monkeypatch.setattr(Scheduling, "search", search)
    monkeypatch.setattr(Scheduling, "search_page", search_page)


# -- geometry ------------------------------------------------------------------------------------

@variant
def radius_strict(monkeypatch):
    """`distance < radius`: a slot exactly at the radius (radius 0, at the place) is left out."""
    def strict(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.origin is None:
            return found
        return [s for s in found if geo.miles_between(query.origin, s["location"]) < query.radius]
    _search(monkeypatch, strict)


@variant
def radius_in_km(monkeypatch):
    """A radius without a unit read as kilometres (the contract: miles)."""
    original = geo.parse_radius

    def parse(value):
        if value is not None and value.strip()[-2:] not in ("mi", "km"):
            value = value.strip() + "km"
        return original(value)
    monkeypatch.setattr(geo, "parse_radius", parse)


@variant
def km_read_as_miles(monkeypatch):
    """`60km` searched as 60 miles."""
    original = geo.parse_radius
    monkeypatch.setattr(geo, "parse_radius", lambda value: original(value.replace("km", "mi") if value else value))


@variant
def default_radius_25(monkeypatch):
    """No radius: 25 miles, not the documented 10."""
    monkeypatch.setattr(geo, "DEFAULT_RADIUS_MILES", 25.0)


@variant
def latitude_longitude_swapped(monkeypatch):
    """The distance reads each location as [longitude, latitude]."""
    original = geo.miles_between
    _distance(monkeypatch, lambda a, b: original((a[1], a[0]), (b[1], b[0])))


@variant
def flat_earth_distance(monkeypatch):
    """An equirectangular distance without wrapping the longitude: wrong across the antimeridian
    and near the poles, right everywhere the kit used to look."""
    def flat(a, b):
        mean = math.radians((a[0] + b[0]) / 2)
        dx = math.radians(b[1] - a[1]) * math.cos(mean)
        dy = math.radians(b[0] - a[0])
        return geo.EARTH_RADIUS_MILES * math.hypot(dx, dy)
    _distance(monkeypatch, flat)


def _distance(monkeypatch, miles_between) -> None:
    """Every distance the sandbox measures (one pair, or many from one origin) taken by `miles_between`."""
    monkeypatch.setattr(geo, "miles_between", miles_between)
    monkeypatch.setattr(geo, "miles_from", lambda origin: lambda b: miles_between(origin, b))


# -- date windows ----------------------------------------------------------------------------------

@variant
def end_date_time_ignored(monkeypatch):
    """end_date compared by its day only: a slot ending later that day is listed."""
    def by_day(self, tenant, query, original):
        if query.end:
            end = query.end
            query = replace(query, end=datetime(end.year, end.month, end.day) + timedelta(days=1, microseconds=-1))
        return original(self, tenant, query)
    _search(monkeypatch, by_day)


@variant
def window_to_the_second(monkeypatch):
    """The window's edges truncated to the second: a slot starting 0.25 s before start_date is listed."""
    def truncated(self, tenant, query, original):
        if query.start:
            query = replace(query, start=query.start.replace(microsecond=0))
        return original(self, tenant, query)
    _search(monkeypatch, truncated)


# -- ordering and paging ---------------------------------------------------------------------------

@variant
def unstable_order_on_equal_starts(monkeypatch):
    """Ordered by start only; slots starting together come in any order, each time another."""
    def shuffled(self, tenant, query, original):
        found = original(self, tenant, query)
        random.shuffle(found)
        return sorted(found, key=lambda slot: parse_datetime(slot["start_date"], "start_date"))
    _search(monkeypatch, shuffled)


@variant
def limit_off_by_one_past_100(monkeypatch):
    """A limit over 100 answers one record fewer."""
    original = Scheduling.search_page

    def page(self, tenant_id, query, limit, offset):
        count, found = original(self, tenant_id, query, limit, offset)
        return count, (found[:limit - 1] if limit > 100 else found)
    monkeypatch.setattr(Scheduling, "search_page", page)


@variant
def count_capped_at_the_page(monkeypatch):
    """meta.count is the size of the page, not the number of matches."""
    original = Scheduling.search_page

    def page(self, tenant_id, query, limit, offset):
        count, found = original(self, tenant_id, query, limit, offset)
        return min(count, offset + limit), found
    monkeypatch.setattr(Scheduling, "search_page", page)


# -- overlaps --------------------------------------------------------------------------------------

def _overlap_rule(monkeypatch, clashes):
    """Replace the overlap rule: `clashes(candidates, place, start, end)` answers the clashing slot."""
    def overlapping(tenant, provider_uuid, place, start, end):
        candidates = [slot for slot in tenant.overlap_candidates(provider_uuid, place, start, end)]
        return clashes(tenant, provider_uuid, candidates, place, start, end)
    monkeypatch.setattr(Scheduling, "_overlapping_slot", staticmethod(overlapping))


def _span(slot):
    return parse_datetime(slot["start_date"], "start_date"), parse_datetime(slot["end_date"], "end_date")


@variant
def overlap_checked_against_the_previous_slot(monkeypatch):
    """Only the provider's slot starting last before the new one is checked (at the same place)."""
    def previous_only(tenant, provider, candidates, place, start, end):
        before = [s for s in candidates if geo.same_place(s["location"], place) and _span(s)[0] <= start]
        if not before:
            return None
        latest = max(before, key=lambda s: _span(s)[0])
        return latest if _span(latest)[1] > start else None
    _overlap_rule(monkeypatch, previous_only)


@variant
def overlap_ignoring_seconds(monkeypatch):
    """Times compared to the minute: a slot overlapping another by seconds is accepted."""
    def minutes(moment):
        return moment.replace(second=0, microsecond=0)

    def to_the_minute(tenant, provider, candidates, place, start, end):
        for slot in candidates:
            low, high = _span(slot)
            if geo.same_place(slot["location"], place) and minutes(low) < minutes(end) and minutes(start) < minutes(high):
                return slot
        return None
    _overlap_rule(monkeypatch, to_the_minute)


@variant
def overlap_across_providers(monkeypatch):
    """The overlap rule applied to every provider's slots at the place, not the provider's own."""
    def everyones(tenant, provider, candidates, place, start, end):
        for slot in tenant.slots_starting_between(start - timedelta(days=2), end):
            low, high = _span(slot)
            if geo.same_place(slot["location"], place) and low < end and start < high:
                return slot
        return None
    _overlap_rule(monkeypatch, everyones)


@variant
def overlap_by_type(monkeypatch):
    """Only slots of the same appointment type overlap (the contract: any slot of the provider)."""
    kinds: dict = {}
    original_create = Scheduling.create_slot

    def create(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date):
        kinds["current"] = appointment_type
        return original_create(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date)

    def same_type(tenant, provider, candidates, place, start, end):
        for slot in candidates:
            low, high = _span(slot)
            if geo.same_place(slot["location"], place) and low < end and start < high \
                    and slot["appointment_type"] == kinds.get("current"):
                return slot
        return None
    monkeypatch.setattr(Scheduling, "create_slot", create)
    _overlap_rule(monkeypatch, same_type)


@variant
def zero_length_slot_accepted(monkeypatch):
    """A slot whose end equals its start is created (the contract: end after start, else 422)."""
    import pokitdok_sandbox.scheduling as scheduling

    def range_(start_date, end_date):
        start, end = parse_datetime(start_date, "start_date"), parse_datetime(end_date, "end_date")
        if end < start:
            scheduling._check_order(start, end)
        return start, end
    monkeypatch.setattr(scheduling, "_date_range", range_)


# -- filters across providers; cancel and the location search -----------------------------------

@variant
def provider_ignored_with_a_location(monkeypatch):
    """With a location, pd_provider_uuid is ignored: every provider's slots near it."""
    def ignored(self, tenant, query, original):
        if query.origin and query.provider:
            query = replace(query, provider=None)
        return original(self, tenant, query)
    _search(monkeypatch, ignored)


@variant
def cancelled_slot_missing_from_location_search(monkeypatch):
    """A cancelled booking is open again everywhere but in location searches (a stale place index)."""
    cancelled: set = set()
    original_cancel = Scheduling.cancel_appointment

    def cancel(self, tenant_id, pd_appointment_uuid):
        slot = original_cancel(self, tenant_id, pd_appointment_uuid)
        cancelled.add(slot["pd_appointment_uuid"])
        return slot

    def stale(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.origin and not query.patient:
            found = [slot for slot in found if slot["pd_appointment_uuid"] not in cancelled]
        return found
    monkeypatch.setattr(Scheduling, "cancel_appointment", cancel)
    _search(monkeypatch, stale)


@variant
def search_end_equal_to_start_answered(monkeypatch):
    """A search whose end_date equals its start_date answers 200 (the contract: 422)."""
    import pokitdok_sandbox.scheduling as scheduling
    original = scheduling._check_order
    in_search = {"on": False}
    original_slot_search = Scheduling.slot_search

    def slot_search(self, **filters):
        in_search["on"] = True
        try:
            return original_slot_search(self, **filters)
        finally:
            in_search["on"] = False

    def check(start, end):
        if in_search["on"] and end == start:
            return
        original(start, end)
    monkeypatch.setattr(scheduling, "_check_order", check)
    monkeypatch.setattr(Scheduling, "slot_search", slot_search)



# -- the token endpoint ----------------------------------------------------------------------------

@variant
def token_request_not_a_form_answered_401(monkeypatch):
    """A token request that is not a form answered 401 invalid_request (RFC 6749: 400)."""
    from pokitdok_sandbox.api import token as token_endpoint
    from pokitdok_sandbox.auth import OAuthError

    original = token_endpoint.token

    async def token(request):
        try:
            return await original(request)
        except OAuthError as error:
            if error.status == 400 and error.code == "invalid_request":
                raise OAuthError(401, "invalid_request", "send the token request as a form", "Content-Type") from None
            raise
    monkeypatch.setattr(token_endpoint, "token", token)


@variant
def credentials_in_the_form_refused(monkeypatch):
    """Client credentials only by HTTP Basic: the same credentials in the form body answered 401."""
    import pokitdok_sandbox.auth as auth
    from pokitdok_sandbox.auth import OAuthError

    original = auth._client_credentials

    def credentials(form, authorization):
        if not (authorization and authorization[:6].lower() == "basic "):
            raise OAuthError(401, "invalid_client", "send client credentials by HTTP Basic", "client_id")
        return original(form, authorization)
    monkeypatch.setattr(auth, "_client_credentials", credentials)


# -- filters with a patient, type codes, conditional reads -----------------------------------------

@variant
def patient_search_ignores_the_provider(monkeypatch):
    """With patient_uuid, pd_provider_uuid is ignored: the patient's bookings with every provider."""
    def ignored(self, tenant, query, original):
        if query.patient and query.provider:
            query = replace(query, provider=None)
        return original(self, tenant, query)
    _search(monkeypatch, ignored)


@variant
def type_filter_case_insensitive(monkeypatch):
    """appointment_type compared without case: `at1` finds the `AT1` slots."""
    def any_case(self, tenant, query, original):
        if not query.appointment_type:
            return original(self, tenant, query)
        code = query.appointment_type.lower()
        return [slot for slot in original(self, tenant, replace(query, appointment_type=None))
                if slot["appointment_type"].lower() == code]
    _search(monkeypatch, any_case)


@variant
def stale_tag_answered_not_modified(monkeypatch):
    """If-None-Match compared by order, not equality: a tag sorting after the page's answers 304."""
    from pokitdok_sandbox.api import catalog

    def matches(if_none_match, tag):
        if not if_none_match:
            return False
        if if_none_match.strip() == "*":
            return True
        opaque = tag.removeprefix("W/")
        return any(candidate.strip().removeprefix("W/") >= opaque for candidate in if_none_match.split(","))
    monkeypatch.setattr(catalog, "_matches", matches)
