"""The request journal: each tenant's last requests to the API, for debugging a client.

Not to be confused with `journal.py`, the storage's write-ahead journal.

Kept in memory (a restart forgets it), `capacity` entries per tenant, newest first
when read. An entry holds the method, path, query string, status, duration, time,
the operation, and why the request was refused when it was: `violation` is the
error message of a 413/415/422 answer (the request broke the contract), `error`
that of any other error answer, `fault` says what fault injection did.

Which requests: those under the API base path with a valid bearer token, to the
documented operations or to unknown paths. Not sandbox administration
(/api/v4/sandbox/...), so a console polling the journal does not push the client's
own requests out of it, and not the token endpoint (no bearer token there).

Two ASGI middlewares:
* `JournalRecorder`, outermost, times the request, keeps the answer's status (and
  the error body of a refusal) and records the entry once the answer is sent;
* `TenantTap`, after Connexion's routing and before its token check, notes the
  operation, and where the token check leaves the tenant (the token's client id).
  When the token check did not run or refused the request (403) the recorder
  resolves the bearer token through the authority itself; a request without a
  valid token is not recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from datetime import datetime, timezone

from . import envelope
from .errors import error_message
from .stores import StoreUnavailable

DEFAULT_CAPACITY = 200
# Tenants whose journals are kept; the least recently active one is forgotten beyond this.
MAX_TENANTS = 1000
VIOLATION_STATUSES = frozenset({413, 415, 422})
NOTE_KEY = "pokitdok_sandbox.request_note"
_MAX_TEXT = 2048
_MAX_ERROR_BODY = 64 * 1024
# Where Connexion leaves, in the ASGI scope's extensions, the routed operation and the token check's result.
CONNEXION_ROUTING = "connexion_routing"
CONNEXION_CONTEXT = "connexion_context"


class RequestJournal:
    def __init__(self, capacity: int = DEFAULT_CAPACITY, max_tenants: int = MAX_TENANTS):
        self.capacity = capacity
        self.max_tenants = max_tenants
        self._lock = threading.Lock()
        # tenant -> (its entries, the number of entries recorded since its journal was cleared)
        self._tenants: OrderedDict[str, tuple[deque, list[int]]] = OrderedDict()

    def record(self, tenant_id: str, entry: dict) -> None:
        with self._lock:
            kept = self._tenants.get(tenant_id)
            if kept is None:
                kept = self._tenants[tenant_id] = (deque(maxlen=self.capacity), [0])
                while len(self._tenants) > self.max_tenants:
                    self._tenants.popitem(last=False)
            else:
                self._tenants.move_to_end(tenant_id)
            entries, counter = kept
            counter[0] += 1
            entries.append({"seq": counter[0], **entry})

    def entries(self, tenant_id: str, limit: int | None = None) -> list[dict]:
        """The tenant's entries, newest first."""
        with self._lock:
            kept = self._tenants.get(tenant_id)
            entries = list(kept[0]) if kept else []
        entries.reverse()
        return entries[:limit] if limit is not None else entries

    def clear(self, tenant_id: str) -> None:
        with self._lock:
            self._tenants.pop(tenant_id, None)

    def view(self, tenant_id: str, limit: int | None = None) -> dict:
        return {"capacity": self.capacity, "entries": self.entries(tenant_id, limit)}


@dataclass
class RequestNote:
    """What the inner layers learn about a request, for the recorder (shared through the scope)."""

    operation: str | None = None
    fault: str | None = None
    # The request's Connexion extensions, where the token check puts the tenant (`user`).
    extensions: dict | None = None

    @property
    def tenant(self) -> str | None:
        return ((self.extensions or {}).get(CONNEXION_CONTEXT) or {}).get("user")


def annotate(scope, **fields) -> None:
    """Add to the note of a request being journaled (no-op for others)."""
    note = scope.get(NOTE_KEY)
    if note is not None:
        for name, value in fields.items():
            setattr(note, name, value)


def short_name(operation_id: str) -> str:
    """What rules and the journal call an operation: the last part of its operationId (`update_appointment`)."""
    return operation_id.rsplit(".", 1)[-1]


class TenantTap:
    """After routing, before the token check: note the operation and where the tenant will be."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        note = scope.get(NOTE_KEY)
        if note is not None:
            note.extensions = scope.setdefault("extensions", {})
            operation_id = (note.extensions.get(CONNEXION_ROUTING) or {}).get("operation_id")
            note.operation = short_name(operation_id) if operation_id else None
        await self.app(scope, receive, send)


class JournalRecorder:
    """Outermost layer: records each journaled request once its answer is sent."""

    def __init__(self, app, journal: RequestJournal, authority, base_path: str = "/api/v4",
                 excluded: tuple[str, ...] = ("/sandbox/", "/openapi.json", "/openapi.yaml", "/ui")):
        self.app = app
        self.journal = journal
        self.authority = authority
        self.base_path = base_path
        self.excluded = tuple(base_path + prefix for prefix in excluded)

    def _journaled(self, scope) -> bool:
        path = scope.get("path", "")
        return (scope["type"] == "http" and path.startswith(self.base_path + "/")
                and not path.startswith(self.excluded))

    async def __call__(self, scope, receive, send):
        if not self._journaled(scope):
            await self.app(scope, receive, send)
            return
        note = scope[NOTE_KEY] = RequestNote()
        started = time.perf_counter()
        answer = {"status": 500, "body": []}

        async def watch(message):
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body" and answer["status"] >= 400:
                if sum(map(len, answer["body"])) < _MAX_ERROR_BODY:
                    answer["body"].append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self._record(scope, note, answer["status"], b"".join(answer["body"]),
                         (time.perf_counter() - started) * 1000)

    def _record(self, scope, note: RequestNote, status: int, error_body: bytes, duration_ms: float) -> None:
        if status == 401:
            return
        tenant = note.tenant or self._tenant_of(scope)
        if tenant is None:
            return
        message, field = _error_message(error_body) if status >= 400 else (None, None)
        refused_by_contract = status in VIOLATION_STATUSES and note.fault is None
        activity = envelope.activity_of(scope)
        self.journal.record(tenant, {
            "activity_id": activity.id if activity else None,
            "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "method": scope.get("method", ""),
            "path": scope.get("path", "")[:_MAX_TEXT],
            "query": scope.get("query_string", b"").decode("latin-1")[:_MAX_TEXT],
            "operation": note.operation,
            "status": status,
            "duration_ms": round(duration_ms, 1),
            "violation": message if refused_by_contract else None,
            "error": message if not refused_by_contract else None,
            "field": field,
            "fault": note.fault,
        })

    def _tenant_of(self, scope) -> str | None:
        """The client id of the request's bearer token, when it is valid."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                kind, _, token = value.decode("latin-1").partition(" ")
                if kind.lower() == "bearer" and token.strip():
                    try:
                        info = self.authority.token_info(token.strip())
                    except StoreUnavailable:  # the store is unavailable: the answer said so already
                        return None
                    return info["sub"] if info else None
        return None


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
