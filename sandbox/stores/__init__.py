"""Where the data lives: the embedded TinyDB file (default) or a shared PostgreSQL database.

`open_store(settings)` picks the backend at start-up from the settings' store location
(`store_url`, else the TinyDB `db_path`): a URL whose scheme is in `BACKENDS` selects that
backend, anything else is the path of a TinyDB file; no location at all keeps everything in
memory. `store_class(settings)` names the backend without opening it, so a command can ask
what it supports (several processes, a schema to migrate) first.

The TinyDB store's own parts live here too: `journal.py` (the durable file),
`slot_index.py` (its in-memory indexes), `damage.py` (checking and salvaging a file),
`tinydb_format.py` (what the file says it is), `filelock.py` (one process per file).
"""

from __future__ import annotations

from typing import Callable

from .base import KINDS, OverlapRefused, SlotLimitReached, Store, StoreError, StoreUnavailable, TenantData
from .urls import redact

__all__ = ["BACKENDS", "KINDS", "OverlapRefused", "SlotLimitReached", "Store", "StoreError", "StoreUnavailable",
           "TenantData", "backend_for", "location_of", "open_store", "redact", "store_class", "url_scheme"]


# Each backend is imported when a location names it (psycopg is loaded only for PostgreSQL).
def _postgres() -> type[Store]:
    from .postgres import PostgresStore

    return PostgresStore


def _tinydb() -> type[Store]:
    from .tinydb import TinyDBStore

    return TinyDBStore


#: URL scheme (lower case) -> the backend for a location with it.
BACKENDS: dict[str, Callable[[], type[Store]]] = {
    "postgresql": _postgres,
    "postgres": _postgres,
}
#: The backend for every other location: a TinyDB file's path, or None (in memory).
FILE_BACKEND: Callable[[], type[Store]] = _tinydb


def location_of(settings) -> str | None:
    """Where the settings keep the data: `store_url`, else the TinyDB `db_path` (None: memory)."""
    return settings.store_url or settings.db_path


def url_scheme(location: str | None) -> str | None:
    """The scheme of `location` when a backend in `BACKENDS` serves it, else None (a file path)."""
    scheme = location.split(":", 1)[0].lower() if location and ":" in location else None
    return scheme if scheme in BACKENDS else None


def backend_for(location: str | None) -> type[Store]:
    """The backend that serves `location`, not opened."""
    scheme = url_scheme(location)
    return BACKENDS[scheme]() if scheme is not None else FILE_BACKEND()


def store_class(settings) -> type[Store]:
    """The backend the settings name, not opened."""
    return backend_for(location_of(settings))


def open_store(settings, migrate: bool = True, create: bool = True) -> Store | None:
    """The store the settings name, open; None when there is none yet and `create` is false."""
    location = location_of(settings)
    kind = backend_for(location)
    if not create and not kind.exists(location):
        return None
    return kind(location, migrate=migrate) if kind.has_schema else kind(location)
