"""The kit's model-based suite catches what a server *does* wrong, not only what it says.

Each test breaks one behaviour of an otherwise correct sandbox (a monkeypatched rule: the HTTP
answers stay well-formed and schema-valid) and runs the kit's model-based suite against it
in-process, with a handful of short sequences. Each class of bug must be reported, with the
shortest failing sequence as a numbered shell script; the unbroken sandbox must pass.

One sandbox serves the whole module (each kit run works in a tenant of its own).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import replace
from datetime import timedelta

import pytest

from pokitdok_sandbox.contract_tests.options import KitOptions
from pokitdok_sandbox.contract_tests.runner import KitResult, run
import pokitdok_sandbox.api as api_handlers
from pokitdok_sandbox.api import appointments as appointment_handlers
from pokitdok_sandbox.api import slots as slot_handlers
from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.errors import Conflict, NotFound, SandboxError
from pokitdok_sandbox.scheduling import Scheduling, _booking_patient
from pokitdok_sandbox.slot_search import SlotSearch
from pokitdok_sandbox.stores.base import TenantData
from pokitdok_sandbox import geo
from pokitdok_sandbox.timefmt import format_datetime, parse_datetime
from pokitdok_sandbox.views import slot_view

from .conftest import make_settings

SEED = 4242
EXAMPLES = 40  # the model suite runs a fifth of this: 8 sequences of up to 12 steps
SHRINK = 1.5  # seconds of shrinking per failure: enough for a short script, keeps the module lean


@pytest.fixture(scope="module")
def server():
    return create_app(make_settings(validate_responses=False))


def run_model(app, **options) -> KitResult:
    return run(KitOptions(app=app, max_examples=EXAMPLES, seed=SEED, shrink_seconds=SHRINK, **options),
               keyword="model", quiet=True)


def assert_caught(result: KitResult, *words: str) -> str:
    """The model suite failed on a check naming one of `words`, with a runnable script."""
    assert not result.passed, "the broken server passed the model suite"
    found = [f for f in result.findings if f.check.startswith("model:") or "search" in f.check]
    assert found, result.summary
    text = "\n".join(f"{f.check} | {f.rule} | {f.expected} | {f.actual} | {f.detail}" for f in found)
    assert any(word in text for word in words), f"none of {words} in:\n{text}\n{result.summary}"
    assert "shortest failing sequence" in result.summary
    script = found[-1].curl
    assert script.startswith("#!/bin/sh") and "ACCESS_TOKEN=$(curl" in script and "# 1. " in script, script
    assert "sandbox-demo-secret" not in result.summary and "CLIENT_SECRET=\"${CLIENT_SECRET:?" in script
    return text


def patch(monkeypatch, name, make):
    original = getattr(Scheduling, name)
    monkeypatch.setattr(Scheduling, name, make(original))
    if name == "search":  # the API pages searches (search_page): here it cuts the broken full search
        def search_page(self, tenant_id, query, limit, offset):
            found = self.search(tenant_id, query)
            return len(found), found[offset:offset + limit]
        monkeypatch.setattr(Scheduling, "search_page", search_page)


# -- the correct sandbox --------------------------------------------------------------------

def test_the_model_suite_passes_on_the_sandbox(backend):
    result = run(KitOptions(app=create_app(make_settings(validate_responses=False)), max_examples=EXAMPLES,
                            seed=SEED + 1), keyword="model", quiet=True)
    assert result.passed, result.summary


# -- searches: each filter ignored, off by one at an edge, wrong records listed ----------------

def _search_with(transform):
    def make(original):
        def search(self, tenant_id, query):
            return transform(self, tenant_id, query, original)
        return search
    return make


@pytest.mark.parametrize("ignored, words", [
    ({"start": None, "end": None}, ("start_date filter", "end_date filter", "start_date=", "end_date=")),
    ({"appointment_type": None}, ("appointment_type=",)),
    ({"radius": geo.DEFAULT_RADIUS_MILES}, ("location radius", "a matching record is missing")),
], ids=["dates", "type", "radius"])
def test_a_search_filter_ignored_is_caught(server, monkeypatch, ignored, words):
    patch(monkeypatch, "search", _search_with(
        lambda self, tenant, query, original: original(self, tenant, replace(query, **ignored))))
    assert_caught(run_model(server), *words)


def test_a_provider_filter_ignored_is_caught(server, monkeypatch):
    def any_provider(self, tenant, query, original):
        if query.provider and not query.origin:  # the bug: every provider's open slots near it
            found = original(self, tenant, replace(query, provider="b691b7f9-bfa8-486d-a689-214ae47ea6f8"))
            return found
        return original(self, tenant, query)

    patch(monkeypatch, "search", _search_with(any_provider))
    assert_caught(run_model(server), "belongs to provider")


def test_a_patient_search_listing_another_patients_bookings_is_caught(server, monkeypatch):
    def everyones(self, tenant, query, original):
        if not query.patient:
            return original(self, tenant, query)
        mine = original(self, tenant, query)
        others = original(self, tenant, replace(query, patient="500ef469-2767-4901-b705-425e9b6f7f83"))
        others += original(self, tenant, replace(query, patient="2773f6ff-00cb-460f-823f-5ff2208511e7"))
        seen = {slot["pd_appointment_uuid"] for slot in mine}
        return mine + [slot for slot in others if slot["pd_appointment_uuid"] not in seen]

    patch(monkeypatch, "search", _search_with(everyones))
    assert_caught(run_model(server), "patient_uuid=")


def test_booked_slots_listed_as_open_are_caught(server, monkeypatch):
    def with_booked(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.patient:
            return found
        booked = []
        for patient in ("500ef469-2767-4901-b705-425e9b6f7f83", "2773f6ff-00cb-460f-823f-5ff2208511e7"):
            booked += original(self, tenant, replace(query, patient=patient, origin=None, provider=None))
        return sorted(found + booked, key=lambda slot: slot["start_date"])

    patch(monkeypatch, "search", _search_with(with_booked))
    assert_caught(run_model(server), "open slots only")


def test_an_exclusive_end_date_is_caught(server, monkeypatch):
    def exclusive(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.end:  # the bug: a slot ending exactly at end_date is left out
            found = [slot for slot in found if parse_datetime(slot["end_date"], "end_date") < query.end]
        return found

    patch(monkeypatch, "search", _search_with(exclusive))
    assert_caught(run_model(server), "is missing")


def test_a_deleted_slot_still_listed_is_caught(server, monkeypatch):
    graveyard: list = []

    def make_delete(original):
        def delete_slot(self, tenant_id, pd_appointment_uuid):
            slot = original(self, tenant_id, pd_appointment_uuid)
            graveyard.append(copy.deepcopy(slot))
            return slot
        return delete_slot

    def haunted(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.provider and not query.patient:  # the bug: a stale search index
            found = sorted(found + [s for s in graveyard if s["pd_provider_uuid"] == query.provider],
                           key=lambda slot: slot["start_date"])
        return found

    patch(monkeypatch, "delete_slot", make_delete)
    patch(monkeypatch, "search", _search_with(haunted))
    assert_caught(run_model(server), "deleted by the run", "start_date filter", "end_date filter",
                  "breaks the filter")  # a deleted slot listed where it does not match the search


# -- writes acknowledged but not stored, fields changed on the way ------------------------------

def test_a_description_acknowledged_but_not_stored_is_caught(server, monkeypatch):
    def make(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            if patient is None:  # the bug: answers the new description, stores nothing
                slot = copy.deepcopy(self.get_appointment(tenant_id, pd_appointment_uuid))
            else:
                slot = copy.deepcopy(original(self, tenant_id, pd_appointment_uuid, patient, None))
            if description is not None:
                slot["description"] = description
            return slot
        return update

    patch(monkeypatch, "update_appointment", make)
    assert_caught(run_model(server), "description")


def test_patient_fields_dropped_on_write_are_caught(server, monkeypatch):
    def make(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            stored = {k: v for k, v in patient.items() if k != "first_name"} if patient else None
            slot = copy.deepcopy(original(self, tenant_id, pd_appointment_uuid, stored, description))
            if patient and "first_name" in patient:  # the bug: answered, never stored
                slot["patient"]["first_name"] = patient["first_name"]
            return slot
        return update

    patch(monkeypatch, "update_appointment", make)
    assert_caught(run_model(server), "patient.first_name")


def test_a_description_truncated_on_write_is_caught(server, monkeypatch):
    def make(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            return original(self, tenant_id, pd_appointment_uuid, patient,
                            description[:255] if description is not None else None)
        return update

    patch(monkeypatch, "update_appointment", make)
    assert_caught(run_model(server), "description")


def test_a_time_zone_offset_ignored_is_caught(server, monkeypatch):
    def make(original):
        def create_slot(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date):
            def local(text):  # the bug: 10:00+02:00 taken for 10:00 UTC
                return text.replace("Z", "").split("+")[0]
            return original(self, tenant_id, pd_provider_uuid, location, appointment_type, local(start_date),
                            local(end_date))
        return create_slot

    patch(monkeypatch, "create_slot", make)
    assert_caught(run_model(server), "start_date")


def test_fractional_seconds_dropped_are_caught(server, monkeypatch):
    def make(original):
        def create_slot(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date):
            slot = original(self, tenant_id, pd_provider_uuid, location, appointment_type,
                            format_datetime(parse_datetime(start_date, "start_date").replace(microsecond=0)),
                            format_datetime(parse_datetime(end_date, "end_date").replace(microsecond=0)))
            return {**slot, "start_date": format_datetime(parse_datetime(start_date, "start_date")),
                    "end_date": format_datetime(parse_datetime(end_date, "end_date"))}
        return create_slot

    patch(monkeypatch, "create_slot", make)
    assert_caught(run_model(server), "start_date", "end_date")


# -- reads: the wrong record, stale answers ------------------------------------------------------

def test_the_wrong_record_for_a_uuid_is_caught(server, monkeypatch):
    def make(original):
        def get_appointment(self, tenant_id, pd_appointment_uuid):
            slot = original(self, tenant_id, pd_appointment_uuid)
            found = self.search(tenant_id, _provider_query(slot))
            others = [s for s in found if s["pd_appointment_uuid"] != slot["pd_appointment_uuid"]]
            if others:  # the bug: the neighbouring slot, under the uuid asked for
                return {**copy.deepcopy(others[-1]), "pd_appointment_uuid": slot["pd_appointment_uuid"]}
            return slot
        return get_appointment

    patch(monkeypatch, "get_appointment", make)
    assert_caught(run_model(server), "start_date", "end_date", "appointment_id")


def _provider_query(slot):
    start = parse_datetime(slot["start_date"], "start_date")
    return SlotSearch(provider=slot["pd_provider_uuid"], start=start - timedelta(days=2), end=start + timedelta(days=2))


def test_stale_reads_are_caught(server, monkeypatch):
    cache: dict = {}

    def make(original):
        def get_appointment(self, tenant_id, pd_appointment_uuid):
            key = (tenant_id, pd_appointment_uuid.lower())
            if key not in cache:  # the bug: the first answer is cached forever
                cache[key] = copy.deepcopy(original(self, tenant_id, pd_appointment_uuid))
            return cache[key]
        return get_appointment

    patch(monkeypatch, "get_appointment", make)
    assert_caught(run_model(server), "read-after-write", "get by uuid", "deleted slot")


# -- state transitions not enforced -----------------------------------------------------------

def test_cancel_not_reopening_the_slot_is_caught(server, monkeypatch):
    def make(original):
        def cancel(self, tenant_id, pd_appointment_uuid):
            slot = copy.deepcopy(self.get_appointment(tenant_id, pd_appointment_uuid))
            if not slot["booked"]:
                return original(self, tenant_id, pd_appointment_uuid)
            return {**slot, "booked": False, "patient": None}  # the bug: answered, not done
        return cancel

    patch(monkeypatch, "cancel_appointment", make)
    assert_caught(run_model(server), "cancel", "booked")


def test_a_second_patient_allowed_to_book_is_caught(server, monkeypatch):
    def make(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            if patient is not None:  # the bug: the current holder silently loses the slot
                try:
                    self.cancel_appointment(tenant_id, pd_appointment_uuid)
                except SandboxError:
                    pass
            return original(self, tenant_id, pd_appointment_uuid, patient, description)
        return update

    patch(monkeypatch, "update_appointment", make)
    assert_caught(run_model(server), "booked by another patient")


def test_rebooking_by_the_same_patient_refused_is_caught(server, monkeypatch):
    def make(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            if patient is not None and self.get_appointment(tenant_id, pd_appointment_uuid)["booked"]:
                raise Conflict("already booked", "patient")  # the bug: not idempotent
            return original(self, tenant_id, pd_appointment_uuid, patient, description)
        return update

    patch(monkeypatch, "update_appointment", make)
    assert_caught(run_model(server), "rebooking by the same patient")


def test_deleting_a_booked_slot_allowed_is_caught(server, monkeypatch):
    def make(original):
        def delete_slot(self, tenant_id, pd_appointment_uuid):
            try:  # the bug: the booking is dropped with the slot
                self.cancel_appointment(tenant_id, pd_appointment_uuid)
            except SandboxError:
                pass
            return original(self, tenant_id, pd_appointment_uuid)
        return delete_slot

    patch(monkeypatch, "delete_slot", make)
    assert_caught(run_model(server), "deleting a booked slot")


def test_cancelling_an_open_slot_allowed_is_caught(server, monkeypatch):
    def make(original):
        def cancel(self, tenant_id, pd_appointment_uuid):
            slot = self.get_appointment(tenant_id, pd_appointment_uuid)
            if not slot["booked"]:
                return copy.deepcopy(slot)  # the bug: 200 for nothing to cancel
            return original(self, tenant_id, pd_appointment_uuid)
        return cancel

    patch(monkeypatch, "cancel_appointment", make)
    assert_caught(run_model(server), "cancelling an open slot")


def test_an_overlapping_slot_allowed_is_caught(server, monkeypatch):
    original = Scheduling._overlapping_slot

    def same_start_only(tenant, provider_uuid, place, start, end):
        clash = original(tenant, provider_uuid, place, start, end)  # the bug: only an equal start clashes
        return clash if clash is not None and parse_datetime(clash["start_date"], "start_date") == start else None

    monkeypatch.setattr(Scheduling, "_overlapping_slot", staticmethod(same_start_only))
    assert_caught(run_model(server), "overlapping")


def test_generated_searches_are_checked_both_ways_too(server, monkeypatch):
    patch(monkeypatch, "search", _search_with(
        lambda self, tenant, query, original: original(self, tenant, replace(query, start=None, end=None))))
    result = run(KitOptions(app=server, max_examples=EXAMPLES, seed=SEED),
                 keyword="properties and GET and appointments/]", quiet=True)
    assert not result.passed
    found = [f for f in result.findings if f.check == "search_results_match_the_query"]
    assert found and "breaks the filter" in found[0].expected, result.summary


# -- tenants: another client's records -------------------------------------------------------

def run_kit(app, keyword: str) -> KitResult:
    return run(KitOptions(app=app, max_examples=EXAMPLES, seed=SEED, shrink_seconds=SHRINK), keyword=keyword,
               quiet=True)


def assert_leak_caught(result: KitResult, *words: str) -> None:
    assert not result.passed, "the leaking server passed"
    found = [f for f in result.findings if f.check == "another client's records are invisible and unchangeable"]
    assert found, result.summary
    text = "\n".join(f"{f.operation} | {f.expected} | {f.actual}" for f in found)
    assert any(word in text for word in words), f"none of {words} in:\n{text}"
    assert "sandbox-demo-secret" not in result.summary


def _in_any_tenant(original):
    def method(self, tenant_id, pd_appointment_uuid, *args, **kwargs):
        try:
            return original(self, tenant_id, pd_appointment_uuid, *args, **kwargs)
        except NotFound:  # the bug: one uuid index for every tenant
            for other in self.tenants.store.tenant_ids():
                if other != tenant_id:
                    try:
                        return original(self, other, pd_appointment_uuid, *args, **kwargs)
                    except NotFound:
                        continue
            raise
    return method


def test_records_reachable_by_uuid_from_another_tenant_are_caught(server, monkeypatch):
    for name in ("get_appointment", "update_appointment", "cancel_appointment", "delete_slot"):
        patch(monkeypatch, name, _in_any_tenant)
    assert_leak_caught(run_kit(server, "isolation"), "GET /schedule/appointments/{pd_appointment_uuid}")


def test_writes_reaching_another_tenants_records_are_caught(server, monkeypatch):
    for name in ("update_appointment", "cancel_appointment", "delete_slot"):  # reads stay in the tenant
        patch(monkeypatch, name, _in_any_tenant)
    assert_leak_caught(run_kit(server, "isolation"), "tries to book", "tries to describe", "tries to cancel",
                       "tries to delete")


def test_searches_listing_another_tenants_records_are_caught(server, monkeypatch):
    def everyones(self, tenant, query, original):
        found = original(self, tenant, query)
        for other in self.tenants.store.tenant_ids():  # the bug: one search index for every tenant
            if other != tenant:
                found += original(self, other, query)
        return sorted(found, key=lambda slot: slot["start_date"])

    patch(monkeypatch, "search", _search_with(everyones))
    assert_leak_caught(run_kit(server, "isolation"), "in a search")


def test_an_overlap_found_in_another_tenant_is_caught(monkeypatch):
    def make(original):
        def create_slot(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date):
            start, end = parse_datetime(start_date, "start_date"), parse_datetime(end_date, "end_date")
            for other in self.tenants.store.tenant_ids():  # the bug: one calendar for every tenant
                if other != tenant_id:
                    with self._transaction(other, readonly=True) as tenant:
                        if Scheduling._overlapping_slot(tenant, pd_provider_uuid.lower(), list(location), start, end):
                            raise Conflict("the provider already has a slot at this location", "start_date")
            return original(self, tenant_id, pd_provider_uuid, location, appointment_type, start_date, end_date)
        return create_slot

    patch(monkeypatch, "create_slot", make)
    # A sandbox of its own: with one seed every run of this module opens its slots at the same times,
    # and the slots earlier broken variants left in their tenants would clash here first.
    assert_leak_caught(run_kit(create_app(make_settings(validate_responses=False)), "isolation"),
                       "which is not in its data set")


# -- concurrent writes: check-then-act across an await -------------------------------------------
# Each variant awaits between its check and its write (as a handler awaiting a remote store
# would), so concurrent requests interleave there; the correct sandbox never does.

YIELD = 0.02  # seconds between check and write


def assert_race_caught(result: KitResult, *words: str) -> None:
    assert not result.passed, "the racy server passed"
    found = [f for f in result.findings if f.check.startswith("concurrency:")]
    assert found, result.summary
    text = "\n".join(f"{f.check} | {f.expected} | {f.actual}" for f in found)
    assert any(word in text for word in words), f"none of {words} in:\n{text}"
    script = found[0].curl
    assert script.startswith("#!/bin/sh") and " &\n" in script and "\nwait" in script, script
    assert "sandbox-demo-secret" not in result.summary


def racy_sandbox(monkeypatch, module, name, handler):
    """A sandbox whose handler `name` is replaced (handlers are resolved when the app is made)."""
    monkeypatch.setattr(module, name, handler)
    return create_app(make_settings(validate_responses=False))


def _booked(scheduling, tenant_id, slot, patient):
    booking = _booking_patient(patient)
    with scheduling._transaction(tenant_id) as tenant:
        known = tenant.get("patients", booking["_uuid"]) or {}
    slot["patient"] = {**{k: v for k, v in known.items() if k != "uuid"}, **booking}
    slot["booked"] = True


def _write(scheduling, tenant_id, slot):
    with scheduling._transaction(tenant_id) as tenant:
        tenant.replace("slots", slot)


def test_a_booking_checked_then_written_across_an_await_is_caught(monkeypatch):
    async def update_appointment(user, pd_appointment_uuid, body):
        scheduling = api_handlers.rules()
        slot = copy.deepcopy(scheduling.get_appointment(user, pd_appointment_uuid))
        patient, description = body.get("patient"), body.get("description")
        if patient is not None and slot["booked"] and \
                slot["patient"]["_uuid"].lower() != _booking_patient(patient)["_uuid"]:
            raise Conflict("already booked by another patient", "patient")
        await asyncio.sleep(YIELD)  # the bug: another booking can land between the check and the write
        if patient is not None:
            _booked(scheduling, user, slot, patient)
        if description is not None:
            slot["description"] = description
        _write(scheduling, user, slot)
        return api_handlers.one(slot_view(slot))

    app = racy_sandbox(monkeypatch, appointment_handlers, "update_appointment", update_appointment)
    assert_race_caught(run_kit(app, "concurrency"), "one booking wins", "no acknowledged write is lost")


def test_a_description_update_writing_back_a_stale_copy_is_caught(monkeypatch):
    original = appointment_handlers.update_appointment

    async def update_appointment(user, pd_appointment_uuid, body):
        if body.get("patient") is not None:
            await asyncio.sleep(YIELD / 4)  # awaits its store too, so either request can come first
            return await original(user, pd_appointment_uuid, body)
        scheduling = api_handlers.rules()
        slot = copy.deepcopy(scheduling.get_appointment(user, pd_appointment_uuid))
        await asyncio.sleep(YIELD)  # the bug: the whole record as read is written back (last writer wins)
        slot["description"] = body.get("description")
        _write(scheduling, user, slot)
        return api_handlers.one(slot_view(slot))

    cancel = appointment_handlers.cancel_appointment

    async def cancel_appointment(user, pd_appointment_uuid):
        await asyncio.sleep(YIELD / 4)
        return await cancel(user, pd_appointment_uuid)

    monkeypatch.setattr(appointment_handlers, "cancel_appointment", cancel_appointment)
    app = racy_sandbox(monkeypatch, appointment_handlers, "update_appointment", update_appointment)
    assert_race_caught(run_kit(app, "concurrency"), "no acknowledged write is lost")


def test_a_cancel_checked_then_written_across_an_await_is_caught(monkeypatch):
    async def cancel_appointment(user, pd_appointment_uuid):
        scheduling = api_handlers.rules()
        slot = copy.deepcopy(scheduling.get_appointment(user, pd_appointment_uuid))
        if not slot["booked"]:
            raise Conflict("not booked; nothing to cancel", "pd_appointment_uuid")
        await asyncio.sleep(YIELD)  # the bug: a second cancel passes the same check
        slot["booked"], slot["patient"] = False, None
        _write(scheduling, user, slot)
        return api_handlers.one(slot_view(slot))

    app = racy_sandbox(monkeypatch, appointment_handlers, "cancel_appointment", cancel_appointment)
    assert_race_caught(run_kit(app, "concurrency"), "one cancel wins", "no acknowledged write is lost")


def test_a_delete_checked_then_done_across_an_await_is_caught(monkeypatch):
    async def delete_slot(user, pd_appointment_uuid):
        scheduling = api_handlers.rules()
        slot = copy.deepcopy(scheduling.get_appointment(user, pd_appointment_uuid))
        if slot["booked"]:
            raise Conflict("booked; cancel first", "pd_appointment_uuid")
        await asyncio.sleep(YIELD)  # the bug: a booking can land before the slot is removed
        with scheduling._transaction(user) as tenant:
            tenant.remove("slots", slot["pd_appointment_uuid"])
        return api_handlers.one(slot_view(slot))

    booking = appointment_handlers.update_appointment

    async def update_appointment(user, pd_appointment_uuid, body):
        await asyncio.sleep(YIELD / 4)  # awaits its store too, so either request can come first
        return await booking(user, pd_appointment_uuid, body)

    monkeypatch.setattr(appointment_handlers, "update_appointment", update_appointment)
    app = racy_sandbox(monkeypatch, slot_handlers, "delete_slot", delete_slot)
    assert_race_caught(run_kit(app, "concurrency"), "a delete and a booking: one wins")


def test_an_overlap_checked_then_created_across_an_await_is_caught(monkeypatch):
    async def create_slot(user, body):
        scheduling = api_handlers.rules()
        start = parse_datetime(body["start_date"], "start_date")
        end = parse_datetime(body["end_date"], "end_date")
        with scheduling._transaction(user) as tenant:
            clash = Scheduling._overlapping_slot(tenant, body["pd_provider_uuid"].lower(), list(body["location"]),
                                                 start, end)
        if clash is not None:
            raise Conflict("overlaps another slot", "start_date")
        await asyncio.sleep(YIELD)  # the bug: the check and the insert are apart
        scheduling._overlapping_slot = lambda *args: None  # checked above
        try:
            slot = scheduling.create_slot(user, body["pd_provider_uuid"], body["location"], body["appointment_type"],
                                          body["start_date"], body["end_date"])
        finally:
            del scheduling._overlapping_slot
        return api_handlers.one(slot_view(slot))

    app = racy_sandbox(monkeypatch, slot_handlers, "create_slot", create_slot)
    assert_race_caught(run_kit(app, "concurrency"), "one of overlapping slots is created")


# -- writes that reach further than asked, refusals that still write, the overlap rule's edges ------

def test_a_cancel_cancelling_the_patients_other_bookings_is_caught(server, monkeypatch):
    def make(original):
        def cancel(self, tenant_id, pd_appointment_uuid):
            holder = self.get_appointment(tenant_id, pd_appointment_uuid)["patient"]
            slot = original(self, tenant_id, pd_appointment_uuid)
            with self._transaction(tenant_id) as tenant:  # the bug: every booking of the patient goes
                for other in tenant.slots_of_patient(holder["_uuid"]):
                    if other["pd_appointment_uuid"] != slot["pd_appointment_uuid"]:
                        tenant.replace("slots", {**other, "booked": False, "patient": None})
            return slot
        return cancel

    patch(monkeypatch, "cancel_appointment", make)
    assert_caught(run_model(server), "is missing", "booked False")


def test_a_deleted_slot_still_bookable_is_caught(server, monkeypatch):
    graveyard: dict = {}

    def make_delete(original):
        def delete_slot(self, tenant_id, pd_appointment_uuid):
            slot = original(self, tenant_id, pd_appointment_uuid)
            graveyard[pd_appointment_uuid.lower()] = copy.deepcopy(slot)
            return slot
        return delete_slot

    def make_update(original):
        def update(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
            try:
                return original(self, tenant_id, pd_appointment_uuid, patient, description)
            except NotFound:  # the bug: a soft-deleted slot still takes writes
                if pd_appointment_uuid.lower() not in graveyard:
                    raise
                slot = graveyard[pd_appointment_uuid.lower()]
                if patient is not None:
                    slot.update(booked=True, patient=_booking_patient(patient))
                if description is not None:
                    slot["description"] = description
                return slot
        return update

    patch(monkeypatch, "delete_slot", make_delete)
    patch(monkeypatch, "update_appointment", make_update)
    assert_caught(run_model(server), "a deleted slot is 404")


def test_touching_slots_refused_as_overlapping_are_caught(server, monkeypatch):
    original = Scheduling._overlapping_slot
    second = timedelta(seconds=1)

    def inclusive(tenant, provider_uuid, place, start, end):  # the bug: <= where < is meant
        return original(tenant, provider_uuid, place, start - second, end + second)

    monkeypatch.setattr(Scheduling, "_overlapping_slot", staticmethod(inclusive))
    assert_caught(run_model(server), "only touches another")


def test_an_overlap_refused_at_another_place_is_caught(server, monkeypatch):
    def anywhere(tenant, provider_uuid, place, start, end):  # the bug: the place is not compared
        for slot in tenant.slots_of_provider(provider_uuid, start - timedelta(days=1), end + timedelta(days=1)):
            if parse_datetime(slot["start_date"], "start_date") < end and start < parse_datetime(slot["end_date"],
                                                                                                 "end_date"):
                return slot
        return None

    monkeypatch.setattr(Scheduling, "_overlapping_slot", staticmethod(anywhere))
    assert_caught(run_model(server), "overlaps it at another place")


def test_a_refused_overlapping_slot_still_stored_is_caught(server, monkeypatch):
    def make(original):
        def create_slot(self, tenant_id, *args):
            try:
                return original(self, tenant_id, *args)
            except Conflict:  # the bug: answered 409, stored anyway
                self._overlapping_slot = lambda *ignored: None
                try:
                    original(self, tenant_id, *args)
                finally:
                    del self._overlapping_slot
                raise
        return create_slot

    patch(monkeypatch, "create_slot", make)
    # listed among the run's slots, or refusing a slot next to it (which it overlaps)
    assert_caught(run_model(server), "never created by the run", "only touches another")


def test_a_time_zone_offset_ignored_in_a_search_is_caught(server, monkeypatch):
    def local(text):  # the bug: 10:00+02:00 taken for 10:00 UTC
        return text.replace("Z", "").split("+")[0] if text else text

    original = Scheduling.slot_search

    def slot_search(self, start_date=None, end_date=None, **filters):
        return original(self, start_date=local(start_date), end_date=local(end_date), **filters)

    monkeypatch.setattr(Scheduling, "slot_search", slot_search)
    assert_caught(run_model(server), "start_date", "end_date", "is missing")


def test_a_distance_that_ignores_longitude_is_caught(server, monkeypatch):
    import pokitdok_sandbox.scheduling as scheduling_module

    real = geo.miles_from
    # the bug: the distance compares latitudes only (and every slot of the period is a candidate)
    monkeypatch.setattr(scheduling_module.geo, "miles_from",
                        lambda origin: (lambda b, miles=real((origin[0], 0.0)): miles((b[0], 0.0))))
    monkeypatch.setattr(TenantData, "search_candidates", lambda tenant, search: (
        tenant.slots_of_patient(search.patient) if search.patient
        else tenant.slots_starting_between(search.start, search.end)))
    assert_caught(run_model(server), "location radius", "is missing")


def test_a_calendar_written_back_whole_is_caught(monkeypatch):
    original = slot_handlers.create_slot

    def calendar(scheduling, user, body):
        start = parse_datetime(body["start_date"], "start_date")
        with scheduling._transaction(user) as tenant:
            return {s["pd_appointment_uuid"] for s in tenant.slots_of_provider(
                body["pd_provider_uuid"].lower(), start - timedelta(days=1), start + timedelta(days=1))}

    async def create_slot(user, body):
        scheduling = api_handlers.rules()
        as_read = calendar(scheduling, user, body)  # the provider's calendar, read
        await asyncio.sleep(YIELD)
        answer = await original(user, body)
        created = answer["data"]["pd_appointment_uuid"]
        with scheduling._transaction(user) as tenant:  # the bug: written back whole, as read plus the new slot
            for slot_uuid in calendar(scheduling, user, body) - as_read - {created}:
                tenant.remove("slots", slot_uuid)
        return answer

    app = racy_sandbox(monkeypatch, slot_handlers, "create_slot", create_slot)
    assert_race_caught(run_kit(app, "concurrency"), "no acknowledged write is lost")
