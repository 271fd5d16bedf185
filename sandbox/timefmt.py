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
    """How records keep a date-time (no offset; `isoformat`'s, which the stores' indexes compare as text)."""
    return value.isoformat()


def answer_form(text: str) -> str:
    """A kept date-time as every answer writes it: six fractional digits, whatever precision it was
    given in (`2015-02-05T00:00:00` -> `2015-02-05T00:00:00.000000`), as the documentation's
    `YYYY-MM-DDThh:mm:ss.ssssss` and every recording of the platform have it."""
    whole, dot, fraction = text.partition(".")
    if len(fraction) == 6:
        return text
    return f"{whole}.{(fraction + '000000')[:6]}" if dot or len(whole) == 19 else text

