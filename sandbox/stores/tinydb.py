"""The embedded store: one TinyDB file, one set of tables per tenant, uuid-keyed records.

Every record is stored under its own uuid as the TinyDB document id, so a
lookup by uuid is a dict access, not a scan. Reads go through TinyDB tables
over data kept in memory; writes append the change to a durable journal
instead of rewriting the file (see `journal.py`), so the cost of a request
does not grow with the data. Slots also have secondary indexes
(`slot_index.py`) for provider, patient, date and place.

TinyDB is not thread-safe, and reset and seed over HTTP run on worker threads
beside the handlers on the event loop: every access goes through one
re-entrant lock, and a transaction holds it from the first check to the last
change, so two bookings of one slot cannot both succeed. That lock lives in one
process: this store serves one process only.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator

from tinydb import TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Document, Table

from ..journal import JournaledJSONStorage, apply_change
from ..slot_index import SlotIndex
from ..timefmt import format_datetime
from .base import FORMAT_MARK, KINDS, Store, StoreError, TenantData

FORMAT_VERSION = 1
_META_TABLE = "_meta"
_TENANTS_TABLE = "_tenants"
_CLIENTS_TABLE = "_clients"
_TOKENS_TABLE = "_tokens"


def _load_database(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{path} is not a pokitdok-sandbox database (not valid JSON: {exc})") from None
    mark = data.get(_META_TABLE, {}).get("format", {}) if isinstance(data, dict) else {}
    if not isinstance(mark, dict) or mark.get("name") != FORMAT_MARK:
        raise StoreError(
            f"{path} is not a pokitdok-sandbox database (no {FORMAT_MARK} format mark); "
            "refusing to touch it. Point --db at a new path or delete the file."
        )
    if mark.get("version") != FORMAT_VERSION:
        raise StoreError(f"{path} has database format {mark.get('version')}, this sandbox reads {FORMAT_VERSION}")
    return data


class UuidTable(Table):
    """A TinyDB table whose document ids are the records' own uuids."""

    document_id_class = str

    def _get_next_id(self):
        raise TypeError("records are inserted with their uuid as document id")


class SandboxDB(TinyDB):
    table_class = UuidTable


class MemoryJournal(MemoryStorage):
    """In-memory storage with the journal's `apply` (for tests and throw-away runs)."""

    def apply(self, changes) -> None:
        if self.memory is None:
            self.memory = {}
        for change in changes:
            apply_change(self.memory, list(change))


def table_name(tenant_id: str, kind: str) -> str:
    return f"{tenant_id}/{kind}"


class TinyTenant(TenantData):
    """One tenant's tables; used with the store lock held (see `TinyDBStore.transaction`)."""

    def __init__(self, store: "TinyDBStore", tenant_id: str):
        self._store = store
        self.id = tenant_id

    def _table(self, kind: str) -> Table:
        return self._store.db.table(table_name(self.id, kind))

    @property
    def _index(self) -> SlotIndex:
        return self._store.slot_index(self.id)

    def _slots(self, keys: Iterable[str]) -> list[dict]:
        table = self._table("slots")
        return [dict(doc) for doc in (table.get(doc_id=key) for key in keys) if doc is not None]

    def get(self, kind: str, key: str, for_update: bool = False) -> dict | None:
        doc = self._table(kind).get(doc_id=key)
        return dict(doc) if doc is not None else None

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

    def slots_of_provider(self, provider, start, end) -> list[dict]:
        return self._slots(self._index.of_provider(provider, _iso(start), _iso(end)))

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
        return self._slots(self._index.overlap_candidates(provider, format_datetime(start), format_datetime(end),
                                                          format_datetime(earliest)))

    def lock_calendar(self, provider: str) -> None:
        """Nothing to do: the transaction holds the one store lock."""


def _iso(moment: datetime | None) -> str | None:
    return format_datetime(moment) if moment is not None else None


class TinyDBStore(Store):
    """The database file: tenants' data sets, OAuth clients and tokens."""

    multi_process = False

    def __init__(self, path: str | os.PathLike | None):
        """`path` None keeps everything in memory (tests, throw-away runs)."""
        self.lock = threading.RLock()
        self.path = Path(path) if path is not None else None
        self.description = str(self.path) if self.path is not None else "memory"
        self._slot_indexes: dict[str, SlotIndex] = {}
        if self.path is None:
            self.db = SandboxDB(storage=MemoryJournal)
        else:
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a directory, not a database file")
            self.db = SandboxDB(self.path, storage=JournaledJSONStorage, load=_load_database)
        with self.lock:
            meta = self.db.table(_META_TABLE)
            if meta.get(doc_id="format") is None:
                meta.insert(Document({"name": FORMAT_MARK, "version": FORMAT_VERSION}, doc_id="format"))

    @contextmanager
    def transaction(self, tenant_id: str, readonly: bool = False) -> Iterator[TinyTenant]:
        with self.lock:
            yield TinyTenant(self, tenant_id)

    def apply(self, changes: list[tuple]) -> None:
        """Make changes durable: appended to the journal, never a whole-file rewrite."""
        self.db.storage.apply(changes)
        for name in {change[1] for change in changes}:
            self.db.table(name).clear_cache()

    def slot_index(self, tenant_id: str) -> SlotIndex:
        with self.lock:
            index = self._slot_indexes.get(tenant_id)
            if index is None:
                index = SlotIndex(TinyTenant(self, tenant_id).all("slots"))
                self._slot_indexes[tenant_id] = index
            return index

    def warm_up(self, tenant_id: str) -> None:
        self.slot_index(tenant_id)

    def _get(self, table: str, key: str) -> dict | None:
        with self.lock:
            doc = self.db.table(table).get(doc_id=key)
            return dict(doc) if doc is not None else None

    # -- settings kept in the file -----------------------------------------
    def meta(self, key: str) -> dict | None:
        return self._get(_META_TABLE, key)

    def put_meta(self, key: str, record: dict) -> None:
        with self.lock:
            self.apply([("put", _META_TABLE, key, record)])

    # -- tenants ---------------------------------------------------------
    def tenant_settings(self, tenant_id: str) -> dict | None:
        return self._get(_TENANTS_TABLE, tenant_id)

    def tenant_ids(self) -> list[str]:
        with self.lock:
            return [str(doc.doc_id) for doc in self.db.table(_TENANTS_TABLE).all()]

    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]],
                    if_new: bool = False) -> bool:
        with self.lock:
            if if_new and self.tenant_settings(tenant_id) is not None:
                return False
            changes = [("table", table_name(tenant_id, kind), {r[key_field]: r for r in dataset.get(kind, ())})
                       for kind, key_field in KINDS.items()]
            changes.append(("put", _TENANTS_TABLE, tenant_id, dict(settings)))
            self.apply(changes)
            self._slot_indexes.pop(tenant_id, None)
            return True

    # -- OAuth clients and tokens ------------------------------------------
    def get_client(self, client_id: str) -> dict | None:
        return self._get(_CLIENTS_TABLE, client_id)

    def add_client(self, record: dict) -> dict:
        with self.lock:
            existing = self.get_client(record["client_id"])
            if existing is not None:
                return existing
            self.apply([("put", _CLIENTS_TABLE, record["client_id"], record)])
            return dict(record)

    def get_token(self, access_token: str) -> dict | None:
        return self._get(_TOKENS_TABLE, access_token)

    def put_token(self, record: dict, now: float) -> None:
        with self.lock:
            expired = [doc.doc_id for doc in self.db.table(_TOKENS_TABLE) if doc["expires_at"] <= now]
            self.apply([*(("del", _TOKENS_TABLE, key) for key in expired),
                        ("put", _TOKENS_TABLE, record["access_token"], record)])

    def close(self) -> None:
        with self.lock:
            self.db.storage.close()
