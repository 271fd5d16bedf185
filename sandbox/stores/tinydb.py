"""The embedded store: one TinyDB file, one set of tables per tenant, uuid-keyed records.

Every record is stored under its own uuid as the TinyDB document id, so a
lookup by uuid is a dict access, not a scan. Reads go through TinyDB tables
over data kept in memory; writes append the change to a durable journal
instead of rewriting the file (see `journal.py`), so the cost of a request
does not grow with the data. Slots also have secondary indexes
(`slot_index.py`) for provider, patient, date and place.

TinyDB is not thread-safe, and reset and seed over HTTP run on worker threads
beside the handlers on the event loop: a transaction holds its tenant's lock
from the first check to the last change, so two bookings of one slot cannot both
succeed; clients and tokens have a lock of their own. A bulk seed generates,
indexes and encodes its records before it takes any lock, so other tenants'
requests on the event loop never wait for it. These locks live in one process,
and the file is locked for that process (`filelock.py`): this store serves one
process only.
"""

from __future__ import annotations

import heapq
import os
import threading
from collections import defaultdict, deque
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator

from tinydb import TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Table

from .base import KINDS, SlotLimitReached, Store, StoreError, TenantData
from .filelock import FileLock
from .journal import JournaledJSONStorage, apply_change, defer_fsyncs, settle as settle_fsyncs
from .slot_index import SlotIndex
from .tinydb_format import (
    CLIENTS_TABLE, FORMAT, FORMAT_VERSION, META_TABLE, TENANTS_TABLE, TOKENS_TABLE, accept_format, upgrade,
)


class UuidTable(Table):
    """A TinyDB table whose document ids are the records' own uuids."""

    document_id_class = str

    def _get_next_id(self):
        raise TypeError("records are inserted with their uuid as document id")


class SandboxDB(TinyDB):
    table_class = UuidTable


class MemoryJournal(MemoryStorage):
    """In-memory storage with the journal's `apply` (for tests and throw-away runs)."""

    def __init__(self):
        super().__init__()
        self.memory = {META_TABLE: {"format": dict(FORMAT)}}
        self._lock = threading.Lock()

    def apply(self, changes) -> None:
        with self._lock:
            for change in changes:
                apply_change(self.memory, list(change))


def table_name(tenant_id: str, kind: str) -> str:
    return f"{tenant_id}/{kind}"


class TinyTenant(TenantData):
    """One tenant's tables; used with the store lock held (see `TinyDBStore.transaction`)."""

    def __init__(self, store: "TinyDBStore", tenant_id: str):
        self._store = store
        self.id = tenant_id
        self._holds_total = False  # the store's `total_lock`, taken by `slot_total`

    def _table(self, kind: str) -> Table:
        return self._store.db.table(table_name(self.id, kind))

    def _records(self, kind: str) -> dict:
        return self._store.records(table_name(self.id, kind))

    @property
    def _index(self) -> SlotIndex:
        return self._store.slot_index(self.id)

    def _slots(self, keys: Iterable[str]) -> list[dict]:
        records = self._records("slots")
        return [dict(record) for record in map(records.get, keys) if record is not None]

    def get(self, kind: str, key: str, for_update: bool = False) -> dict | None:
        record = self._records(kind).get(key)
        return dict(record) if record is not None else None

    def all(self, kind: str) -> list[dict]:
        return [dict(doc) for doc in self._table(kind).all()]

    def insert(self, kind: str, record: dict) -> bool:
        key = record[KINDS[kind]]
        if self.get(kind, key) is not None:
            return False
        self._store.apply([("put", table_name(self.id, kind), key, record)])
        if kind == "slots":
            self._index.add(record)
        return True

    def replace(self, kind: str, record: dict) -> None:
        key = record[KINDS[kind]]
        old = self.get(kind, key)
        self._store.apply([("put", table_name(self.id, kind), key, record)])
        if kind == "slots":
            if old is not None:
                self._index.remove(old)
            self._index.add(record)

    def remove(self, kind: str, key: str) -> None:
        old = self.get(kind, key)
        self._store.apply([("del", table_name(self.id, kind), key)])
        if kind == "slots" and old is not None:
            self._index.remove(old)

    def count(self, kind: str) -> int:
        return len(self._table(kind))

    def count_booked(self) -> int:
        return sum(1 for doc in self._table("slots") if doc["booked"])

    def slot_total(self) -> int:
        if not self._holds_total:  # released when the transaction ends (`TinyDBStore.transaction`)
            self._store.total_lock.acquire()
            self._holds_total = True
        return sum(self._store.slots_by_tenant().values())

    def end(self) -> None:
        if self._holds_total:
            self._holds_total = False
            self._store.total_lock.release()

    def slots_of_provider(self, provider, start, end) -> list[dict]:
        return self._slots(self._index.of_provider(provider, _iso(start), _iso(end)))

    def open_slots_page(self, search, offset, limit):
        if not search.open_slots_of_provider:
            return None
        index, provider, start, end = self._index, search.provider, search.start, search.end
        settled = None
        if end is not None:
            try:
                settled = _iso(end - timedelta(days=index.longest_days(provider)))
            except OverflowError:  # an end in year 1
                settled = _iso(datetime.min)
        count, keys = index.open_page(provider, search.appointment_type, _iso(start), _iso(end), settled, offset,
                                      limit)
        return count, self._slots(keys)

    def slots_of_patient(self, patient) -> list[dict]:
        return self._slots(self._index.of_patient(patient))

    def slots_near(self, point, miles, start, end) -> list[dict]:
        nearby = self._index.near(point, miles, _iso(start), _iso(end))
        return self.slots_starting_between(start, end) if nearby is None else self._slots(nearby)

    def slots_starting_between(self, start, end) -> list[dict]:
        return self._slots(self._index.starting_between(_iso(start), _iso(end)))

    def overlap_candidates(self, provider, place, start, end) -> list[dict]:
        # A slot starting earlier than `start` less the provider's longest slot has ended by then.
        try:
            earliest = start - timedelta(days=self._index.longest_days(provider))
        except OverflowError:  # a start in year 1
            earliest = datetime.min
        return self._slots(self._index.overlap_candidates(provider, _iso(start), _iso(end), _iso(earliest)))

    def lock_calendar(self, provider: str) -> None:
        """Nothing to do: the transaction holds the tenant's lock, and writers of a tenant take it."""


def _iso(moment: datetime | None) -> str | None:
    """A date as the records keep it (`timefmt.format_datetime`, isoformat), the form the indexes compare."""
    return moment.isoformat() if moment is not None else None


class TinyDBStore(Store):
    """The database file: tenants' data sets, OAuth clients and tokens."""

    name = "TinyDB"

    FORMAT_VERSION = FORMAT_VERSION

    def __init__(self, path: str | os.PathLike | None):
        """`path` None keeps everything in memory (tests, throw-away runs)."""
        self.lock = threading.RLock()  # clients, tokens, settings; and the table of tenant locks
        self.total_lock = threading.Lock()  # from a transaction's `slot_total` to its end
        self._tenant_locks: dict[str, threading.RLock] = {}
        self.path = Path(path) if path is not None else None
        self.description = str(self.path) if self.path is not None else "memory"
        self._slot_indexes: dict[str, SlotIndex] = {}
        self._file_lock: FileLock | None = None
        self._token_expiries: list[tuple[float, str]] | None = None  # heap of (expires_at, token), built once
        self._client_tokens: dict[str, deque] = defaultdict(deque)  # client id -> its tokens, oldest first
        if self.path is None:
            self.db = SandboxDB(storage=MemoryJournal)
            return
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a database file")
        # The file itself, not a symbolic link to it: the lock and the journal sit beside the file (a second
        # process through another name would otherwise lock another lock file), and a compaction's rename
        # replaces the file, not the link.
        self.path = Path(os.path.realpath(self.path))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file_lock = FileLock(self.path)
            self._file_lock.acquire()
        except OSError as exc:
            raise StoreError(f"{self.path} cannot be opened for writing ({exc.strerror or exc}); give --db a path in "
                             "a directory this user can write") from None
        try:
            self.db = SandboxDB(self.path, storage=JournaledJSONStorage, accept=accept_format(self.path),
                                upgrade=upgrade, on_rollback=self._forget_derived,
                                initial={META_TABLE: {"format": dict(FORMAT)}})
            self.db.storage.read()  # open now: a damaged file is refused before anything is served
        except OSError as exc:
            self._file_lock.release()
            raise StoreError(f"{self.path} cannot be opened for writing ({exc.strerror or exc}); give --db a path "
                             "this user can write, on a disk with room") from None
        except BaseException:
            self._file_lock.release()
            raise

    @property
    def migrated_from(self) -> int | None:
        """The format this database was rewritten from when it was opened (None: it was current)."""
        storage = self.db.storage
        return getattr(storage, "migrated_from", None)

    def write_refusal(self) -> str | None:
        refusal = getattr(self.db.storage, "write_refusal", None)
        return refusal() if refusal is not None else None

    def _forget_derived(self) -> None:
        """Changes were rolled back in the storage: what was derived from them goes (rebuilt on use)."""
        with self.lock:
            self._slot_indexes.clear()
            for table in list(self.db._tables.values()):
                table.clear_cache()

    @classmethod
    def exists(cls, location) -> bool:
        return location is None or Path(location).exists()

    @classmethod
    def check(cls, location, salvage_to=None):
        from .damage import check

        if location is None:
            raise StoreError("check needs a database file (--db PATH)")
        return check(Path(location), Path(salvage_to) if salvage_to else None)

    def _tenant_lock(self, tenant_id: str) -> threading.RLock:
        lock = self._tenant_locks.get(tenant_id)
        if lock is None:
            with self.lock:
                lock = self._tenant_locks.setdefault(tenant_id, threading.RLock())
        return lock

    @contextmanager
    def transaction(self, tenant_id: str, readonly: bool = False) -> Iterator[TinyTenant]:
        with self._tenant_lock(tenant_id):
            tenant = TinyTenant(self, tenant_id)
            try:
                yield tenant
            finally:
                tenant.end()

    def apply(self, changes: list[tuple]) -> None:
        """Make changes durable: appended to the journal, never a whole-file rewrite."""
        self.db.storage.apply(changes)
        for name in {change[1] for change in changes}:
            self.db.table(name).clear_cache()

    def slot_index(self, tenant_id: str) -> SlotIndex:
        with self._tenant_lock(tenant_id):
            index = self._slot_indexes.get(tenant_id)
            if index is None:
                index = SlotIndex(TinyTenant(self, tenant_id).all("slots"))
                self._slot_indexes[tenant_id] = index
            return index

    def defer_durability(self) -> list:
        """The journal's group commit: a request's fsyncs are waited for once, before its answer."""
        return defer_fsyncs()

    async def settle(self, deferred: list) -> None:
        await settle_fsyncs(deferred)

    def warm_up(self, tenant_id: str) -> None:
        self.slot_index(tenant_id)

    def records(self, table: str) -> dict:
        """A table's records by key, as the storage holds them (read-only: copy a record to change it).
        Read straight from the storage: TinyDB's `Table.get` wraps each record in a Document first."""
        return (self.db.storage.read() or {}).get(table, {})

    def _get(self, table: str, key: str) -> dict | None:
        # No lock: records are replaced, never changed in place, and a dict lookup is atomic.
        record = self.records(table).get(key)
        return dict(record) if record is not None else None

    # -- settings kept in the file -----------------------------------------
    def meta(self, key: str) -> dict | None:
        return self._get(META_TABLE, key)

    def put_meta(self, key: str, record: dict) -> None:
        with self.lock:
            self.apply([("put", META_TABLE, key, record)])

    # -- tenants ---------------------------------------------------------
    def tenant_settings(self, tenant_id: str) -> dict | None:
        return self._get(TENANTS_TABLE, tenant_id)

    def tenant_ids(self) -> list[str]:
        return list((self.db.storage.read() or {}).get(TENANTS_TABLE, {}))  # list(dict): one atomic copy

    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]],
                    if_new: bool = False, most_slots: int | None = None) -> bool:
        if if_new and self.tenant_settings(tenant_id) is not None:
            return False
        # The slow part (a seed may hold 100k slots) before any lock: index the new slots; the
        # journal encodes the line before it takes its own.
        tables = {kind: {r[key_field]: r for r in dataset.get(kind, ())} for kind, key_field in KINDS.items()}
        index = SlotIndex(tables["slots"].values())
        changes = [("table", table_name(tenant_id, kind), records) for kind, records in tables.items()]
        changes.append(("put", TENANTS_TABLE, tenant_id, dict(settings)))
        with self._tenant_lock(tenant_id):
            if if_new and self.tenant_settings(tenant_id) is not None:
                return False
            if most_slots is None:
                self.apply(changes)
            else:
                with self.total_lock:  # as a slot creation's `slot_total`, after the tenant's lock
                    self._refuse_past(most_slots, tenant_id, len(tables["slots"]))
                    self.apply(changes)
            self._slot_indexes[tenant_id] = index
        return True

    def slots_by_tenant(self) -> dict[str, int]:
        """How many slots each tenant holds (read under `total_lock` for a count that must stay true)."""
        return {tenant: len(self.records(table_name(tenant, "slots"))) for tenant in self.tenant_ids()}

    def _refuse_past(self, most: int, tenant_id: str, slots: int) -> None:
        held = self.slots_by_tenant()
        own = held.pop(tenant_id, 0)
        others = sum(held.values())
        if slots > own and others + slots > most:
            raise SlotLimitReached(others, slots, most)

    # -- OAuth clients and tokens ------------------------------------------
    def client_count(self) -> int:
        return len(self.db.table(CLIENTS_TABLE))

    def get_client(self, client_id: str) -> dict | None:
        return self._get(CLIENTS_TABLE, client_id)

    def add_client(self, record: dict, most: int | None = None) -> dict | None:
        with self.lock:
            existing = self.get_client(record["client_id"])
            if existing is not None:
                return existing
            if most is not None and self.client_count() >= most:
                return None
            self.apply([("put", CLIENTS_TABLE, record["client_id"], record)])
            return dict(record)

    def get_token(self, access_token: str) -> dict | None:
        return self._get(TOKENS_TABLE, access_token)

    def put_token(self, record: dict, now: float, keep: int | None = None) -> None:
        """Without reading every token: the expired ones come off a heap ordered by expiry, the
        client's oldest beyond `keep` off its queue (both built from the file once, then kept)."""
        with self.lock:
            tokens = self.records(TOKENS_TABLE)
            if self._token_expiries is None:
                self._token_expiries = []
                for key, token in sorted(tokens.items(), key=lambda item: item[1]["expires_at"]):
                    self._token_expiries.append((token["expires_at"], key))
                    self._client_tokens[token["client_id"]].append(key)
            gone = set()
            while self._token_expiries and self._token_expiries[0][0] <= now:
                gone.add(heapq.heappop(self._token_expiries)[1])
            mine = self._client_tokens[record["client_id"]]
            while mine and (mine[0] in gone or mine[0] not in tokens):
                mine.popleft()
            while keep is not None and len(mine) >= keep > 0:
                gone.add(mine.popleft())
            self.apply([*(("del", TOKENS_TABLE, key) for key in gone if key in tokens),
                        ("put", TOKENS_TABLE, record["access_token"], record)])
            heapq.heappush(self._token_expiries, (record["expires_at"], record["access_token"]))
            mine.append(record["access_token"])

    def close(self) -> None:
        with self.lock:
            self.db.storage.close()
            if self._file_lock is not None:
                self._file_lock.release()
                self._file_lock = None
