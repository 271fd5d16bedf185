"""Open slots: create and delete (business_schedule scope)."""

from . import rules, slot_view


async def create_slot(user, body):
    slot = rules().create_slot(user, body["pd_provider_uuid"], body["location"], body["appointment_type"],
                               body["start_date"], body["end_date"])
    return slot_view(slot), 201


async def delete_slot(user, pd_appointment_uuid):
    return slot_view(rules().delete_slot(user, pd_appointment_uuid))
