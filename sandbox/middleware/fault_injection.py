"""Applies fault headers and each tenant's fault rules (`sandbox/extras/fault_rules.py`) to requests.

Placed after Connexion's routing and token check (it knows the operation and the tenant)
and before request validation (a fault answers whatever the body holds, as a failing gateway
would). Only the platform's operations and the token endpoint are faulted. Handlers never see it.
"""

from __future__ import annotations

import asyncio

from ..errors import SandboxError, send_error
from ..extras.fault_rules import FAULT_HEADER, FAULT_STATUSES, RETRY_AFTER, FaultRules, fault_from_headers
from ..request_facts import TOKEN_OPERATION, facts_of


class FaultInjector:
    def __init__(self, app, rules: FaultRules):
        self.app = app
        self.rules = rules

    async def __call__(self, scope, receive, send):
        facts = facts_of(scope) if scope["type"] == "http" else None
        if facts is None or not facts.documented:
            await self.app(scope, receive, send)
            return
        try:
            fault = fault_from_headers(dict(scope.get("headers", ())))
        except SandboxError as refused:
            await send_error(scope, send, refused.status, refused.message, refused.field, refused.code)
            return
        if fault is None and facts.tenant and facts.operation != TOKEN_OPERATION:
            fault = self.rules.decide(facts.tenant, facts.operation)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status is None:
            facts.fault = f"delayed {fault.delay_ms:g} ms by {fault.reason}"
            await self.app(scope, receive, send)
            return
        delayed = f" after {fault.delay_ms:g} ms" if fault.delay_ms else ""
        facts.fault = f"{fault.status} injected by {fault.reason}{delayed}"
        retry_after = RETRY_AFTER.get(fault.status)
        await send_error(scope, send, fault.status, f"fault injected by the sandbox ({fault.reason})",
                         FAULT_HEADER if fault.reason.startswith(FAULT_HEADER) else None,
                         FAULT_STATUSES[fault.status],
                         ((b"retry-after", retry_after.encode()),) if retry_after else ())
