"""Which handler answers each operation of the contract (openapi.yaml names operations by plain
operationIds; this table maps them to code): operationId -> (module, function name), looked up
when an app is made (`resolve`), so a test may replace a handler in its module before that."""

from __future__ import annotations

from . import activities, admin, appointments, catalog, extras, patients, slots, token

HANDLERS = {
    # the platform's operations
    "list_schedulers": (catalog, "list_schedulers"),
    "get_scheduler": (catalog, "get_scheduler"),
    "list_appointment_types": (catalog, "list_appointment_types"),
    "get_appointment_type": (catalog, "get_appointment_type"),
    "register_patient": (patients, "register_patient"),
    "create_slot": (slots, "create_slot"),
    "delete_slot": (slots, "delete_slot"),
    "search_appointments": (appointments, "search_appointments"),
    "get_appointment": (appointments, "get_appointment"),
    "update_appointment": (appointments, "update_appointment"),
    "cancel_appointment": (appointments, "cancel_appointment"),
    "list_activities": (activities, "list_activities"),
    "get_activity": (activities, "get_activity"),
    "update_activity": (activities, "update_activity"),
    "issue_token": (token, "token"),  # the request itself: the token endpoint reads its form
    # sandbox administration
    "reset_tenant": (admin, "reset_tenant"),
    "seed_tenant": (admin, "seed_tenant"),
    "get_dataset": (admin, "get_dataset"),
    "export_tenant": (admin, "export_tenant"),
    "get_faults": (extras, "get_faults"),
    "put_faults": (extras, "put_faults"),
    "clear_faults": (extras, "clear_faults"),
    "get_journal": (extras, "get_journal"),
    "clear_journal": (extras, "clear_journal"),
    "list_providers": (extras, "list_providers"),
    "list_slots": (extras, "list_slots"),
    "get_rate_limit": (extras, "get_rate_limit"),
    "put_rate_limit": (extras, "put_rate_limit"),
    "clear_rate_limit": (extras, "clear_rate_limit"),
}


def resolve(operation_id: str):
    """The handler of an operation (KeyError: the contract names one this table lacks)."""
    module, name = HANDLERS[operation_id]
    return getattr(module, name)


def resolved() -> dict:
    """operationId -> its handler, as the modules hold them now."""
    return {operation_id: resolve(operation_id) for operation_id in HANDLERS}
