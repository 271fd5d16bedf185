"""Fault and latency injection, so a client's tests can rehearse outages deterministically.

Two ways to ask for a fault, both sandbox additions (the `sandbox` tag in openapi.yaml):

* per request, with headers on any documented operation (and on /oauth2/token):
    X-Sandbox-Fault: 503     answer that status in the Error shape; nothing is changed
    X-Sandbox-Delay: 250ms   wait that long (`ms` or `s`, at most 30 s), then go on normally
  Both together: a slow failure (wait, then fail). Invalid values are a 400.
* per tenant, with rules set through PUT /api/v4/sandbox/faults:
    {"seed": 1, "rules": [{"operation": "update_appointment", "status": 503, "rate": 0.2}]}
  For each request to a documented operation the rules for that operation (or "*")
  are tried in order: each draws one number from the tenant's random generator,
  seeded by `seed`, and *hits* when it is below `rate`; the first hit decides. A hit
  waits `delay_ms`, then answers `status` (or, without a status, goes on normally).
  After `times` hits a rule is spent and draws no more. The same seed and the same
  sequence of requests give the same faults. A request with fault headers leaves the
  rules (and their random sequence) alone.

Sandbox administration (/api/v4/sandbox/...) is never faulted, so rules can always be
cleared. This module keeps the rules and decides; `sandbox/middleware/fault_injection.py`
applies the decision to requests.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass

from ..errors import SandboxError

FAULT_HEADER = "X-Sandbox-Fault"
DELAY_HEADER = "X-Sandbox-Delay"
# The statuses a client can ask for: those retry policies usually act on (urllib3's
# status_forcelist is 500, 502, 503, 504) and rate limiting.
FAULT_STATUSES = {
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}
# 429 and 503 answers say when to try again (RFC 9110 section 10.2.3), in seconds.
RETRY_AFTER = {429: "1", 503: "1"}
MAX_DELAY_MS = 30_000
MAX_RULES = 50
_DURATION = re.compile(r"^([0-9]{1,9}(?:\.[0-9]{1,3})?)(ms|s)$")  # as the SandboxDelay parameter says


# -- per-request headers ----------------------------------------------------------

def parse_fault_header(value: str) -> int:
    text = value.strip()
    if not text.isdigit() or int(text) not in FAULT_STATUSES:
        allowed = ", ".join(map(str, FAULT_STATUSES))
        raise SandboxError(422, f"{FAULT_HEADER} must be one of {allowed}, not {value!r}", FAULT_HEADER)
    return int(text)


def parse_delay_header(value: str) -> float:
    """A duration such as `2s`, `1.5s` or `250ms`, in milliseconds."""
    match = _DURATION.match(value.strip())
    if not match:
        raise SandboxError(422, f"{DELAY_HEADER} must be a duration such as 250ms or 2s, not {value!r}",
                           DELAY_HEADER)
    amount, unit = float(match[1]), match[2]
    delay_ms = amount * 1000 if unit == "s" else amount
    if delay_ms > MAX_DELAY_MS:
        raise SandboxError(422, f"{DELAY_HEADER} is at most {MAX_DELAY_MS // 1000}s, not {value!r}", DELAY_HEADER)
    return delay_ms


@dataclass(frozen=True)
class Fault:
    """What happens to one request: wait `delay_ms`, then answer `status` (None: go on)."""

    status: int | None
    delay_ms: float
    reason: str


def fault_from_headers(headers: dict[bytes, bytes]) -> Fault | None:
    fault = headers.get(FAULT_HEADER.lower().encode())
    delay = headers.get(DELAY_HEADER.lower().encode())
    if fault is None and delay is None:
        return None
    status = parse_fault_header(fault.decode("latin-1")) if fault is not None else None
    delay_ms = parse_delay_header(delay.decode("latin-1")) if delay is not None else 0.0
    parts = ([f"{FAULT_HEADER}: {status}"] if status is not None else []) + \
            ([f"{DELAY_HEADER}: {delay.decode('latin-1').strip()}"] if delay is not None else [])
    return Fault(status, delay_ms, " and ".join(parts))


# -- per-tenant rules ------------------------------------------------------------

@dataclass
class _Rule:
    operation: str
    status: int | None
    rate: float
    delay_ms: int
    times: int | None
    hits: int = 0

    def armed(self) -> bool:
        return self.times is None or self.hits < self.times

    def view(self) -> dict:
        return {"operation": self.operation, "status": self.status, "rate": self.rate,
                "delay_ms": self.delay_ms, "times": self.times, "hits": self.hits}


class _TenantRules:
    def __init__(self, seed: int, rules: list[_Rule]):
        self.seed = seed
        self.rules = rules
        self.random = random.Random(seed)

    def view(self) -> dict:
        return {"seed": self.seed, "rules": [rule.view() for rule in self.rules]}


class FaultRules:
    """Every tenant's fault rules, in memory (a restart forgets them, as does a reset)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tenants: dict[str, _TenantRules] = {}

    def view(self, tenant_id: str) -> dict:
        with self._lock:
            current = self._tenants.get(tenant_id)
            return current.view() if current else {"seed": 0, "rules": []}

    def replace(self, tenant_id: str, body: dict) -> dict:
        """Install a tenant's rules (already checked against the contract); answer the view."""
        rules = []
        for index, rule in enumerate(body.get("rules", [])):
            status, delay_ms = rule.get("status"), rule.get("delay_ms", 0)
            if status is None and not delay_ms:
                raise SandboxError(422, "a rule needs a status, a delay_ms above 0, or both", f"rules.{index}")
            rules.append(_Rule(operation=rule["operation"], status=status, rate=float(rule.get("rate", 1.0)),
                               delay_ms=delay_ms, times=rule.get("times")))
        if len(rules) > MAX_RULES:
            raise SandboxError(422, f"at most {MAX_RULES} rules", "rules")
        with self._lock:
            if rules:
                self._tenants[tenant_id] = _TenantRules(body.get("seed", 0), rules)
            else:
                self._tenants.pop(tenant_id, None)
        return self.view(tenant_id)

    def clear(self, tenant_id: str) -> dict:
        with self._lock:
            self._tenants.pop(tenant_id, None)
        return self.view(tenant_id)

    def has_rules(self, tenant_id: str) -> bool:
        """Whether the tenant has rules installed (a dict lookup: no lock, no draw)."""
        return tenant_id in self._tenants

    def decide(self, tenant_id: str, operation: str) -> Fault | None:
        """The fault the tenant's rules give this request, if any (draws from the tenant's generator)."""
        with self._lock:
            current = self._tenants.get(tenant_id)
            if current is None:
                return None
            for index, rule in enumerate(current.rules):
                if rule.operation not in ("*", operation) or not rule.armed():
                    continue
                if current.random.random() >= rule.rate:
                    continue
                rule.hits += 1
                return Fault(rule.status, float(rule.delay_ms), f"fault rule #{index} for {rule.operation}")
        return None
