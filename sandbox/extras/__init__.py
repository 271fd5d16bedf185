"""The sandbox's additions beyond the platform, as one service: their state, apart from the
middlewares that apply it (`sandbox/middleware/`) and the handlers that show and change it
(`sandbox/api/extras.py`).

* fault rules: injected failures and delays per tenant (`fault_rules.py`);
* the request journal: each tenant's last requests (`request_journal.py`);
* rate limits: the platform's hourly caps, rehearsed (`rate_limits.py`).

All of it is in memory, per server process, and kept per tenant; `forget(tenant)` (a reset
of the tenant's data set) starts it afresh.
"""

from __future__ import annotations

from .fault_rules import FaultRules
from .rate_limits import RateLimits
from .request_journal import RequestJournal


class SandboxExtras:
    def __init__(self, rate_limit: str | None = None):
        self.faults = FaultRules()
        self.request_journal = RequestJournal()
        self.rate_limits = RateLimits(rate_limit)

    def forget(self, tenant_id: str) -> None:
        self.faults.clear(tenant_id)
        self.request_journal.clear(tenant_id)
        self.rate_limits.clear(tenant_id)
