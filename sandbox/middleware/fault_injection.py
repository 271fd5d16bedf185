"""Applies fault headers and each tenant's fault rules (`sandbox/extras/fault_rules.py`) to requests.

Applied by `extras_gate.answered`, after the pipeline's routing and token check (it knows the
operation and the tenant) and before the request is read (a fault answers whatever the body
holds, as a failing gateway would). Only the platform's operations and the token endpoint are
faulted. Handlers never see it.
"""

from __future__ import annotations

import asyncio

from .. import answers
from ..errors import SandboxError
from ..extras.fault_rules import FAULT_HEADER, FAULT_STATUSES, RETRY_AFTER, FaultRules, fault_from_headers
from ..request_facts import TOKEN_OPERATION, RequestFacts


async def answered(rules: FaultRules, facts: RequestFacts, scope, send) -> bool:
    """Apply the request's fault, if any: wait its delay, then answer its status and say so
    (False: the request goes on, delayed or not)."""
    try:
        fault = fault_from_headers(dict(scope.get("headers", ())))
    except SandboxError as refused:
        await answers.send(scope, send, refused)
        return True
    if fault is None and facts.tenant and facts.operation != TOKEN_OPERATION:
        fault = rules.decide(facts.tenant, facts.operation)
    if fault is None:
        return False
    if fault.delay_ms:
        await asyncio.sleep(fault.delay_ms / 1000)
    if fault.status is None:
        facts.fault = f"delayed {fault.delay_ms:g} ms by {fault.reason}"
        return False
    delayed = f" after {fault.delay_ms:g} ms" if fault.delay_ms else ""
    facts.fault = f"{fault.status} injected by {fault.reason}{delayed}"
    retry_after = RETRY_AFTER.get(fault.status)
    await answers.send(scope, send, SandboxError(
        fault.status, f"fault injected by the sandbox ({fault.reason})",
        FAULT_HEADER if fault.reason.startswith(FAULT_HEADER) else None, FAULT_STATUSES[fault.status],
        {"Retry-After": retry_after} if retry_after else None))
    return True
