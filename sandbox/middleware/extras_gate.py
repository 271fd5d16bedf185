"""After the token check, before the request is read: the extras that may answer instead of the
operation, for the platform's operations only (sandbox administration is never limited or faulted,
so a limit or a rule can always be changed).

* the tenant's rate limit (`rate_limiting.py`): counted, refused past the cap;
* then faults (`fault_injection.py`): the request's fault headers, else the tenant's rules.
"""

from __future__ import annotations

from ..extras import SandboxExtras
from ..request_facts import TOKEN_OPERATION, RequestFacts
from . import fault_injection, rate_limiting


async def answered(extras: SandboxExtras, facts: RequestFacts, scope, send) -> bool:
    """Whether the extras answered the request (then the operation is not called)."""
    if facts.tenant and facts.operation != TOKEN_OPERATION \
            and await rate_limiting.refused(extras.rate_limits, facts, scope, send):
        return True
    return await fault_injection.answered(extras.faults, facts, scope, send)
