"""Counts each tenant's requests to the platform's operations (`sandbox/extras/rate_limits.py`) and
refuses them past the cap, as the platform did: `403 {"message": "Forbidden"}` with a `Retry-After`.

Applied by `extras_gate.answered`, after the token check (the tenant is known), before validation.
"""

from __future__ import annotations

from .. import answers
from ..errors import SandboxError
from ..extras.rate_limits import RateLimits
from ..request_facts import RequestFacts


async def refused(limits: RateLimits, facts: RequestFacts, scope, send) -> bool:
    """Count the request; past the cap, answer the refusal and say so."""
    counted = limits.count(facts.tenant)
    if counted is None:
        return False
    facts.rate, exceeded = counted
    if not exceeded:
        return False
    wait = max(facts.rate.reset - int(limits.clock()), 1)
    period = limits.limit_of(facts.tenant).period
    await answers.send(scope, send, SandboxError(
        403, f"the rate limit of {facts.rate.cap} requests per {period} is used up; it resets at "
             f"{facts.rate.reset} (Unix time), in {wait} s", code="rate_limit_exceeded",
        headers={"Retry-After": str(wait)}))
    return True
