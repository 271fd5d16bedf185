"""The contract's paths and how it reads dates: `parse_datetime` (any ISO 8601 form a request
may use, as naive UTC) and `written` (a moment in the forms the kit sends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

SLOTS = "/schedule/slots/"
SLOT = "/schedule/slots/{pd_appointment_uuid}"
APPOINTMENTS = "/schedule/appointments/"
APPOINTMENT = "/schedule/appointments/{pd_appointment_uuid}"
PATIENTS = "/schedule/patient/"
TOKEN_PATH = "/oauth2/token"
SEARCH_KEYS = ("patient_uuid", "pd_provider_uuid", "location")


def parse_datetime(value) -> datetime | None:
    """An ISO 8601 date-time as naive UTC, or None if it names no real moment."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return moment


def written(moment: datetime, offset_hours: int | None = None) -> str:
    """`moment` (naive UTC) as request text: naive (None), with `Z` (0), or as the same instant at
    another whole-hour offset (`+02:00`, `-05:00`)."""
    if offset_hours is None:
        return moment.isoformat()
    if offset_hours == 0:
        return moment.isoformat() + "Z"
    local = moment + timedelta(hours=offset_hours)
    sign = "+" if offset_hours > 0 else "-"
    return f"{local.isoformat()}{sign}{abs(offset_hours):02d}:00"
