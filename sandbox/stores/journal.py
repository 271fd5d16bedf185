"""Durable TinyDB storage whose per-request cost does not grow with the data.

TinyDB's JSONStorage rewrites the whole file on every write. Here the TinyDB
JSON file is a *snapshot*, and each change a request makes is appended to a
journal beside it (`<db>.journal`, one JSON line per change set, fsynced
before the request is answered). Opening the database loads the snapshot and
replays the journal; when the journal outgrows the snapshot it is folded into
a new snapshot on a background thread (written to a temporary file and renamed,
so a crash leaves the old or the new snapshot, never half of one).

Group commit: a change is appended (and flushed to the operating system) and applied in memory
at once, under the storage's lock; its fsync may wait. Within a request (`defer_fsyncs()`, set
by the outermost layer) the request notes how far the journal must be durable, and its answer
waits (`settle()`) for one fsync that covers it, on a worker thread: concurrent writes share one
fsync, and the event loop serves other requests meanwhile. An acknowledged write is durable
before its answer leaves, as before; what a request reads may include another's change that is
not durable yet (that change is not acknowledged until it is). Outside a request (commands,
seeds on worker threads without one) `apply` fsyncs before it returns.

Damage is never repaired silently. A crash in the middle of an append leaves at
most one torn last line (no newline yet): it was never acknowledged, so it is
dropped, and the drop is logged. Anything else (an empty or unreadable snapshot,
a missing snapshot beside a journal, a bad or wrong-shaped line anywhere before
the last) refuses to open with `DamagedDatabase`, naming the file, the line and
what to do, and nothing is written; `damage.py` reports and salvages such files.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from contextvars import ContextVar
from pathlib import Path
from typing import Callable, Iterable

from tinydb.storages import Storage

from .base import StoreError

log = logging.getLogger("pokitdok_sandbox")

# The fsyncs a request's changes still need: (storage, how far its journal must be durable).
_deferred: ContextVar[list | None] = ContextVar("pokitdok_sandbox.deferred_fsyncs", default=None)


def defer_fsyncs() -> list:
    """From here on in this context (one request), changes note the fsync they need instead of
    waiting for it; answer the list they note it in, for `settle`."""
    pending: list = []
    _deferred.set(pending)
    return pending


async def settle(pending: list) -> None:
    """Wait (on a worker thread) until every change noted in `pending` is durable."""
    while pending:
        storage, position = pending.pop()
        if storage.synced < position:
            await asyncio.get_running_loop().run_in_executor(None, storage.sync_to, position)


# A change: ("put", table, key, record) | ("del", table, key) | ("table", table, {key: record})
Change = tuple

# The journal is folded into a new snapshot once it outgrows the snapshot and this (the
# environment variable lets the crash tests compact often).
COMPACT_MIN_BYTES = int(os.environ.get("POKITDOK_SANDBOX_COMPACT_MIN_BYTES", 4 * 1024 * 1024))


class DamagedDatabase(StoreError):
    """The snapshot or the journal is not what this sandbox wrote: refused, left as it is."""


def what_to_do(path: Path) -> str:
    return (f"Nothing was changed. See what is readable with `pokitdok-sandbox check --db {path}`; copy every "
            f"valid record into a new database with `pokitdok-sandbox check --db {path} --salvage NEW.json` "
            "(the original is kept), then serve NEW.json")


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


# -- shapes ---------------------------------------------------------------------------------------

def change_problem(change) -> str | None:
    """Why a journal change is not one this sandbox writes, or None."""
    if not isinstance(change, list) or not change or not isinstance(change[0], str):
        return "a change that is not a list starting with its kind"
    kind = change[0]
    if kind == "put":
        ok = len(change) == 4 and isinstance(change[1], str) and isinstance(change[2], str) \
            and isinstance(change[3], dict)
    elif kind == "del":
        ok = len(change) == 3 and isinstance(change[1], str) and isinstance(change[2], str)
    elif kind == "table":
        ok = len(change) == 3 and isinstance(change[1], str) and isinstance(change[2], dict) \
            and all(isinstance(record, dict) for record in change[2].values())
    else:
        return f"an unknown kind of change {kind!r}"
    return None if ok else f"a {kind!r} change of the wrong shape"


def line_problem(changes) -> str | None:
    if not isinstance(changes, list) or not changes:
        return "not a list of changes"
    return next((problem for problem in map(change_problem, changes) if problem), None)


_JSON_TYPES = {list: "array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null"}


def snapshot_problem(data) -> str | None:
    """Why a parsed snapshot is not shaped like {table: {key: record}}, or None."""
    if not isinstance(data, dict):
        return f"JSON {_JSON_TYPES.get(type(data), type(data).__name__)}, not an object of tables"
    for name, table in data.items():
        if not isinstance(table, dict):
            return f"table {name!r} is not an object of records"
        for key, record in table.items():
            if not isinstance(record, dict):
                return f"record {key!r} of table {name!r} is not an object"
    return None


def apply_change(data: dict, change: list) -> None:
    kind, table = change[0], change[1]
    if kind == "put":
        data.setdefault(table, {})[change[2]] = change[3]
    elif kind == "del":
        data.get(table, {}).pop(change[2], None)
    elif kind == "table":
        data[table] = change[2]
    else:
        raise ValueError(f"unknown journal change {kind!r}")


def encode(changes: list) -> list[bytes]:
    """One journal line, in pieces of about a megabyte. A whole table is encoded record by record:
    the same bytes as one `json.dumps`, but a run of short calls, so a bulk seed on a worker thread
    lets the event loop run between them (one call over 100k records holds the GIL for most of a
    second, and so would joining or writing 50 MB at once)."""
    pieces: list[bytes] = []
    for number, change in enumerate(changes):
        pieces.append(b"[" if number == 0 else b",")
        if change[0] == "table":
            pieces.append(f'["table",{_dumps(change[1])},'.encode("utf-8"))
            pieces += _records(change[2])
            pieces.append(b"]")
        else:
            pieces.append(_dumps(list(change)).encode("utf-8"))
    pieces.append(b"]\n")
    return pieces


def _records(table: dict, piece: int = 1 << 20) -> list[bytes]:
    """`{"key":record,...}` in pieces of about `piece` bytes."""
    pieces, current, size = [], ["{"], 1
    for number, (key, record) in enumerate(table.items()):
        text = f"{',' if number else ''}{_dumps(key)}:{_dumps(record)}"
        current.append(text)
        size += len(text)
        if size >= piece:
            pieces.append("".join(current).encode("utf-8"))
            current, size = [], 0
    current.append("}")
    pieces.append("".join(current).encode("utf-8"))
    return pieces


def _dumps(value) -> str:
    # dumps, not dump: json.dump streams through the pure-Python encoder, dumps uses the C one.
    return json.dumps(value, separators=(",", ":"))


# -- reading --------------------------------------------------------------------------------------

def read_journal(path: Path, on_change: Callable[[list], None]) -> int:
    """Feed every change of a journal to `on_change`; answer the length of its intact part.

    A last line without its newline is torn (a crash mid-append) and not fed; any other bad
    line raises `DamagedDatabase`, naming it. `on_change` sees nothing of a bad line.
    """
    *lines, torn = path.read_bytes().split(b"\n")  # `torn`: what follows the last newline
    good = 0
    for number, line in enumerate(lines, start=1):
        try:
            changes = json.loads(line)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DamagedDatabase(f"{path}: line {number} is not valid JSON ({exc}); the journal is damaged "
                                  f"before its end. {what_to_do(_database_of(path))}") from None
        problem = line_problem(changes)
        if problem:
            raise DamagedDatabase(f"{path}: line {number} is {problem}, not a change this sandbox writes; the "
                                  f"journal is damaged before its end. {what_to_do(_database_of(path))}")
        for change in changes:
            on_change(change)
        good += len(line) + 1
    return good


def _database_of(journal: Path) -> Path:
    return journal.with_name(journal.name.removesuffix(".journal"))


# -- the storage ----------------------------------------------------------------------------------

class JournaledJSONStorage(Storage):
    def __init__(self, path: str | os.PathLike, load=None, initial: dict | None = None):
        """`load(path) -> dict` reads and checks a snapshot (default: JSON of the right shape);
        `initial`: the data a new database starts with (written as its first snapshot)."""
        self.path = Path(path)
        self.journal_path = journal_path(self.path)
        self._load = load or load_snapshot
        self._initial = initial or {}
        self._data: dict | None = None
        self._journal = None
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        # Held while appending and changing the data in memory; the data is never changed in
        # place otherwise, so readers (and a snapshot copy) need no lock.
        self._lock = threading.RLock()
        self._compactor: threading.Thread | None = None
        # Bytes ever appended, and how many of them are known durable (both only grow; a
        # compaction, which fsyncs what it keeps, makes everything appended so far durable).
        self._appended = 0
        self.synced = 0
        self._sync_lock = threading.Lock()  # one fsync at a time; those waiting meanwhile share the next

    # -- TinyDB Storage interface -------------------------------------------
    def read(self) -> dict | None:
        if self._data is None:
            self._open()
        return self._data or None

    def write(self, data: dict) -> None:
        """A whole-database write (TinyDB's own table operations): a new snapshot."""
        with self._lock:
            self._data = data
            self._write_snapshot(self._data, self._journal_bytes)

    def close(self) -> None:
        compactor = self._compactor
        if compactor is not None:
            compactor.join()
        if self._journal is not None:
            self.sync_to(self._appended)
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # -- the fast path ---------------------------------------------------------
    def apply(self, changes: Iterable[Change]) -> None:
        """Append changes to the journal, as one line, and apply them in memory; durable before
        this returns, or, within a request (`defer_fsyncs`), before its answer (`settle`)."""
        changes = [list(change) for change in changes]
        if not changes:
            return
        if self._data is None:
            self._open()
        line = encode(changes)  # before the lock: a bulk line takes a while
        with self._lock:
            for piece in line:  # a crash in between leaves a torn last line: never acknowledged, dropped
                self._journal.write(piece)
            self._journal.flush()
            size = sum(map(len, line))
            self._journal_bytes += size
            self._appended += size
            position = self._appended
            for change in changes:
                apply_change(self._data, change)
            if self._journal_bytes > max(COMPACT_MIN_BYTES, self._snapshot_bytes) and self._compactor is None:
                self._compactor = threading.Thread(target=self.compact, name="pokitdok-sandbox-compaction",
                                                   daemon=True)
                self._compactor.start()
        pending = _deferred.get()
        if pending is None:
            self.sync_to(position)
        else:
            pending.append((self, position))

    def sync_to(self, position: int) -> None:
        """Return once the journal is durable up to `position` (bytes ever appended): one fsync
        covers every append made before it started, so writers waiting together share it."""
        if self.synced >= position:
            return
        with self._sync_lock:
            if self.synced >= position:
                return
            with self._lock:  # a compaction may replace the file: fsync a handle of its own
                target = self._appended
                handle = os.dup(self._journal.fileno())
            try:
                os.fsync(handle)
            finally:
                os.close(handle)
            self.synced = max(self.synced, target)

    def compact(self) -> None:
        """Fold the journal into a new snapshot; writes go on meanwhile.

        The tables are copied (shallowly: records are replaced, never changed in place) and the
        journal's length noted under the lock; the copy is written without it; then the journal
        keeps only what was appended since. A crash at any point leaves a snapshot and a journal
        that replay to every acknowledged write (replaying changes a snapshot already holds is harmless).
        """
        try:
            with self._lock:
                copy = {name: dict(table) for name, table in self._data.items()}
                folded = self._journal_bytes
            self._write_snapshot(copy, folded)
        except Exception:
            log.exception("compacting %s failed; the journal keeps every change", self.path)
        finally:
            self._compactor = None

    # -- internals ---------------------------------------------------------------
    def _open(self) -> None:
        with self._lock:
            if self._data is not None:
                return
            # Temporary files of a compaction a crash interrupted (ours: the caller holds the file lock).
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink(missing_ok=True)
            journal_size = self.journal_path.stat().st_size if self.journal_path.exists() else 0
            if not self.path.exists():
                if journal_size:
                    raise DamagedDatabase(
                        f"{self.path} is missing but its journal {self.journal_path} holds {journal_size} bytes "
                        f"of changes; refusing to start afresh over them (restore the snapshot, or move the "
                        f"journal away to start a new database). {what_to_do(self.path)}")
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._data = dict(self._initial)
                self._write_snapshot(self._data, 0)
                return
            data = self._load(self.path)
            self._snapshot_bytes = self.path.stat().st_size
            if journal_size:
                self._replay(data)
            self._data = data
            self._journal = open(self.journal_path, "ab")
            self._journal_bytes = self._journal.tell()

    def _replay(self, data: dict) -> None:
        good = read_journal(self.journal_path, lambda change: apply_change(data, change))
        size = self.journal_path.stat().st_size
        if good != size:
            # Only a torn last line gets here (anything else raised): cut it, or the next append would
            # glue a good line to it.
            log.warning("%s: dropped a torn last line (%d bytes), left by a crash in the middle of an append; "
                        "that write was never acknowledged", self.journal_path, size - good)
            with open(self.journal_path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())

    def _write_snapshot(self, data: dict, folded: int) -> None:
        """Write `data` as the snapshot; keep only the journal bytes after `folded`."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as handle:
            handle.write(b"{")
            for number, (name, table) in enumerate(data.items()):
                handle.write(f"{',' if number else ''}{_dumps(name)}:".encode("utf-8"))
                for piece in _records(table):
                    handle.write(piece)
            handle.write(b"}")
            handle.flush()
            os.fsync(handle.fileno())
        with self._lock:
            os.replace(tmp, self.path)
            _fsync_directory(self.path.parent)
            self._snapshot_bytes = self.path.stat().st_size
            # The snapshot holds the journal up to `folded`: keep the rest, in a journal replaced atomically.
            tail = b""
            if self._journal is not None:
                self._journal.close()
                tail = self.journal_path.read_bytes()[folded:]
            new_journal = self.journal_path.with_name(f".{self.journal_path.name}.{os.getpid()}.tmp")
            with open(new_journal, "wb") as handle:
                handle.write(tail)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(new_journal, self.journal_path)
            _fsync_directory(self.path.parent)
            self._journal = open(self.journal_path, "ab")
            self._journal_bytes = len(tail)
            self.synced = max(self.synced, self._appended)  # all of it is in the snapshot or the new journal


def load_snapshot(path: Path) -> dict:
    if path.stat().st_size == 0:
        raise DamagedDatabase(f"{path} is empty (0 bytes), not a database. {what_to_do(path)}")
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedDatabase(f"{path} is not valid JSON ({exc}). {what_to_do(path)}") from None
    problem = snapshot_problem(data)
    if problem:
        raise DamagedDatabase(f"{path} is {problem}. {what_to_do(path)}")
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
