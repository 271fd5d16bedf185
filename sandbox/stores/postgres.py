"""The shared store: one PostgreSQL database for many server processes and replicas.

Every process keeps a small connection pool; little is cached that another
process could change: the tenants known to exist (tenants are never deleted)
and access tokens already seen (a token never changes; it is dropped once expired,
which the caller checks, or as a client's oldest past `--max-client-tokens`, which
another process may do: a cached token is read again after `TOKEN_RECHECK_SECONDS`).
A transaction of the rules is one database transaction:

  * booking, cancelling, updating and deleting a slot read it `FOR UPDATE`, so
    concurrent changes of one slot queue behind each other and the second sees
    the first's result (one winner per slot, across processes);
  * creating a slot takes an advisory lock on the provider's calendar before the
    overlap check, and the insert itself refuses a slot overlapping another of the
    provider at the same place (it takes that lock too when the caller did not);
    with every writer of a calendar holding its lock, the check sees every slot
    committed before it and none can be committed beside it (see `_CLASH`);
  * seeding checks the new data set's calendars before it commits;
  * re-seeding a tenant takes the tenant's advisory lock exclusively, slot
    creation takes it shared, so a reset never interleaves with a new slot.

Records are kept as JSON text (`doc`) exactly as answered, beside the columns
the indexes need; the slot queries use btree indexes, never a scan of the tenant.
Each tenant's slot count is kept in `tenants.slot_count`, so counting does not
grow with the data.

A call made on the event loop (through `offload.run`, under `greenbridge`) has its database waits
awaited there, so the loop answers other requests meanwhile; it takes its connections from
`_LoopConnections`, which never makes the loop wait for one. A call made on a thread (heavy reads,
sandbox administration, the command line) waits as usual, on the pool (`ConnectionPool`).

Every call is bounded in time, for the database refusing connections and for one that stops
answering (a partition: packets go unanswered, or a proxy in between stops forwarding):
  * a call has until the request's deadline (`base.deadline`, set by `offload.run`; else
    `CALL_SECONDS`) to get a connection and its answers; past it, the connection's socket
    is shut down by a watchdog thread (libpq has no client-side timeout of its own, and TCP
    settings cannot see a peer that acknowledges and never answers), the call fails with
    `StoreUnavailable` (a 503) and the connection is dropped;
  * a pooled connection is handed out without a round trip to check it; one the database ended
    meanwhile is replaced when taken or on its first statement (`_Checkout`);
  * connections are opened with `connect_timeout`, TCP keepalives and `tcp_user_timeout` (a
    dead peer is noticed by the kernel too), and run with a `statement_timeout` (work the
    database itself takes too long over is cancelled there).
When the database goes away, the store answers from direct connections (which fail at once,
or within `CONNECT_TIMEOUT`) until one succeeds: that request is served and the pool is built
anew. The pool's own reconnection backs off for minutes, so without this the first requests
after the database returns would still fail.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import select
import socket
import threading
import time
from collections import deque
from contextlib import ExitStack, contextmanager
from datetime import datetime
from typing import Iterable, Iterator

import orjson
import psycopg
from psycopg import waiting
from psycopg_pool import ConnectionPool, PoolTimeout

from .. import greenbridge
from .base import KINDS, OverlapRefused, SlotLimitReached, Store, StoreError, StoreUnavailable, TenantData, deadline
from .pg_schema import SCHEMA, migrate
from .slot_index import cell_of, cells_near
from .urls import redact

log = logging.getLogger("pokitdok_sandbox")

POOL_SIZE = 10  # the pool of calls made on threads
LOOP_CONNECTIONS = 8  # connections kept for calls made on the event loop (`offload.LOOP_CALLS` at once)
CONNECT_TIMEOUT = 2  # seconds; libpq's minimum that means anything is 2
CALL_SECONDS = 2.0  # a call's budget (connection and answers) outside a request's own deadline
STATEMENT_TIMEOUT_MS = 10_000  # the database cancels a statement running longer (seeding: none)
TOKEN_CACHE_SIZE = 10_000
# A cached token is read again once it was last read this long ago: a token another process dropped
# (the client's oldest past --max-client-tokens) is refused by every process within this time.
TOKEN_RECHECK_SECONDS = 1.0
_CELL_STRIDE = 4000  # longitude buckets span 3600: (lat bucket, lon bucket) -> one bigint
_SLOT_COLUMNS = "tenant, uuid, provider, patient, booked, start_at, end_at, place_lat, place_lon, cell, doc"

# One pool per database URL and process, shared by every store opened on it (closed with the last).
_pools: dict[str, ConnectionPool] = {}
_pool_users: dict[str, int] = {}
_pools_lock = threading.Lock()


def _dump(record: dict) -> str:
    # Any string a client sends (NUL included) is stored as given: orjson escapes control characters;
    # a lone surrogate, which orjson refuses and UTF-8 cannot hold, is stored \u-escaped by json.
    try:
        return orjson.dumps(record).decode()
    except TypeError:
        return json.dumps(record, separators=(",", ":"))


def _load(doc: str) -> dict:
    try:
        return orjson.loads(doc)
    except orjson.JSONDecodeError:  # a lone surrogate, stored by `_dump` as json wrote it
        return json.loads(doc)


def _micro(degrees: float) -> int:
    """Micro-degrees, so that equal keys mean `geo.same_place` (equal to 6 decimals)."""
    return round(round(degrees, 6) * 1_000_000)


def _cell_key(cell: tuple[int, int]) -> int:
    return cell[0] * _CELL_STRIDE + cell[1]


def _lock_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key for a name."""
    digest = hashlib.blake2b("\0".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def slot_row(tenant: str, slot: dict) -> tuple:
    patient = slot["patient"]["_uuid"].lower() if slot.get("patient") else None
    lat, lon = slot["location"]
    return (tenant, slot["pd_appointment_uuid"], slot["pd_provider_uuid"], patient, bool(slot["booked"]),
            datetime.fromisoformat(slot["start_date"]), datetime.fromisoformat(slot["end_date"]),
            _micro(lat), _micro(lon), _cell_key(cell_of(slot["location"])), _dump(slot))


# Whether a slot of `provider` at (`lat`, `lon`) other than `uuid` overlaps [`start`, `end`), in two probes
# of slots_by_calendar: one starting inside the range, and the last starting before it (the slots of a
# calendar at one place never overlap each other, so that one ends last of those starting before).
# Sound only while every writer of the calendar holds its advisory lock (`lock_calendar`): then this
# sees every slot committed before, and no other can commit until this transaction ends.
_CLASH = """
    (SELECT uuid FROM slots WHERE tenant = %(tenant)s AND provider = %(provider)s AND start_at >= %(start)s
        AND start_at < %(end)s AND place_lat = %(lat)s AND place_lon = %(lon)s AND uuid <> %(uuid)s LIMIT 1)
    UNION ALL
    (SELECT uuid FROM (SELECT uuid, end_at FROM slots WHERE tenant = %(tenant)s AND provider = %(provider)s
        AND start_at < %(start)s AND place_lat = %(lat)s AND place_lon = %(lon)s AND uuid <> %(uuid)s
        ORDER BY start_at DESC LIMIT 1) last WHERE end_at > %(start)s)"""
_SLOT_VALUES = ("%(tenant)s, %(uuid)s, %(provider)s, %(patient)s, %(booked)s, %(start)s, %(end)s, %(lat)s, "
                "%(lon)s, %(cell)s, %(doc)s")
_SLOT_NAMES = ("tenant", "uuid", "provider", "patient", "booked", "start", "end", "lat", "lon", "cell", "doc")
# A new slot unless it overlaps (`clash` names the slot in the way) or its uuid exists (nothing inserted).
_INSERT_SLOT = f"""
    WITH clash AS ({_CLASH}),
    added AS (INSERT INTO slots ({_SLOT_COLUMNS}) SELECT {_SLOT_VALUES} WHERE NOT EXISTS (SELECT FROM clash)
              ON CONFLICT (tenant, uuid) DO NOTHING RETURNING 1),
    counted AS (UPDATE tenants SET slot_count = slot_count + 1
                WHERE tenant = %(tenant)s AND EXISTS (SELECT FROM added) RETURNING 1)
    SELECT (SELECT uuid FROM clash LIMIT 1), EXISTS (SELECT FROM added), EXISTS (SELECT FROM counted)"""
_UPDATE_SLOT = ("UPDATE slots SET (provider, patient, booked, start_at, end_at, place_lat, place_lon, cell, doc) = "
                "(%(provider)s, %(patient)s, %(booked)s, %(start)s, %(end)s, %(lat)s, %(lon)s, %(cell)s, %(doc)s) "
                "WHERE tenant = %(tenant)s AND uuid = %(uuid)s")
# The same calendar, the same times: the update cannot make an overlap.
_IN_PLACE = (" AND provider = %(provider)s AND start_at = %(start)s AND end_at = %(end)s AND place_lat = %(lat)s "
             "AND place_lon = %(lon)s")
# A data set's first overlap, when its rows did not come in time order (`put_dataset` checks ordered ones).
_FIRST_OVERLAP = """
    SELECT uuid FROM (SELECT uuid, start_at < lag(end_at) OVER (PARTITION BY provider, place_lat, place_lon
                                                                ORDER BY start_at) AS clash
                      FROM slots WHERE tenant = %s) checked WHERE clash LIMIT 1"""


def _slot_params(tenant: str, slot: dict) -> dict:
    return dict(zip(_SLOT_NAMES, slot_row(tenant, slot)))


class PgTenant(TenantData):
    """One tenant's records inside one database transaction."""

    def __init__(self, conn: _Checkout | psycopg.Connection, tenant_id: str):
        self._conn = conn
        self.id = tenant_id
        self._calendars: set[str] = set()  # providers whose calendar lock this transaction holds

    def _docs(self, sql: str, params: tuple) -> list[dict]:
        return [_load(doc) for (doc,) in self._conn.execute(sql, params)]

    def _window(self, sql: str, params: tuple, start, end, order: str = " ORDER BY start_at") -> list[dict]:
        if start is not None:
            sql, params = sql + " AND start_at >= %s", (*params, start)
        if end is not None:
            sql, params = sql + " AND start_at <= %s", (*params, end)
        return self._docs(sql + order, params)

    def get(self, kind: str, key: str, for_update: bool = False) -> dict | None:
        lock = " FOR UPDATE" if for_update else ""
        if kind == "slots":
            found = self._docs(f"SELECT doc FROM slots WHERE tenant = %s AND uuid = %s{lock}", (self.id, key))
        else:
            found = self._docs(f"SELECT doc FROM records WHERE tenant = %s AND kind = %s AND key = %s{lock}",
                               (self.id, kind, key))
        return found[0] if found else None

    def all(self, kind: str) -> list[dict]:
        if kind == "slots":
            return self._docs("SELECT doc FROM slots WHERE tenant = %s ORDER BY start_at, uuid", (self.id,))
        return self._docs("SELECT doc FROM records WHERE tenant = %s AND kind = %s ORDER BY seq", (self.id, kind))

    def insert(self, kind: str, record: dict) -> bool:
        if kind != "slots":
            inserted = self._conn.execute(
                "INSERT INTO records (tenant, kind, key, doc) VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (self.id, kind, record[KINDS[kind]], _dump(record)))
            return inserted.rowcount == 1
        params = _slot_params(self.id, record)
        self.lock_calendar(params["provider"])  # once per transaction; the rules took it already
        clash, added, _counted = self._conn.execute(_INSERT_SLOT, params).fetchone()
        if clash is not None:
            # Only reachable when the caller skipped its own overlap check: the store still refuses.
            raise OverlapRefused(f"slot {record['pd_appointment_uuid']} overlaps slot {clash}")
        return added

    def replace(self, kind: str, record: dict) -> None:
        if kind != "slots":
            self._conn.execute(
                "INSERT INTO records (tenant, kind, key, doc) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (tenant, kind, key) DO UPDATE SET doc = excluded.doc",
                (self.id, kind, record[KINDS[kind]], _dump(record)))
            return
        params = _slot_params(self.id, record)
        if self._conn.execute(_UPDATE_SLOT + _IN_PLACE, params).rowcount == 1:
            return  # booking, cancelling, a new description: one statement
        # A new slot, or one moved in time or place: checked like a new slot, under the calendar's lock.
        self.lock_calendar(params["provider"])
        if self._conn.execute(f"{_UPDATE_SLOT} AND NOT EXISTS ({_CLASH})", params).rowcount == 1:
            return
        if self._conn.execute("SELECT FROM slots WHERE tenant = %s AND uuid = %s",
                              (self.id, params["uuid"])).fetchone() is not None:
            raise OverlapRefused(f"slot {record['pd_appointment_uuid']} would overlap another")
        self.insert(kind, record)

    def remove(self, kind: str, key: str) -> None:
        if kind == "slots":
            self._conn.execute(
                "WITH gone AS (DELETE FROM slots WHERE tenant = %(tenant)s AND uuid = %(uuid)s RETURNING 1) "
                "UPDATE tenants SET slot_count = slot_count - (SELECT count(*) FROM gone) "
                "WHERE tenant = %(tenant)s AND EXISTS (SELECT FROM gone)", {"tenant": self.id, "uuid": key})
        else:
            self._conn.execute("DELETE FROM records WHERE tenant = %s AND kind = %s AND key = %s",
                               (self.id, kind, key))

    def count(self, kind: str) -> int:
        if kind == "slots":
            row = self._conn.execute("SELECT slot_count FROM tenants WHERE tenant = %s", (self.id,)).fetchone()
            if row is not None:
                return row[0]
            return self._conn.execute("SELECT count(*) FROM slots WHERE tenant = %s", (self.id,)).fetchone()[0]
        return self._conn.execute("SELECT count(*) FROM records WHERE tenant = %s AND kind = %s",
                                  (self.id, kind)).fetchone()[0]

    def count_booked(self) -> int:
        return self._conn.execute("SELECT count(*) FROM slots WHERE tenant = %s AND booked",
                                  (self.id,)).fetchone()[0]

    def slot_total(self) -> int:
        # Every slot creation that checks the total queues here until the one before it commits; the
        # sum is read after the lock, so it counts every slot committed before.
        self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("slot total"),))
        return self._conn.execute("SELECT coalesce(sum(slot_count), 0) FROM tenants").fetchone()[0]

    def slots_of_provider(self, provider, start, end) -> list[dict]:
        return self._window("SELECT doc FROM slots WHERE tenant = %s AND provider = %s", (self.id, provider),
                            start, end)

    def open_slots_page(self, search, offset, limit):
        """One page of a provider's open slots in start order, and how many there are, in one statement
        (one snapshot): a range of slots_open_by_provider, in its order; the matches are counted from
        the index alone and only the page's rows are read.
        None (the rules filter `search_candidates`) for an appointment type, which only `doc` holds."""
        if not search.open_slots_of_provider or search.appointment_type is not None:
            return None
        start, end = search.start, search.end
        where, params = "tenant = %s AND provider = %s AND NOT booked", [self.id, search.provider]
        if start is not None:
            where, params = where + " AND start_at >= %s", [*params, start]
        if end is not None:  # a slot ending by `end` starts before it: the index range is bounded too
            where, params = where + " AND start_at <= %s AND end_at <= %s", [*params, end, end]
        rows = self._conn.execute(
            f"SELECT counted.total, page.doc FROM (SELECT count(*) AS total FROM slots WHERE {where}) counted "
            f"LEFT JOIN LATERAL (SELECT doc FROM slots WHERE {where} ORDER BY start_at, uuid LIMIT %s OFFSET %s) "
            "page ON true", (*params, *params, limit, offset)).fetchall()
        return rows[0][0], [_load(doc) for _total, doc in rows if doc is not None]

    def slots_of_patient(self, patient) -> list[dict]:
        return self._docs("SELECT doc FROM slots WHERE tenant = %s AND patient = %s", (self.id, patient))

    def slots_near(self, point, miles, start, end) -> list[dict]:
        cells = cells_near(point, miles)
        if cells is None:
            return self.slots_starting_between(start, end)
        return self._window("SELECT doc FROM slots WHERE tenant = %s AND cell = ANY(%s)",
                            (self.id, [_cell_key(cell) for cell in cells]), start, end, order="")

    def slots_starting_between(self, start, end) -> list[dict]:
        return self._window("SELECT doc FROM slots WHERE tenant = %s", (self.id,), start, end)

    def overlap_candidates(self, provider, place, start, end) -> list[dict]:
        return self._docs(
            f"SELECT doc FROM slots WHERE tenant = %(tenant)s AND uuid IN ({_CLASH})",
            {"tenant": self.id, "provider": provider, "lat": _micro(place[0]), "lon": _micro(place[1]),
             "start": start, "end": end, "uuid": ""})

    def lock_calendar(self, provider: str) -> None:
        if provider in self._calendars:
            return
        self._conn.execute("SELECT pg_advisory_xact_lock_shared(%s), pg_advisory_xact_lock(%s)",
                           (_lock_key("tenant", self.id), _lock_key("calendar", self.id, provider)))
        self._calendars.add(provider)


class PostgresStore(Store):
    name = "PostgreSQL"
    multi_process = True
    has_schema = True
    blocking = True

    def __init__(self, url: str, migrate: bool = True):
        self.url = url
        self.description = redact(url)
        self._known_tenants: set[str] = set()
        self._tokens: dict[str, tuple[dict, float]] = {}  # token -> (record, when read: time.monotonic())
        if migrate:
            self.migrate()
        self._pool = _pool(url, self.description)
        self._down = False  # the last call found the database gone: calls on threads try direct connections
        self._loop_connections = _LoopConnections(url)

    def migrate(self) -> int:
        """Create or update the schema; answer its version."""
        with _connect(self.url, self.description) as conn:
            return migrate(conn, self.description)

    @contextmanager
    def _connection(self, bounded: bool = True) -> Iterator[_Checkout | psycopg.Connection]:
        """A connection in autocommit: one statement is one round trip; see `transaction`. Within
        the call's deadline (`bounded`), else as long as the work takes (seeding). On the event loop,
        one of the loop's (`_LoopConnections`); on a thread, a pooled one."""
        budget = _budget() if bounded else POOL_WAIT_UNBOUNDED
        on_loop = greenbridge.inside()
        if self._down and not on_loop:  # (the loop's connections are opened anew as needed anyway)
            with self._direct_connection(budget if bounded else None) as conn:
                yield conn
            return
        try:
            with _checkout(self._loop_connections if on_loop else self._pool, budget, bounded) as conn:
                yield conn
        except PoolTimeout:
            self._down = True
            raise StoreUnavailable(f"no connection to PostgreSQL at {self.description} within "
                                   f"{budget:.1f}s") from None
        except StoreUnavailable as exc:  # no answer in time: slow or away (the next checkout tells which)
            raise StoreUnavailable(f"PostgreSQL at {self.description} did not answer in time: {exc}") from None
        except psycopg.OperationalError as exc:
            self._down = True
            raise StoreUnavailable(f"PostgreSQL at {self.description} is unavailable: {_first_line(exc)}") from None

    @contextmanager
    def _direct_connection(self, budget: float | None) -> Iterator[psycopg.Connection]:
        """While the database is away: one connection per request, and a new pool once one works."""
        try:
            conn = psycopg.connect(self.url, **_connection_options(budget))
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.description} is unavailable: {_first_line(exc)}") from None
        log.warning("PostgreSQL at %s answers again", self.description)
        self._down = False
        self._pool = _renew_pool(self.url, self._pool)
        try:
            with conn, _watchdog.watching(conn, _budget() if budget is not None else None):
                yield conn
        except (psycopg.OperationalError, StoreUnavailable) as exc:
            self._down = True
            raise StoreUnavailable(f"PostgreSQL at {self.description} is unavailable: {_first_line(exc)}") from None

    def ping(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def transaction(self, tenant_id: str, readonly: bool = False) -> Iterator[PgTenant]:
        with self._connection() as conn:
            if readonly:  # one query, atomic by itself: no BEGIN and COMMIT round trips
                yield PgTenant(conn, tenant_id)
                return
            with conn.transaction():  # commits, or rolls back on an exception
                yield PgTenant(conn, tenant_id)

    def _one(self, sql: str, params: tuple):
        with self._connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return _load(row[0]) if row is not None else None

    # -- settings ------------------------------------------------------------------
    def meta(self, key: str) -> dict | None:
        return self._one("SELECT doc FROM meta WHERE key = %s", (key,))

    def put_meta(self, key: str, record: dict) -> None:
        with self._connection() as conn:
            conn.execute("INSERT INTO meta (key, doc) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET doc = "
                         "excluded.doc", (key, _dump(record)))

    # -- tenants ----------------------------------------------------------------------
    def tenant_settings(self, tenant_id: str) -> dict | None:
        return self._one("SELECT settings FROM tenants WHERE tenant = %s", (tenant_id,))

    def tenant_ids(self) -> list[str]:
        with self._connection() as conn:
            return [tenant for (tenant,) in conn.execute("SELECT tenant FROM tenants ORDER BY tenant")]

    def slot_total(self) -> int:
        with self._connection() as conn:
            return conn.execute("SELECT coalesce(sum(slot_count), 0) FROM tenants").fetchone()[0]

    def tenant_exists(self, tenant_id: str) -> bool:
        """Cached once seen: tenants are never deleted, so this costs a query per tenant, not per request."""
        if tenant_id in self._known_tenants:
            return True
        if self.tenant_settings(tenant_id) is None:
            return False
        self._known_tenants.add(tenant_id)
        return True

    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]],
                    if_new: bool = False, most_slots: int | None = None) -> bool:
        with self._connection(bounded=False) as conn, conn.transaction():
            conn.execute("SET LOCAL statement_timeout = 0")  # a seed takes as long as its size
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("tenant", tenant_id),))
            if if_new and conn.execute("SELECT 1 FROM tenants WHERE tenant = %s", (tenant_id,)).fetchone():
                return False
            conn.execute("DELETE FROM records WHERE tenant = %s", (tenant_id,))
            conn.execute("DELETE FROM slots WHERE tenant = %s", (tenant_id,))
            with conn.cursor() as cursor:
                with cursor.copy("COPY records (tenant, kind, key, doc) FROM STDIN") as copy:
                    for kind, key_field in KINDS.items():
                        if kind != "slots":
                            for record in dataset.get(kind, ()):
                                copy.write_row((tenant_id, kind, record[key_field], _dump(record)))
                with cursor.copy(f"COPY slots ({_SLOT_COLUMNS}) FROM STDIN") as copy:
                    slots, in_order = _copy_slots(copy, tenant_id, dataset.get("slots", ()))
            if not in_order:
                clash = conn.execute(_FIRST_OVERLAP, (tenant_id,)).fetchone()
                if clash is not None:
                    raise StoreError(f"the data set for tenant {tenant_id} has overlapping slots "
                                     f"({clash[0]} and the one before it); nothing was stored")
            if most_slots is not None:
                # Taken last, so slot creations wait for the count and the commit, not for the copy.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("slot total"),))
                own, others = conn.execute(
                    "SELECT coalesce(sum(slot_count) FILTER (WHERE tenant = %s), 0), "
                    "coalesce(sum(slot_count) FILTER (WHERE tenant <> %s), 0) FROM tenants",
                    (tenant_id, tenant_id)).fetchone()
                if slots > own and others + slots > most_slots:
                    raise SlotLimitReached(others, slots, most_slots)
            if slots >= _ANALYZE_FROM:  # fresh statistics for the planner before the first query
                conn.execute("ANALYZE slots")
            conn.execute("INSERT INTO tenants (tenant, settings, slot_count) VALUES (%s, %s, %s) "
                         "ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings, "
                         "slot_count = excluded.slot_count", (tenant_id, _dump(dict(settings)), slots))
        self._known_tenants.add(tenant_id)
        return True

    def close(self) -> None:
        if self._pool is None:
            return
        self._pool = None
        self._loop_connections.close()
        with _pools_lock:
            _pool_users[self.url] = _pool_users.get(self.url, 1) - 1
            pool = _pools.pop(self.url, None) if _pool_users[self.url] <= 0 else None
        if pool is not None:
            pool.close()

    # -- OAuth clients and tokens ---------------------------------------------------------
    def client_count(self) -> int:
        with self._connection() as conn:
            return conn.execute("SELECT count(*) FROM clients").fetchone()[0]

    def get_client(self, client_id: str) -> dict | None:
        return self._one("SELECT doc FROM clients WHERE client_id = %s", (client_id,))

    def add_client(self, record: dict, most: int | None = None) -> dict | None:
        with self._connection() as conn, conn.transaction():
            if most is not None:  # every registration of every process queues here: count and insert as one
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("clients"),))
            conn.execute("INSERT INTO clients (client_id, doc) SELECT %s, %s "
                         "WHERE %s::bigint IS NULL OR (SELECT count(*) FROM clients) < %s "
                         "ON CONFLICT DO NOTHING", (record["client_id"], _dump(record), most, most))
            row = conn.execute("SELECT doc FROM clients WHERE client_id = %s", (record["client_id"],)).fetchone()
            return json.loads(row[0]) if row is not None else None

    def cached_token(self, access_token: str, fresh: bool = True) -> dict | None:
        entry = self._tokens.get(access_token)
        if entry is None or fresh and time.monotonic() - entry[1] >= TOKEN_RECHECK_SECONDS:
            return None
        return dict(entry[0])

    def get_token(self, access_token: str) -> dict | None:
        token = self.cached_token(access_token)
        if token is not None:
            return token
        token = self._one("SELECT doc FROM tokens WHERE access_token = %s", (access_token,))
        if token is None:  # dropped (by any process) since it was cached
            self._tokens.pop(access_token, None)
            return None
        self._remember_token(token)
        return dict(token)

    def _remember_token(self, token: dict) -> None:
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens.clear()
        self._tokens[token["access_token"]] = (token, time.monotonic())

    def put_token(self, record: dict, now: float, keep: int | None = None) -> None:
        client = record["client_id"]
        with self._connection() as conn, conn.transaction():
            conn.execute("DELETE FROM tokens WHERE expires_at <= %s", (now,))
            if keep is not None and keep > 0:  # the client's oldest beyond keep - 1, from tokens_by_client
                dropped = conn.execute(
                    "DELETE FROM tokens WHERE access_token IN (SELECT access_token FROM tokens WHERE client_id = %s "
                    "ORDER BY expires_at DESC OFFSET %s) RETURNING access_token", (client, keep - 1)).fetchall()
                for (token,) in dropped:
                    self._tokens.pop(token, None)
            conn.execute("INSERT INTO tokens (access_token, expires_at, client_id, doc) VALUES (%s, %s, %s, %s)",
                         (record["access_token"], record["expires_at"], client, _dump(record)))
        # Known at once to this process: a request refused before its token is checked (the journal's
        # attribution, `cached_token`) still belongs to the client.
        self._remember_token(dict(record))


_ANALYZE_FROM = 50_000  # slots in a data set from which seeding refreshes the table's statistics


def _copy_slots(copy, tenant_id: str, slots: Iterable[dict]) -> tuple[int, bool]:
    """Stream slots into COPY; answer how many, and whether each calendar came in time order (then it
    was checked here for overlap, and any found raised `StoreError`; otherwise the caller checks)."""
    last: dict[tuple, tuple] = {}  # calendar (provider, place) -> (start, end) of its latest slot
    count, in_order = 0, True
    for slot in slots:
        row = slot_row(tenant_id, slot)
        copy.write_row(row)
        count += 1
        calendar, start = (row[2], row[7], row[8]), row[5]
        before = last.get(calendar)
        if before is not None:
            if start < before[0]:
                in_order = False
            elif start < before[1]:
                raise StoreError(f"the data set for tenant {tenant_id} has overlapping slots "
                                 f"({row[1]} and the one before it); nothing was stored")
        if before is None or start >= before[0]:
            last[calendar] = (start, row[6])
    return count, in_order


def _connect(url: str, where: str) -> psycopg.Connection:
    try:
        return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT * 2)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"cannot use PostgreSQL at {where}: {reason}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no answer"


POOL_WAIT_UNBOUNDED = 30.0  # seeding and other work without a deadline: the pool's usual wait


def _connection_options(budget: float | None = None) -> dict:
    """How every connection is opened: schema, autocommit, and the timeouts that notice a dead peer."""
    connect = CONNECT_TIMEOUT if budget is None else max(CONNECT_TIMEOUT, int(budget))
    return {"options": f"-c search_path={SCHEMA} -c statement_timeout={STATEMENT_TIMEOUT_MS}",
            "connect_timeout": connect, "autocommit": True, "application_name": "pokitdok-sandbox",
            "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 1, "keepalives_count": 3,
            "tcp_user_timeout": int(CALL_SECONDS * 1000)}


def _budget() -> float:
    """Seconds left for the current call: until the request's deadline, else `CALL_SECONDS`."""
    until = deadline.get()
    return CALL_SECONDS if until is None else max(0.05, until - time.monotonic())


class _Watchdog:
    """Shuts down the socket of a connection still busy past its deadline: the thread waiting on it
    gets an error at once (libpq's own waits have no end), and the pool drops the connection."""

    def __init__(self):
        self._lock = threading.Lock()
        self._watched: dict[int, tuple[float, psycopg.Connection]] = {}
        self._cut: set[int] = set()  # watched connections whose time ran out, until unwatched
        self._thread: threading.Thread | None = None

    def watch(self, conn: psycopg.Connection, seconds: float | None) -> None:
        """Cut `conn` once `seconds` have passed (None: never) unless `unwatch`ed before."""
        if seconds is None:
            return
        with self._lock:
            self._watched[id(conn)] = (time.monotonic() + seconds, conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pokitdok-pg-watchdog", daemon=True)
                self._thread.start()

    def unwatch(self, conn: psycopg.Connection) -> bool:
        """Stop watching `conn`; answer whether its time ran out (its socket was shut down)."""
        with self._lock:
            self._watched.pop(id(conn), None)
            if id(conn) in self._cut:
                self._cut.discard(id(conn))
                return True
            return False

    @contextmanager
    def watching(self, conn: psycopg.Connection, seconds: float | None):
        """The block's work on `conn` within `seconds` (None: unbounded), else `StoreUnavailable`."""
        self.watch(conn, seconds)
        try:
            yield
        except psycopg.OperationalError:
            if self.unwatch(conn):
                raise StoreUnavailable(f"no answer within {seconds:.1f}s") from None
            raise
        finally:
            self.unwatch(conn)

    def _run(self) -> None:
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._lock:
                for key, (until, conn) in list(self._watched.items()):
                    if until <= now:
                        del self._watched[key]
                        self._cut.add(key)
                        _shut_down(conn)


def _shut_down(conn: psycopg.Connection) -> None:
    try:
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, psycopg.Error):
        pass  # closed already


_watchdog = _Watchdog()


class _Checkout:
    """One call's connection from the pool (or the loop's connections), handed out without a round
    trip to ask the database whether it is still there (`_check` asks only when the connection has
    something to read).

    A connection the database ended while it sat in the pool, before its socket showed it (a
    restart, `pg_terminate_backend`), fails the first statement sent on it. Every call of this
    store starts with a read, a BEGIN or an upsert, which are harmless to send twice, so that
    statement is sent again on another connection, checked with a round trip this time. A failure
    after the first statement is the call's own. This halves the round trips of a read: with one
    worker process, the read mix went from 930 to 1,247 requests a second (`bench/run.py`)."""

    def __init__(self, pool: ConnectionPool | _LoopConnections, seconds: float, bounded: bool):
        self._pool = pool
        self._until = time.monotonic() + seconds
        self._bounded = bounded
        self._sent = False
        self._cut: bool | None = None  # once released: whether the watchdog had cut the connection
        self.conn = pool.getconn(timeout=seconds)
        _watchdog.watch(self.conn, self._left() if bounded else None)

    def execute(self, sql, params=None) -> psycopg.Cursor:
        return self._first(lambda conn: conn.execute(sql, params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with ExitStack() as stack:
            self._first(lambda conn: stack.enter_context(conn.transaction()))  # BEGIN
            yield

    def cursor(self) -> psycopg.Cursor:
        self._sent = True
        return self.conn.cursor()

    def release(self) -> bool:
        """Give the connection back to the pool (once); answer whether the watchdog cut it."""
        if self._cut is None:
            self._cut = _watchdog.unwatch(self.conn)
            self._pool.putconn(self.conn)  # a broken one is dropped
        return self._cut

    def _left(self) -> float:
        return max(0.05, self._until - time.monotonic())

    def _first(self, send):
        if self._sent:
            return send(self.conn)
        self._sent = True
        try:
            return send(self.conn)
        except psycopg.OperationalError:
            if not self.conn.broken or self.release():
                raise  # an error of the statement itself, or no answer in time
        self.conn, self._cut = self._checked_connection(), None
        return send(self.conn)

    def _checked_connection(self) -> psycopg.Connection:
        """Another pooled connection, which answered a round trip (the pool drops those that fail)."""
        for _attempt in range(POOL_SIZE + 1):
            conn = self._pool.getconn(timeout=self._left())
            _watchdog.watch(conn, self._left() if self._bounded else None)
            try:
                ConnectionPool.check_connection(conn)
                return conn
            except psycopg.OperationalError:
                cut = _watchdog.unwatch(conn)
                self._pool.putconn(conn)
                if cut:
                    raise StoreUnavailable("no answer in time") from None
        raise psycopg.OperationalError("every pooled connection was cut")


@contextmanager
def _checkout(pool: ConnectionPool | _LoopConnections, seconds: float, bounded: bool) -> Iterator[_Checkout]:
    call = _Checkout(pool, seconds, bounded)
    try:
        yield call
    except psycopg.OperationalError:
        if call.release():
            raise StoreUnavailable(f"no answer within {seconds:.1f}s") from None
        raise
    finally:
        call.release()


class _LoopAwareConnection(psycopg.Connection):
    """A connection whose waits for the database, in a call made on the event loop (under
    `greenbridge`), are awaited there: the loop answers other requests meanwhile."""

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        if greenbridge.inside():
            return greenbridge.wait(waiting.wait_async(gen, self.pgconn.socket, interval=interval, timeout=timeout))
        return super().wait(gen, interval, timeout)


class _LoopConnections:
    """The connections of calls made on the event loop, with `ConnectionPool`'s getconn and putconn.

    psycopg_pool's pool is made for threads: waiting there for a connection, or its pause after a
    failed check, would stop the loop. These are taken and given back by the loop's thread, by at
    most `offload.LOOP_CALLS` calls at once, so none is ever waited for: a call takes one kept idle
    (at most `LOOP_CONNECTIONS` are), checked like the pool's (`_check`), or else one is opened on
    a thread while the loop goes on."""

    def __init__(self, url: str):
        self._url = url
        self._idle: deque[_LoopAwareConnection] = deque()

    def getconn(self, timeout: float) -> _LoopAwareConnection:
        while self._idle:
            conn = self._idle.pop()
            try:
                _check(conn)
                return conn
            except psycopg.OperationalError:
                conn.close()
        return greenbridge.wait(asyncio.to_thread(_LoopAwareConnection.connect, self._url,
                                                  **_connection_options(timeout)))

    def putconn(self, conn: _LoopAwareConnection) -> None:
        if (conn.broken or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
                or len(self._idle) >= LOOP_CONNECTIONS):
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _has_input(conn: psycopg.Connection) -> bool:
    """Whether the database sent something to a connection nobody is using: that it is closing it,
    or has closed it, as a rule."""
    poller = select.poll()
    try:
        poller.register(conn.pgconn.socket, select.POLLIN)
    except (OSError, ValueError, psycopg.Error):
        return True
    return bool(poller.poll(0))


def _check(conn: psycopg.Connection) -> None:
    """The check of a connection handed out (by the pool, or the loop's connections): a round trip,
    within the call's time, only when the connection has something to read (see `_Checkout` for the
    one cut unseen)."""
    if _has_input(conn):
        with _watchdog.watching(conn, _budget()):
            ConnectionPool.check_connection(conn)


def _new_pool(url: str) -> ConnectionPool:
    # `check`: a connection the database has visibly closed is replaced when taken, not answered as
    # a 503; one cut unseen is replaced on its first statement (`_Checkout`).
    return ConnectionPool(url, min_size=1, max_size=POOL_SIZE, open=False, name="pokitdok-sandbox",
                          check=_check, timeout=CALL_SECONDS, kwargs=_connection_options())


def _renew_pool(url: str, old: ConnectionPool) -> ConnectionPool:
    """A fresh pool for `url` in place of `old` (whose reconnection attempts may be minutes apart)."""
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None or pool is old:
            pool = _new_pool(url)
            pool.open(wait=False)
            _pools[url] = pool
    if pool is not old:
        threading.Thread(target=old.close, daemon=True).start()  # closing waits for its workers
    return pool


def _pool(url: str, where: str) -> ConnectionPool:
    with _pools_lock:
        pool = _pools.get(url)
        if pool is None:
            pool = _new_pool(url)
            try:
                pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
            except PoolTimeout:
                pool.close()
                raise StoreError(f"cannot use PostgreSQL at {where}: no connection within "
                                 f"{CONNECT_TIMEOUT * 2}s") from None
            _pools[url] = pool
        _pool_users[url] = _pool_users.get(url, 0) + 1
        return pool


def close_pools() -> None:
    """Close every pool of this process (tests dropping their database)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _pool_users.clear()
