"""Counts each tenant's requests to the platform's operations (`sandbox/extras/rate_limits.py`) and
refuses them past the cap, as the platform did: `403 {"message": "Forbidden"}` with a `Retry-After`.

After the token check (the tenant is known), before validation.
"""

from __future__ import annotations

from ..errors import send_error
from ..extras.rate_limits import RateLimits
from ..request_facts import TOKEN_OPERATION, facts_of


class RateLimiter:
    def __init__(self, app, limits: RateLimits):
        self.app = app
        self.limits = limits

    async def __call__(self, scope, receive, send):
        facts = facts_of(scope) if scope["type"] == "http" else None
        if facts is not None and facts.documented and facts.tenant and facts.operation != TOKEN_OPERATION:
            counted = self.limits.count(facts.tenant)
            if counted is not None:
                facts.rate, exceeded = counted
                if exceeded:
                    wait = max(facts.rate.reset - int(self.limits.clock()), 1)
                    period = self.limits.limit_of(facts.tenant).period
                    await send_error(scope, send, 403, f"the rate limit of {facts.rate.cap} requests per {period} "
                                     f"is used up; it resets at {facts.rate.reset} (Unix time), in {wait} s",
                                     code="rate_limit_exceeded", headers=((b"retry-after", str(wait).encode()),))
                    return
        await self.app(scope, receive, send)
