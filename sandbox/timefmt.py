"""ISO 8601 dates as the documentation writes them: UTC, no offset in answers."""

from __future__ import annotations

from datetime import datetime, timezone

from .errors import Unprocessable

EXAMPLE = "2026-12-07T09:00:00"


def parse_datetime(value: str, field: str) -> datetime:
    """Parse an ISO 8601 date-time (offset and fraction optional) to naive UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Unprocessable(f"{field} must be an ISO 8601 date-time such as {EXAMPLE}, not {value[:40]!r}",
                            field) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
        except OverflowError:
            raise Unprocessable(f"{field} {value[:40]!r} is out of range; send a date-time such as {EXAMPLE}",
                                field) from None
    return parsed


def format_datetime(value: datetime) -> str:
    """The documented answer form: `2014-12-16T15:09:34.197709` (no offset)."""
    return value.isoformat()

