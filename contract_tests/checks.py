"""The kit's checks on top of Schemathesis' built-in ones, registered with `@schemathesis.check`,
so every generated request (and every hand-written one the kit validates) goes through them.

Each is a no-op outside a kit run and on other schemas than the kit's.
"""

from __future__ import annotations

import schemathesis
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .model import Model, Query
from .oracle import APPOINTMENT, APPOINTMENTS, SLOT, documented_refusal
from .run import active


def _kit_case(case) -> bool:
    from .schema import is_kit_schema

    return active() is not None and is_kit_schema(case.operation.schema)


@schemathesis.check
def documented_positive_data_acceptance(ctx, response, case):
    """Schemathesis' positive_data_acceptance, except for requests breaking a rule the contract
    states in prose (a correct implementation refuses those)."""
    if not _kit_case(case) or documented_refusal(case) is not None:
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.check
def deleted_slot_is_gone(ctx, response, case):
    """After DELETE /schedule/slots/{id} succeeded, that id is unknown everywhere: 404 (or a 4xx
    about the request itself), never an answer as if the slot were still there."""
    if not _kit_case(case):
        return None
    run = active()
    value = str((case.path_parameters or {}).get("pd_appointment_uuid", "")).lower()
    if value not in run.deleted_slots or run.deleted_slots[value] == case.id:
        return None
    if case.operation.path not in (SLOT, APPOINTMENT):
        return None
    if 200 <= response.status_code < 300 or response.status_code == 409:  # answers as if it still existed
        raise AssertionError(f"slot {value} was deleted (DELETE /schedule/slots/{value} answered 2xx), so "
                             f"{case.method.upper()} {case.formatted_path} must answer 404, not {response.status_code}")
    return None


@schemathesis.check
def search_results_match_the_query(ctx, response, case):
    """Every result of a search satisfies every filter given (patient, open or booked, type, date
    window; provider and radius for the run's own records), and every record of the run's model
    that satisfies the filters is listed, as the model holds it."""
    if not _kit_case(case) or case.operation.label != f"GET {APPOINTMENTS}" or response.status_code != 200:
        return None
    query = Query.from_params(case.query)
    if query is None:
        return None
    run = active()
    try:
        items = run.wire.payload(response)
    except ValueError:
        return None  # not JSON: the conformance checks say so
    model = run.model if run.model is not None else Model()
    problems = model.check_search(query, items, complete=complete_answer(run, response, case.query))
    if problems:
        raise AssertionError("the search answer does not match its query "
                             f"({query.describe()}):\n" + "\n".join(problems[:12]))
    return None


def complete_answer(run, response, params) -> bool:
    """Whether a search answer lists every match (so a missing record is a violation)."""
    if not run.wire.paged:
        return True
    meta = run.wire.meta(response)
    try:
        items = run.wire.payload(response)
        offset = int((params or {}).get("offset") or 0)
    except (ValueError, TypeError):
        return False
    return offset == 0 and isinstance(items, list) and meta.get("count") == len(items)
