"""Schedulers and appointment types: read-only, any valid token."""

from . import rules


def list_schedulers(user):
    return rules().list_schedulers(user)


def get_scheduler(user, scheduler_uuid):
    return [rules().get_scheduler(user, scheduler_uuid)]


def list_appointment_types(user):
    return rules().list_appointment_types(user)


def get_appointment_type(user, appointment_type_uuid):
    return [rules().get_appointment_type(user, appointment_type_uuid)]
