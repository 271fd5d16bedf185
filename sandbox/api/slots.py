"""Open slots: create and delete (business_schedule scope)."""

from ..views import slot_view
from . import call, one, rules


async def create_slot(user, body):
    slot = await call(rules().create_slot, user, body["pd_provider_uuid"], body["location"], body["appointment_type"],
                               body["start_date"], body["end_date"])
    return one(slot_view(slot))


async def delete_slot(user, pd_appointment_uuid):
    return one(slot_view(await call(rules().delete_slot, user, pd_appointment_uuid)))
