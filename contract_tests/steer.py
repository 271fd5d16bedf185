"""Steering generated requests towards data that exists, and guarding data the run does not own.

* `steer(case)`: half of the valid slot creations use the kit's provider, type, location and a
  fresh far-future time (so they succeed and the stateful scenarios can follow the links from
  them); half of the searches without a selector get the kit's provider.
* `guard(case)`: generated requests never change records the run did not create, and never
  register random OAuth clients on the target.
* `remember(case, response)`: the slots generated requests create (removed at the end) or delete.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from hypothesis import strategies as st
from schemathesis import GenerationMode

from .oracle import APPOINTMENTS, SEARCH_KEYS, SLOT, SLOTS, TOKEN_PATH
from .run import active

_UUID_IN_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def steer(case):
    run = active()
    label = case.operation.label
    positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
    if run is None or not positive:
        return st.just(case)
    # Steered cases are copies: Schemathesis may hand the same generated case out again, and a
    # replayed scenario must not find another scenario's slot time in it (a 409 instead of a 201).
    if label == f"POST {SLOTS}" and isinstance(case.body, dict):
        def bookable(_):
            steered = case.derive(keep_auth=True)
            steered.body = {**case.body, **run.target.slot_body()}
            return steered
        return st.one_of(st.just(case), st.just(None).map(bookable))
    query = case.query or {}
    if label == f"GET {APPOINTMENTS}" and not any(query.get(key) for key in SEARCH_KEYS):
        def searchable(_):
            return case.derive(query={**query, "pd_provider_uuid": run.options.provider_uuid}, keep_auth=True)
        return st.one_of(st.just(case), st.just(None).map(searchable))
    if label == f"POST {TOKEN_PATH}" and isinstance(case.body, dict) and "client_id" in case.body:
        # Never register random clients on the target: generated credentials become the run's own.
        tenant = run.target.main
        case.body = {**case.body, "client_id": tenant.client_id, "client_secret": tenant.client_secret}
    return st.just(case)


def guard(case) -> None:
    """Generated ids are random (see schema.py), so only the documented records' ids need
    stopping: on a shared target they are other users' fixtures, and anywhere a cancelled
    documented booking would answer its replay differently. (Changing a path parameter here is
    rare on purpose: Schemathesis takes a changed parameter for a link value.)"""
    run = active()
    if run is None:
        return
    method = case.method.upper()
    params = case.path_parameters or {}
    value = params.get("pd_appointment_uuid")
    if method in ("PUT", "DELETE") and isinstance(value, str) and value.lower() in documented_ids(run.options.spec) \
            and not run.target.owns(value):
        case.path_parameters = {**params, "pd_appointment_uuid": run.target.unknown_uuid()}
    body = case.body if isinstance(case.body, dict) else None
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if (method == "POST" and case.operation.path == SLOTS and body is not None and positive
            and str(body.get("pd_provider_uuid", "")).lower() == run.options.provider_uuid.lower()
            and body.get("start_date") not in run.target.issued_starts):
        # A slot for the kit's provider always gets a fresh far-future time: a fixed one (the
        # contract's example) would clash with itself when a scenario is replayed, and on a
        # shared target with other users' slots (and with the model's records).
        fresh = run.target.slot_body()
        case.body = {**body, "start_date": fresh["start_date"], "end_date": fresh["end_date"]}
    if case.operation.path == TOKEN_PATH and body is not None and "client_id" in body:
        tenant = run.target.main
        case.body = {**body, "client_id": tenant.client_id, "client_secret": tenant.client_secret}


@functools.cache
def documented_ids(spec: Path) -> frozenset[str]:
    """Every uuid the contract or the documentation names: the records shared fixtures hold."""
    from .options import SEED_DOC

    text = Path(spec).read_text(encoding="utf-8") + SEED_DOC.read_text(encoding="utf-8")
    return frozenset(match.lower() for match in _UUID_IN_TEXT.findall(text))


def remember(case, response) -> None:
    run = active()
    if run is None:
        return
    if case.operation.path == SLOT and case.method.upper() == "DELETE" and 200 <= response.status_code < 300:
        run.deleted_slots.setdefault(str((case.path_parameters or {}).get("pd_appointment_uuid", "")).lower(), case.id)
    if case.operation.path != SLOTS or case.method.upper() != "POST" or not 200 <= response.status_code < 300:
        return
    try:
        slot = run.wire.payload(response)
    except ValueError:
        return
    if isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
        run.target.record_slot(run.target.main, slot["pd_appointment_uuid"])
