"""Rate limits the way the platform had them, so client developers can rehearse them.

Off by default. A server-wide limit (`serve --rate-limit 1000/hour`) applies to every tenant;
a tenant may set its own with `PUT /api/v4/sandbox/rate-limit` (or lift it with DELETE, back to
the server's). Requests to documented operations are counted per tenant in fixed windows that
start on the period's boundary (the platform's were hourly); past the cap the answer is the
platform's `403 {"message": "Forbidden"}` (with `error: rate_limit_exceeded` and a `Retry-After`),
and every answer in the meantime carries `meta.rate_limit_amount`, `rate_limit_cap` and
`rate_limit_reset`. Sandbox administration is never counted, so a limit can always be changed.

Counts are kept in memory by each server process (with `serve --workers N`, per worker).
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from ..errors import Unprocessable
from ..request_facts import RateWindow

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"^\s*(?P<cap>[0-9]{1,9})\s*/\s*(?P<period>second|minute|hour|day)\s*$")


@dataclass(frozen=True)
class Limit:
    cap: int
    period: str

    @property
    def seconds(self) -> int:
        return PERIODS[self.period]

    def view(self) -> dict:
        return {"cap": self.cap, "period": self.period}


def parse_limit(text: str | None, field: str = "rate_limit") -> Limit | None:
    """`1000/hour` -> Limit(1000, "hour"); empty or `off` -> None."""
    if text is None or text.strip().lower() in ("", "off", "none"):
        return None
    match = _LIMIT.match(text)
    if match is None or int(match["cap"]) < 1:
        raise Unprocessable(f"{field} must look like 1000/hour (a count per second, minute, hour or day), "
                            f"not {text[:40]!r}", field)
    return Limit(int(match["cap"]), match["period"])


class RateLimits:
    """The server's limit, each tenant's own, and each tenant's count in its current window."""

    def __init__(self, server_limit: str | None = None, clock=time.time):
        self.server_limit = parse_limit(server_limit)
        self.clock = clock
        self._lock = threading.Lock()
        self._tenant_limits: dict[str, Limit | None] = {}
        self._counts: dict[str, tuple[int, int]] = {}  # tenant -> (window start, requests counted)

    def limit_of(self, tenant_id: str) -> Limit | None:
        return self._tenant_limits.get(tenant_id, self.server_limit)

    def view(self, tenant_id: str) -> dict:
        limit = self.limit_of(tenant_id)
        with self._lock:
            start, amount = self._counts.get(tenant_id, (0, 0))
        current = limit is not None and start == self._window_start(limit)
        return {
            "limit": limit.view() if limit else None,
            "source": "tenant" if tenant_id in self._tenant_limits else "server",
            "amount": min(amount, limit.cap) if current else 0,
            "reset": self._window_start(limit) + limit.seconds if limit else None,
        }

    def replace(self, tenant_id: str, body: dict) -> dict:
        """Set the tenant's own limit ({"cap": 100, "period": "minute"}; {"cap": null} for none)."""
        cap = body.get("cap")
        with self._lock:
            self._tenant_limits[tenant_id] = Limit(cap, body.get("period", "hour")) if cap is not None else None
            self._counts.pop(tenant_id, None)
        return self.view(tenant_id)

    def clear(self, tenant_id: str) -> dict:
        """Back to the server's limit, with a fresh count."""
        with self._lock:
            self._tenant_limits.pop(tenant_id, None)
            self._counts.pop(tenant_id, None)
        return self.view(tenant_id)

    def count(self, tenant_id: str) -> tuple[RateWindow, bool] | None:
        """Count one request of the tenant: its window, and whether it is over the cap (None: no limit)."""
        limit = self.limit_of(tenant_id)
        if limit is None:
            return None
        start = self._window_start(limit)
        with self._lock:
            window_start, amount = self._counts.get(tenant_id, (start, 0))
            amount = amount + 1 if window_start == start else 1
            self._counts[tenant_id] = (start, amount)
        return RateWindow(amount=min(amount, limit.cap), cap=limit.cap, reset=start + limit.seconds), \
            amount > limit.cap

    def _window_start(self, limit: Limit) -> int:
        now = int(self.clock())
        return now - now % limit.seconds
