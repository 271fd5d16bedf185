"""The request journal: each tenant's last requests to the API, for debugging a client.

(Not the storage's write-ahead journal, which lives with the TinyDB store.)

Kept in memory (a restart forgets it), `capacity` entries per tenant, newest first
when read. An entry holds the request's activity id (its answer's `meta.activity_id`),
the method, path, query string, status, duration, time, the operation, and why the
request was refused when it was: `violation` is the error message of a 413/415/422
answer (the request broke the contract), `error` that of any other error answer,
`fault` says what fault injection did.

Which requests are recorded, and how, is the recorder's business
(`sandbox/middleware/journal_recording.py`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

DEFAULT_CAPACITY = 200
# Tenants whose journals are kept; the least recently active one is forgotten beyond this.
MAX_TENANTS = 1000


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
