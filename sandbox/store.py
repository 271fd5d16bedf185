"""TinyDB persistence: one file, one set of tables per tenant, uuid-keyed records.

Every record is stored under its own uuid as the TinyDB document id, so a
lookup by uuid is a dict access, not a scan. Reads go through TinyDB tables
over data kept in memory; writes go through `Store.apply`, which appends the
change to a durable journal instead of rewriting the file (see `journal.py`),
so the cost of a request does not grow with the data. Slots also have
secondary indexes (`slot_index.py`) for provider, patient, date and place.

TinyDB is not thread-safe and Connexion runs handlers in a thread pool: every
access goes through `Store.lock`. The rules module holds that lock across a
whole check-then-change so two bookings of one slot cannot both succeed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Callable, Iterable

from tinydb import TinyDB
from tinydb.storages import MemoryStorage
from tinydb.table import Document, Table

from .journal import JournaledJSONStorage, apply_change
from .slot_index import SlotIndex

# The key field of each kind of record.
KINDS = {
    "schedulers": "scheduler_uuid",
    "appointment_types": "appointment_type_uuid",
    "providers": "pd_provider_uuid",
    "patients": "uuid",
    "slots": "pd_appointment_uuid",
    "registrations": "registration_id",
}
FORMAT_MARK = "pokitdok-sandbox"
FORMAT_VERSION = 1
_META_TABLE = "_meta"
_TENANTS_TABLE = "_tenants"
_CLIENTS_TABLE = "_clients"
_TOKENS_TABLE = "_tokens"


class StoreError(Exception):
    """The database file cannot be used (corrupt, foreign, unwritable)."""


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


class Tenant:
    """One client's isolated data set: a table per kind of record."""

    def __init__(self, store: "Store", tenant_id: str):
        self._store = store
        self.id = tenant_id

    def _table(self, kind: str) -> Table:
        return self._store.db.table(table_name(self.id, kind))

    def get(self, kind: str, key: str) -> dict | None:
        doc = self._table(kind).get(doc_id=key)
        return dict(doc) if doc is not None else None

    def all(self, kind: str) -> list[dict]:
        return [dict(doc) for doc in self._table(kind).all()]

    def find(self, kind: str, predicate: Callable[[dict], bool]) -> list[dict]:
        return [dict(doc) for doc in self._table(kind) if predicate(doc)]

    def insert(self, kind: str, record: dict) -> None:
        key = record[KINDS[kind]]
        if self.get(kind, key) is not None:
            raise ValueError(f"{kind} {key} exists already")
        self._store.apply([("put", table_name(self.id, kind), key, record)])
        if kind == "slots":
            self.slot_index.add(record)

    def replace(self, kind: str, record: dict) -> None:
        key = record[KINDS[kind]]
        old = self.get(kind, key)
        self._store.apply([("put", table_name(self.id, kind), key, record)])
        if kind == "slots":
            if old is not None:
                self.slot_index.remove(old)
            self.slot_index.add(record)

    def remove(self, kind: str, key: str) -> None:
        old = self.get(kind, key)
        self._store.apply([("del", table_name(self.id, kind), key)])
        if kind == "slots" and old is not None:
            self.slot_index.remove(old)

    def get_many(self, kind: str, keys) -> list[dict]:
        table = self._table(kind)
        return [dict(doc) for doc in (table.get(doc_id=key) for key in keys) if doc is not None]

    @property
    def slot_index(self) -> SlotIndex:
        return self._store.slot_index(self.id)

    def count(self, kind: str) -> int:
        return len(self._table(kind))


def table_name(tenant_id: str, kind: str) -> str:
    return f"{tenant_id}/{kind}"


class Store:
    """The database: tenants' data sets, OAuth clients and tokens."""

    def __init__(self, path: str | os.PathLike | None):
        """`path` None keeps everything in memory (tests, throw-away runs)."""
        self.lock = threading.RLock()
        self.path = Path(path) if path is not None else None
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

    def apply(self, changes: list[tuple]) -> None:
        """Make changes durable: appended to the journal, never a whole-file rewrite."""
        self.db.storage.apply(changes)
        for name in {change[1] for change in changes}:
            self.db.table(name).clear_cache()

    def slot_index(self, tenant_id: str) -> SlotIndex:
        index = self._slot_indexes.get(tenant_id)
        if index is None:
            index = SlotIndex(self.tenant(tenant_id).all("slots"))
            self._slot_indexes[tenant_id] = index
        return index

    # -- settings kept in the file -----------------------------------------
    def meta(self, key: str) -> dict | None:
        doc = self.db.table(_META_TABLE).get(doc_id=key)
        return dict(doc) if doc is not None else None

    def put_meta(self, key: str, record: dict) -> None:
        self.apply([("put", _META_TABLE, key, record)])

    # -- tenants ---------------------------------------------------------
    def tenant(self, tenant_id: str) -> Tenant:
        return Tenant(self, tenant_id)

    def tenant_settings(self, tenant_id: str) -> dict | None:
        doc = self.db.table(_TENANTS_TABLE).get(doc_id=tenant_id)
        return dict(doc) if doc is not None else None

    def tenant_ids(self) -> list[str]:
        return [str(doc.doc_id) for doc in self.db.table(_TENANTS_TABLE).all()]

    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]]) -> None:
        """Replace a tenant's whole data set in one durable change."""
        changes = [("table", table_name(tenant_id, kind), {r[key_field]: r for r in dataset.get(kind, ())})
                   for kind, key_field in KINDS.items()]
        changes.append(("put", _TENANTS_TABLE, tenant_id, dict(settings)))
        self.apply(changes)
        self._slot_indexes.pop(tenant_id, None)

    # -- OAuth clients and tokens ------------------------------------------
    def get_client(self, client_id: str) -> dict | None:
        doc = self.db.table(_CLIENTS_TABLE).get(doc_id=client_id)
        return dict(doc) if doc is not None else None

    def put_client(self, record: dict) -> None:
        self.apply([("put", _CLIENTS_TABLE, record["client_id"], record)])

    def get_token(self, access_token: str) -> dict | None:
        doc = self.db.table(_TOKENS_TABLE).get(doc_id=access_token)
        return dict(doc) if doc is not None else None

    def put_token(self, record: dict, expired: list[str] = ()) -> None:
        """Store a token, dropping expired ones in the same change."""
        self.apply([*(("del", _TOKENS_TABLE, key) for key in expired),
                    ("put", _TOKENS_TABLE, record["access_token"], record)])

    def all_tokens(self) -> list[dict]:
        return [dict(doc) for doc in self.db.table(_TOKENS_TABLE).all()]
