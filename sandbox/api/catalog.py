"""Schedulers and appointment types: read-only, any valid token."""

from . import rules


async def list_schedulers(user):
    return rules().list_schedulers(user)


async def get_scheduler(user, scheduler_uuid):
    return [rules().get_scheduler(user, scheduler_uuid)]


async def list_appointment_types(user):
    return rules().list_appointment_types(user)


async def get_appointment_type(user, appointment_type_uuid):
    return [rules().get_appointment_type(user, appointment_type_uuid)]
