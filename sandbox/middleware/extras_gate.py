"""After Connexion's token check, before its validation: the extras that may answer instead of the
operation, for the platform's operations only (sandbox administration is never limited or faulted,
so a limit or a rule can always be changed).

* the tenant's rate limit (`rate_limiting.py`): counted, refused past the cap;
* then faults (`fault_injection.py`): the request's fault headers, else the tenant's rules.

One layer for both, and nothing to do for a request that is not one of the platform's
operations.
"""

from __future__ import annotations

from ..extras import SandboxExtras
from ..request_facts import TOKEN_OPERATION, facts_of
from . import fault_injection, rate_limiting


class ExtrasGate:
    def __init__(self, app, extras: SandboxExtras):
        self.app = app
        self.extras = extras

    async def __call__(self, scope, receive, send):
        facts = facts_of(scope) if scope["type"] == "http" else None
        if facts is None or not facts.documented:
            await self.app(scope, receive, send)
            return
        if facts.tenant and facts.operation != TOKEN_OPERATION \
                and await rate_limiting.refused(self.extras.rate_limits, facts, scope, send):
            return
        if await fault_injection.answered(self.extras.faults, facts, scope, send):
            return
        await self.app(scope, receive, send)
