"""A throw-away PostgreSQL database for one test session, emptied before each test that uses it.

The server comes from POKITDOK_SANDBOX_TEST_PG (default: the loopback server with trust auth).
When it cannot be reached, PostgreSQL tests fail under CI (CI=true) and are skipped elsewhere.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pokitdok_sandbox.stores import redact
from pokitdok_sandbox.stores.pg_schema import SCHEMA
from pokitdok_sandbox.stores.postgres import PostgresStore, close_pools

ADMIN_URL = os.environ.get("POKITDOK_SANDBOX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TABLES = ("meta", "tenants", "clients", "tokens", "records", "slots")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    message = f"PostgreSQL at {redact(ADMIN_URL)} is not usable ({reason}); set POKITDOK_SANDBOX_TEST_PG"
    if in_ci():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


class SessionDatabase:
    """One database of the session: `url` for the sandbox, `wipe()` before each test."""

    def __init__(self):
        self.name = f"pokitdok_sandbox_test_{secrets.token_hex(4)}"
        self.url = with_database(ADMIN_URL, self.name)
        self._conn: psycopg.Connection | None = None

    def create(self) -> "SessionDatabase":
        try:
            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
                admin.execute(f'CREATE DATABASE "{self.name}"')
        except psycopg.Error as exc:
            unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        PostgresStore(self.url).migrate()
        self._conn = psycopg.connect(self.url, autocommit=True)
        return self

    def wipe(self) -> None:
        if self._conn.broken or self._conn.closed:  # a test cut the database's connections
            self._conn = psycopg.connect(self.url, autocommit=True)
        self._conn.execute(f"TRUNCATE {', '.join(f'{SCHEMA}.{t}' for t in TABLES)}")

    def drop(self) -> None:
        close_pools()
        if self._conn is not None:
            self._conn.close()
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
