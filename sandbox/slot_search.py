"""What a search of GET /schedule/appointments/ asks for, in one shape from the handler to the store.

The rules build it from the request once (`Scheduling.slot_search`, which checks and parses every
filter); the rules filter and page with it, and the stores read what their indexes need from it
(`TenantData.search_candidates`, `TenantData.open_slots_page`). A new filter is a field here.
No imports from the rest of the sandbox: the stores and the rules both read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SlotSearch:
    """A search's filters, checked and parsed; None (or False) is no filter."""

    patient: str | None = None  # lower-case uuid: this patient's booked appointments
    provider: str | None = None  # lower-case uuid
    origin: tuple[float, float] | None = None  # (latitude, longitude): slots within `radius` of it
    radius: float = 10.0  # miles, with `origin`
    appointment_type: str | None = None  # a type code, compared as given
    start: datetime | None = None  # naive UTC: the slot starts at or after it
    end: datetime | None = None  # naive UTC: the slot ends at or before it
    # The provider's calendar (open, booked and completed) rather than open slots only.
    calendar: bool = False

    @property
    def open_slots_of_provider(self) -> bool:
        """A provider's open slots, wherever they are: a store may page these itself
        (`TenantData.open_slots_page`)."""
        return self.provider is not None and self.patient is None and self.origin is None and not self.calendar
