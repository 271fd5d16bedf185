"""Query, book, update, complete and cancel appointments (user_schedule scope; a search also with
business_schedule alone, by provider or location: the provider's calendar)."""

from ..envelope import DEFAULT_LIMIT
from ..views import slot_view
from . import call, heavy_call, one, page_of, rules


async def search_appointments(user, token_info=None, appointment_type=None, start_date=None, end_date=None,
                              patient_uuid=None, pd_provider_uuid=None, location=None, radius=None, limit=None,
                              offset=None):
    scopes = (token_info or {}).get("scope") or ()
    search = rules().slot_search(patient_uuid=patient_uuid, pd_provider_uuid=pd_provider_uuid, location=location,
                                 radius=radius, appointment_type=appointment_type, start_date=start_date,
                                 end_date=end_date, calendar="user_schedule" not in scopes)
    limit, offset = DEFAULT_LIMIT if limit is None else limit, offset or 0
    if search.origin is not None:  # may read every slot of the tenant
        count, found = await heavy_call(user, rules().search_page, user, search, limit, offset)
    else:
        count, found = await call(rules().search_page, user, search, limit, offset)
    return page_of([slot_view(slot) for slot in found], count, limit, offset)


async def get_appointment(user, pd_appointment_uuid):
    return one([slot_view(await call(rules().get_appointment, user, pd_appointment_uuid))])


async def update_appointment(user, pd_appointment_uuid, body):
    # `mark_completed: true` (or the documentation's {string} "true"); false asks for nothing.
    completing = {"mark_completed": True} if body.get("mark_completed") in (True, "true") else {}
    slot = await call(rules().update_appointment, user, pd_appointment_uuid, body.get("patient"),
                      body.get("description"), **completing)
    return one(slot_view(slot))


async def cancel_appointment(user, pd_appointment_uuid):
    return one(slot_view(await call(rules().cancel_appointment, user, pd_appointment_uuid)))
