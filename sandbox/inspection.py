"""Read-only views of a tenant's data set that the documented API has no operation for.

The documented API lists open slots of a provider or near a place, and the bookings
of one patient; it has no way to list providers, or every slot with its bookings.
The sandbox console needs both (GET /api/v4/sandbox/providers and /sandbox/slots).
Reading only: no rule lives here.
"""

from __future__ import annotations

from .tenants import Tenants
from .timefmt import parse_datetime
from .views import slot_view

_PROVIDER_FIELDS = ("pd_provider_uuid", "name", "specialty", "scheduler_uuid", "provider_scheduler_uuid",
                    "locations")


def providers(tenants: Tenants, tenant_id: str) -> list[dict]:
    """The tenant's providers with their office locations, by name."""
    with tenants.transaction(tenant_id) as tenant:
        records = tenant.all("providers")
    views = [{name: record[name] for name in _PROVIDER_FIELDS if name in record} for record in records]
    return sorted(views, key=lambda p: (p.get("name", ""), p["pd_provider_uuid"]))


def slots(tenants: Tenants, tenant_id: str, *, pd_provider_uuid: str | None = None,
          start_date: str | None = None, end_date: str | None = None, booked: bool | None = None,
          limit: int = 500) -> dict:
    """Every slot, open or booked, starting in [start_date, end_date], by start date.

    Answers the `limit` first and how many matched in all.
    """
    low = parse_datetime(start_date, "start_date") if start_date else None
    high = parse_datetime(end_date, "end_date") if end_date else None
    provider = pd_provider_uuid.lower() if pd_provider_uuid else None

    def wanted(slot: dict) -> bool:
        start = parse_datetime(slot["start_date"], "start_date")
        return ((provider is None or slot["pd_provider_uuid"].lower() == provider)
                and (booked is None or bool(slot["booked"]) == booked)
                and (low is None or start >= low)
                and (high is None or start <= high))

    with tenants.transaction(tenant_id) as tenant:
        candidates = (tenant.slots_of_provider(provider, low, high) if provider is not None
                      else tenant.slots_starting_between(low, high))
    found = [slot for slot in candidates if wanted(slot)]
    found.sort(key=lambda s: (s["start_date"], s["pd_appointment_uuid"]))
    return {"total": len(found), "slots": [slot_view(slot, whereabouts=True) for slot in found[:limit]]}

