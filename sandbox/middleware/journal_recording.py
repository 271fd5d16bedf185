"""Records each request in its tenant's request journal (`sandbox/extras/request_journal.py`).

Which requests: those under the API base path with a valid token, to the documented operations
or to unknown paths. The token check notes the tenant in the request's facts; for requests it
never saw (an unknown path, a body the guard refused) the authority names the token's tenant. Not
sandbox administration (/api/v4/sandbox/...), so a console polling the journal does not push
the client's own requests out of it, not the console's own reads of documented operations (they
carry X-Sandbox-Console), and not the token endpoint (no tenant there yet).

The entrance (`entrance.py`) asks `journaled` when a request starts, keeps the answer's status
(and the error body of a refusal; the guard's refusals included) and calls `record` once the
answer is sent.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from ..errors import error_message
from ..extras.request_journal import RequestJournal
from ..request_facts import facts_of

VIOLATION_STATUSES = frozenset({413, 415, 422})
# The console's own reads carry this header: the journal it shows is the client's requests only.
CONSOLE_HEADER = b"x-sandbox-console"
_MAX_TEXT = 2048
MAX_ERROR_BODY = 64 * 1024  # what is kept of a refusal's body to read its message


class JournalRecorder:
    def __init__(self, journal: RequestJournal, identify, base_path: str = "/api/v4",
                 excluded: tuple[str, ...] = ("/sandbox/", "/openapi.json", "/openapi.yaml", "/ui")):
        self.journal = journal
        self.identify = identify  # scope -> the tenant of its valid bearer token, or None
        self.base_path = base_path
        self.excluded = tuple(base_path + prefix for prefix in excluded)

    def journaled(self, scope) -> bool:
        path = scope.get("path", "")
        return (scope["type"] == "http" and path.startswith(self.base_path + "/")
                and not path.startswith(self.excluded)
                and not any(name == CONSOLE_HEADER for name, _ in scope.get("headers", ())))

    def record(self, scope, status: int, error_body: bytes) -> None:
        """The entry of a journaled request, once answered (`error_body`: a refusal's, else empty)."""
        facts = facts_of(scope)
        if facts is None or status == 401:
            return
        tenant = facts.tenant or self.identify(scope)
        if tenant is None:
            return
        message, field = _error_message(error_body) if status >= 400 else (None, None)
        refused_by_contract = status in VIOLATION_STATUSES and facts.fault is None
        self.journal.record(tenant, {
            "activity_id": facts.activity_id,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:_MAX_TEXT],
            "query": scope.get("query_string", b"").decode("latin-1")[:_MAX_TEXT],
            "operation": facts.operation,
            "status": status,
            "duration_ms": round(facts.elapsed_ms(), 1),
            "violation": message if refused_by_contract else None,
            "error": message if not refused_by_contract else None,
            "field": field,
            "fault": facts.fault,
            "application_data": facts.application_data,
        })


def _error_message(body: bytes) -> tuple[str | None, str | None]:
    try:
        error = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    message, field = error_message(error)
    return (str(message)[:_MAX_TEXT] if message is not None else None,
            str(field)[:_MAX_TEXT] if field is not None else None)
