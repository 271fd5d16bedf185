"""The kit's model-based suite catches what a server *does* wrong, not only what it says.

Each test breaks one behaviour of an otherwise correct sandbox (a monkeypatched rule: the HTTP
answers stay well-formed and schema-valid) and runs the kit's model-based suite against it
in-process, with a handful of short sequences. Each class of bug must be reported, with the
shortest failing sequence as a numbered shell script; the unbroken sandbox must pass.

One sandbox serves the whole module (each kit run works in a tenant of its own).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import timedelta

import pytest

from pokitdok_sandbox.contract_tests.options import KitOptions
from pokitdok_sandbox.contract_tests.runner import KitResult, run
from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.errors import Conflict, SandboxError
from pokitdok_sandbox.scheduling import Scheduling
from pokitdok_sandbox.timefmt import format_datetime, parse_datetime

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


@pytest.mark.parametrize("field, words", [
    (("start_date", "end_date"), ("start_date filter", "end_date filter", "start_date=", "end_date=")),
    (("appointment_type",), ("appointment_type=",)),
    (("radius",), ("location radius", "a matching record is missing")),
], ids=["dates", "type", "radius"])
def test_a_search_filter_ignored_is_caught(server, monkeypatch, field, words):
    patch(monkeypatch, "search", _search_with(
        lambda self, tenant, query, original: original(self, tenant, replace(query, **{f: None for f in field}))))
    assert_caught(run_model(server), *words)


def test_a_provider_filter_ignored_is_caught(server, monkeypatch):
    def any_provider(self, tenant, query, original):
        if query.pd_provider_uuid and not query.location:  # the bug: every provider's open slots near it
            found = original(self, tenant, replace(query, pd_provider_uuid="b691b7f9-bfa8-486d-a689-214ae47ea6f8"))
            return found
        return original(self, tenant, query)

    patch(monkeypatch, "search", _search_with(any_provider))
    assert_caught(run_model(server), "belongs to provider")


def test_a_patient_search_listing_another_patients_bookings_is_caught(server, monkeypatch):
    def everyones(self, tenant, query, original):
        if not query.patient_uuid:
            return original(self, tenant, query)
        mine = original(self, tenant, query)
        others = original(self, tenant, replace(query, patient_uuid="500ef469-2767-4901-b705-425e9b6f7f83"))
        others += original(self, tenant, replace(query, patient_uuid="2773f6ff-00cb-460f-823f-5ff2208511e7"))
        seen = {slot["pd_appointment_uuid"] for slot in mine}
        return mine + [slot for slot in others if slot["pd_appointment_uuid"] not in seen]

    patch(monkeypatch, "search", _search_with(everyones))
    assert_caught(run_model(server), "patient_uuid=")


def test_booked_slots_listed_as_open_are_caught(server, monkeypatch):
    def with_booked(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.patient_uuid:
            return found
        booked = []
        for patient in ("500ef469-2767-4901-b705-425e9b6f7f83", "2773f6ff-00cb-460f-823f-5ff2208511e7"):
            booked += original(self, tenant, replace(query, patient_uuid=patient, location=None, radius=None,
                                                       pd_provider_uuid=None))
        return sorted(found + booked, key=lambda slot: slot["start_date"])

    patch(monkeypatch, "search", _search_with(with_booked))
    assert_caught(run_model(server), "open slots only")


def test_an_exclusive_end_date_is_caught(server, monkeypatch):
    def exclusive(self, tenant, query, original):
        found = original(self, tenant, query)
        if query.end_date:  # the bug: a slot ending exactly at end_date is left out
            end = parse_datetime(query.end_date, "end_date")
            found = [slot for slot in found if parse_datetime(slot["end_date"], "end_date") < end]
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
        if query.pd_provider_uuid and not query.patient_uuid:  # the bug: a stale search index
            found = sorted(found + [s for s in graveyard if s["pd_provider_uuid"] == query.pd_provider_uuid.lower()],
                           key=lambda slot: slot["start_date"])
        return found

    patch(monkeypatch, "delete_slot", make_delete)
    patch(monkeypatch, "search", _search_with(haunted))
    assert_caught(run_model(server), "deleted by the run", "start_date filter", "end_date filter")


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
    from pokitdok_sandbox.scheduling import SlotQuery

    start = parse_datetime(slot["start_date"], "start_date")
    return SlotQuery(pd_provider_uuid=slot["pd_provider_uuid"], start_date=format_datetime(start - timedelta(days=2)),
                     end_date=format_datetime(start + timedelta(days=2)))


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
        lambda self, tenant, query, original: original(self, tenant, replace(query, start_date=None, end_date=None))))
    result = run(KitOptions(app=server, max_examples=EXAMPLES, seed=SEED),
                 keyword="properties and GET and appointments/]", quiet=True)
    assert not result.passed
    found = [f for f in result.findings if f.check == "search_results_match_the_query"]
    assert found and "breaks the filter" in found[0].expected, result.summary
