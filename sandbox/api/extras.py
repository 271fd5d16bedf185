"""Sandbox additions beyond the documented API: fault rules, the request journal, rate limits,
and views of the caller's data set for the console. Every one acts on the token's tenant only; those that
change something need the admin token when the server has one, like reset and seed.
"""

from .. import inspection
from ..context import current
from ..extras import SandboxExtras
from . import call, one
from .admin import _require_admin


def _extras() -> SandboxExtras:
    return current().extras


async def get_faults(user):
    return one(_extras().faults.view(user))


async def put_faults(user, body):
    _require_admin()
    return one(_extras().faults.replace(user, body))


async def clear_faults(user):
    _require_admin()
    return one(_extras().faults.clear(user))


async def get_journal(user, limit=None):
    return one(_extras().request_journal.view(user, limit))


async def clear_journal(user):
    _require_admin()
    _extras().request_journal.clear(user)
    return one(_extras().request_journal.view(user))


async def list_providers(user):
    return one(await call(inspection.providers, current().tenants, user))


async def list_slots(user, pd_provider_uuid=None, start_date=None, end_date=None, booked=None, limit=500):
    return one(await call(inspection.slots, current().tenants, user, pd_provider_uuid=pd_provider_uuid,
                          start_date=start_date, end_date=end_date, booked=booked, limit=limit))


async def get_rate_limit(user):
    return one(_extras().rate_limits.view(user))


async def put_rate_limit(user, body):
    _require_admin()
    return one(_extras().rate_limits.replace(user, body))


async def clear_rate_limit(user):
    _require_admin()
    return one(_extras().rate_limits.clear(user))
