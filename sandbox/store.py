"""TinyDB persistence: one file, one set of tables per tenant, uuid-keyed records.

Every record is stored under its own uuid as the TinyDB document id, so a
lookup by uuid is a dict access, not a scan. The storage keeps the data in
memory (TinyDB re-reads the whole file on every access otherwise) and replaces
the file atomically on every write, so a crash leaves the previous or the new
state on disk, never a half-written file.

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
from tinydb.storages import MemoryStorage, Storage
from tinydb.table import Document, Table

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


class AtomicJSONStorage(Storage):
    """JSON file storage read once, kept in memory, replaced atomically on write."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._data: dict | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> dict | None:
        if self._data is None and self.path.exists() and self.path.stat().st_size:
            self._data = _load_database(self.path)
        return self._data

    def write(self, data: dict) -> None:
        self._data = data
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_directory(self.path.parent)

    def close(self) -> None:
        pass


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


def _fsync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class UuidTable(Table):
    """A TinyDB table whose document ids are the records' own uuids."""

    document_id_class = str

    def _get_next_id(self):
        raise TypeError("records are inserted with their uuid as document id")


class SandboxDB(TinyDB):
    table_class = UuidTable


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
        self._table(kind).insert(Document(record, doc_id=record[KINDS[kind]]))

    def replace(self, kind: str, record: dict) -> None:
        key = record[KINDS[kind]]

        def overwrite(doc: dict) -> None:
            doc.clear()
            doc.update(record)

        self._table(kind).update(overwrite, doc_ids=[key])

    def remove(self, kind: str, key: str) -> None:
        self._table(kind).remove(doc_ids=[key])

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
        if self.path is None:
            self.db = SandboxDB(storage=MemoryStorage)
        else:
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a directory, not a database file")
            self.db = SandboxDB(self.path, storage=AtomicJSONStorage)
        with self.lock:
            meta = self.db.table(_META_TABLE)
            if meta.get(doc_id="format") is None:
                meta.insert(Document({"name": FORMAT_MARK, "version": FORMAT_VERSION}, doc_id="format"))

    # -- settings kept in the file -----------------------------------------
    def meta(self, key: str) -> dict | None:
        doc = self.db.table(_META_TABLE).get(doc_id=key)
        return dict(doc) if doc is not None else None

    def put_meta(self, key: str, record: dict) -> None:
        table = self.db.table(_META_TABLE)
        table.remove(doc_ids=[key]) if table.contains(doc_id=key) else None
        table.insert(Document(record, doc_id=key))

    # -- tenants ---------------------------------------------------------
    def tenant(self, tenant_id: str) -> Tenant:
        return Tenant(self, tenant_id)

    def tenant_settings(self, tenant_id: str) -> dict | None:
        doc = self.db.table(_TENANTS_TABLE).get(doc_id=tenant_id)
        return dict(doc) if doc is not None else None

    def tenant_ids(self) -> list[str]:
        return [str(doc.doc_id) for doc in self.db.table(_TENANTS_TABLE).all()]

    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]]) -> None:
        """Replace a tenant's whole data set in one durable write."""
        tables = dict(self.db.storage.read() or {})
        for kind, key_field in KINDS.items():
            tables[table_name(tenant_id, kind)] = {r[key_field]: r for r in dataset.get(kind, ())}
        tenants = dict(tables.get(_TENANTS_TABLE, {}))
        tenants[tenant_id] = dict(settings)
        tables[_TENANTS_TABLE] = tenants
        self.db.storage.write(tables)
        for name in [*(table_name(tenant_id, kind) for kind in KINDS), _TENANTS_TABLE]:
            self.db.table(name).clear_cache()

    # -- OAuth clients and tokens ------------------------------------------
    def get_client(self, client_id: str) -> dict | None:
        doc = self.db.table(_CLIENTS_TABLE).get(doc_id=client_id)
        return dict(doc) if doc is not None else None

    def put_client(self, record: dict) -> None:
        self.db.table(_CLIENTS_TABLE).insert(Document(record, doc_id=record["client_id"]))

    def get_token(self, access_token: str) -> dict | None:
        doc = self.db.table(_TOKENS_TABLE).get(doc_id=access_token)
        return dict(doc) if doc is not None else None

    def put_token(self, record: dict) -> None:
        self.db.table(_TOKENS_TABLE).insert(Document(record, doc_id=record["access_token"]))

    def remove_tokens(self, keys: list[str]) -> None:
        if keys:
            self.db.table(_TOKENS_TABLE).remove(doc_ids=keys)

    def all_tokens(self) -> list[dict]:
        return [dict(doc) for doc in self.db.table(_TOKENS_TABLE).all()]
