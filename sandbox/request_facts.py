"""What the sandbox's layers learn about one request, in one object carried in its ASGI scope.

The entrance, the outermost layer, creates it (`middleware/guard.py`'s `start`: the activity id
and the clock); the pipeline notes the routed operation and, once the token is checked, the tenant
(`learn_tenant`). The envelope's `meta`, rate limiting, fault injection and the request journal
read it here.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

FACTS_KEY = "pokitdok_sandbox.request"
# The token endpoint's one name, whichever of its two paths was asked.
TOKEN_OPERATION = "issue_token"


@dataclass
class RateWindow:
    amount: int  # requests counted in the window, this one included
    cap: int
    reset: int  # Unix time the window ends


@dataclass
class RequestFacts:
    activity_id: str
    started: float
    # The routed operation's operationId, or None.
    operation: str | None = None
    # Whether that operation is the platform's (not sandbox administration).
    documented: bool = False
    # The token's client id, once the token check has accepted the token.
    tenant: str | None = None
    rate: RateWindow | None = None
    # What fault injection did to the request, for the journal.
    fault: str | None = None
    # The platform's common parameters (`middleware/common_parameters.py`): kept on the activity,
    # and whether the client asked for asynchronous processing (scheduling is real-time only).
    application_data: object = None
    asked_async: bool | None = None


    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


def begin(scope) -> RequestFacts:
    facts = RequestFacts(activity_id=str(uuid.uuid4()), started=time.perf_counter())
    scope[FACTS_KEY] = facts
    return facts


def facts_of(scope) -> RequestFacts | None:
    return scope.get(FACTS_KEY) if scope is not None else None


def learn_tenant(scope, tenant_id: str) -> None:
    facts = facts_of(scope)
    if facts is not None:
        facts.tenant = tenant_id
