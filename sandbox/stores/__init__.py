"""Where the data lives: the embedded TinyDB file (default) or a shared PostgreSQL database.

`open_store(settings)` picks the backend at start-up from the settings: a
`postgresql://` (or `postgres://`) URL selects PostgreSQL, anything else is
the path of a TinyDB file; no store URL and no path keeps everything in memory.
`store_class(settings)` names the backend without opening it, so a command can ask
what it supports (several processes, a schema to migrate) first.

The TinyDB store's own parts live here too: `journal.py` (the durable file),
`slot_index.py` (its in-memory indexes), `damage.py` (checking and salvaging a file),
`filelock.py` (one process per file).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .base import KINDS, OverlapRefused, Store, StoreError, StoreUnavailable, TenantData

__all__ = ["KINDS", "OverlapRefused", "Store", "StoreError", "StoreUnavailable", "TenantData", "open_store",
           "redact", "store_class"]


def _is_postgres_url(location: str | None) -> bool:
    return bool(location) and location.split(":", 1)[0].lower() in ("postgresql", "postgres")


def redact(url: str) -> str:
    """A URL fit to print: the password (in the authority or as `?password=`) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    if parts.query:
        query = "&".join(f"{p.split('=', 1)[0]}=***" if p.split("=", 1)[0].lower() == "password" else p
                         for p in parts.query.split("&"))
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def _location(settings) -> str | None:
    return settings.store_url or settings.db_path


def store_class(settings) -> type[Store]:
    """The backend the settings name (`store_url`, else the TinyDB `db_path`), not opened."""
    if _is_postgres_url(_location(settings)):
        from .postgres import PostgresStore

        return PostgresStore
    from .tinydb import TinyDBStore

    return TinyDBStore


def open_store(settings, migrate: bool = True, create: bool = True) -> Store | None:
    """The store the settings name, open; None when there is none yet and `create` is false."""
    kind = store_class(settings)
    if not create and not kind.exists(_location(settings)):
        return None
    return kind(_location(settings), migrate=migrate) if kind.has_schema else kind(_location(settings))
