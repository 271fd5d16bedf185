"""Schedulers and appointment types: read-only, any valid token."""

from . import one, page, rules


async def list_schedulers(user, limit=None, offset=None):
    return page(rules().list_schedulers(user), limit, offset)


async def get_scheduler(user, scheduler_uuid):
    return one([rules().get_scheduler(user, scheduler_uuid)])


async def list_appointment_types(user, limit=None, offset=None):
    return page(rules().list_appointment_types(user), limit, offset)


async def get_appointment_type(user, appointment_type_uuid):
    return one([rules().get_appointment_type(user, appointment_type_uuid)])
