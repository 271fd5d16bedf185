"""Where the data lives: the embedded TinyDB file (default) or a shared PostgreSQL database.

`open_store(settings)` picks the backend at start-up from the settings: a
`postgresql://` (or `postgres://`) URL selects PostgreSQL, anything else is
the path of a TinyDB file; no store URL and no path keeps everything in memory.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from .base import KINDS, Store, StoreError, StoreUnavailable, TenantData

__all__ = ["KINDS", "Store", "StoreError", "StoreUnavailable", "TenantData", "is_postgres_url", "open_store", "redact"]


def is_postgres_url(location: str | None) -> bool:
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


def open_store(settings, migrate: bool = True) -> Store:
    """The store the settings name (`store_url`, else the TinyDB `db_path`)."""
    location = settings.store_url or settings.db_path
    if is_postgres_url(location):
        from .postgres import PostgresStore

        return PostgresStore(location, migrate=migrate)
    from .tinydb import TinyDBStore

    return TinyDBStore(location)
