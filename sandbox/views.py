"""A slot as answers show it: one view, for the documented API (`api/`) and the console's
read-only views (`inspection.py`)."""

from __future__ import annotations

from .scheduling import status_of
from .timefmt import answer_form

# Fields of a slot the documentation shows; the provider and the place stay inside, except in
# the console's listing of every slot (`whereabouts`).
_SLOT_FIELDS = ("pd_appointment_uuid", "appointment_id", "appointment_type", "booked",
                "provider_scheduler_uuid", "start_date", "end_date")
_WHEREABOUTS = ("pd_provider_uuid", "location")


def slot_view(slot: dict, whereabouts: bool = False) -> dict:
    """A slot or appointment as the documentation shows it: the seed's fields (`booked`, the patient's
    `_uuid`) and the final documentation's (`status`, the patient's `uuid`), date-times with six
    fractional digits. `whereabouts`: also whose (`pd_provider_uuid`) and where (`location`)."""
    view = {name: slot[name] for name in _SLOT_FIELDS}
    view["start_date"] = answer_form(view["start_date"])
    view["end_date"] = answer_form(view["end_date"])
    view["status"] = status_of(slot)
    if slot.get("patient"):
        view["patient"] = {**slot["patient"], "uuid": slot["patient"]["_uuid"]}
    if slot.get("description") is not None:
        view["description"] = slot["description"]
    if whereabouts:
        view.update((name, slot[name]) for name in _WHEREABOUTS)
    return view
