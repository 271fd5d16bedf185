"""Durable TinyDB storage whose per-request cost does not grow with the data.

TinyDB's JSONStorage rewrites the whole file on every write. Here the TinyDB
JSON file is a *snapshot*, and each change a request makes is appended to a
journal beside it (`<db>.journal`, one JSON line per change set, fsynced
before the request is answered). Opening the database loads the snapshot and
replays the journal; when the journal outgrows the snapshot it is folded into
a new snapshot on a background thread (written to a temporary file and renamed,
so a crash leaves the old or the new snapshot, never half of one).

Group commit: a change is appended (written to the operating system) and applied in memory
at once, under the storage's lock; its fsync may wait. Within a request (`defer_fsyncs()`, set
by the outermost layer) the request notes how far the journal must be durable, and its answer
waits (`settle()`) for one fsync that covers it, on a worker thread: concurrent writes share one
fsync, and the event loop serves other requests meanwhile. An acknowledged write is durable
before its answer leaves, as before; what a request reads may include another's change that is
not durable yet (that change is not acknowledged until it is). Outside a request (commands,
seeds on worker threads without one) `apply` fsyncs before it returns.

A failed write is a failed write. The journal is written without a buffer of our own: when a
write fails (a full disk, an I/O error) the file is cut back to where the line began and the
change is not applied, so nothing of it stays in memory, in a buffer or on disk; the caller
gets `StoreUnavailable` (a 503), and so does every write after it until one succeeds (each is
the probe; `write_refusal()` probes too, for the health check). Reads go on. When an fsync
fails, the kernel may have dropped what it held: every change not yet durable is rolled back
in memory and cut from the journal, the requests waiting for it get a 503 instead of their
answer, and the store refuses writes until it is restarted (what was acknowledged is on disk).

Snapshot and journal belong together (format 2). The snapshot ends with a seal (`_seal`): a
generation id, the CRC-32 of every byte before the seal, and which journal it succeeds; the
journal starts with a header naming the snapshot's generation, and each line ends with the
CRC-32 of its JSON and a running checksum chained from the header. So a missing journal, one
of another generation (an older copy, another database's), a line changed, dropped or moved,
and a changed byte in the snapshot are refused, even when the JSON stays valid. A compaction
writes the new snapshot (sealed with the journal it folded: generation, length, checksum)
before the new journal: a crash in between is recognised and finished on the next open. A
database of format 1 (no seal, no checksums) is read as it is and rewritten in format 2.

Damage is never repaired silently. A crash in the middle of an append leaves at most one
torn last line (no newline yet): it is dropped and the drop logged. Anything else refuses to
open with `DamagedDatabase`, naming the file, the line and what to do, and nothing is written;
`examine` is that verdict without opening, which `check` (`damage.py`) gives too.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import secrets
import threading
import time
import zlib
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from tinydb.storages import Storage

from .base import StoreError, StoreUnavailable

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
    """Wait (on a worker thread) until every change noted in `pending` is durable; raise
    `StoreUnavailable` if one of them was rolled back instead (a failed fsync)."""
    failure = None
    while pending:
        storage, position = pending.pop()
        try:
            if storage.synced < position:
                await asyncio.get_running_loop().run_in_executor(None, storage.sync_to, position)
            else:
                storage.check_kept(position)
        except StoreUnavailable as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


# A change: ("put", table, key, record) | ("del", table, key) | ("table", table, {key: record})
Change = tuple

# The journal is folded into a new snapshot once it outgrows the snapshot and this (the
# environment variable lets the crash tests compact often).
COMPACT_MIN_BYTES = int(os.environ.get("POKITDOK_SANDBOX_COMPACT_MIN_BYTES", 4 * 1024 * 1024))
# After a failed compaction (a full disk), the next try waits this long.
COMPACT_RETRY_SECONDS = 30.0
# What the health check writes (and removes) to learn whether the disk takes writes again.
PROBE_BYTES = 64 * 1024
SEAL_TABLE = "_seal"
# The generation a sealed snapshot names as its predecessor when it was rewritten from format 1.
LEGACY = "format-1"


class DamagedDatabase(StoreError):
    """The snapshot or the journal is not what this sandbox wrote: refused, left as it is."""


def what_to_do(path: Path) -> str:
    return (f"Nothing was changed. See what is readable with `pokitdok-sandbox check --db {path}`; copy every "
            f"valid record into a new database with `pokitdok-sandbox check --db {path} --salvage NEW.json` "
            "(the original is kept), then serve NEW.json")


def journal_path(path: Path) -> Path:
    return path.with_name(path.name + ".journal")


def torn_line_note(path: Path, size: int) -> str:
    """What a torn last line means, as far as anyone can know."""
    return (f"{path} ends inside a line ({size} bytes after its last complete line). A crash in the middle of "
            "an append leaves that, and such a write was never acknowledged; if the file was cut short some other "
            "way (copied while in use, truncated), that line was a write that was acknowledged, and it is lost")


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


_MISSING = object()


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


def _undo_of(data: dict, change: list) -> tuple:
    """What puts `data` back as it is, once `change` is applied."""
    table = change[1]
    if change[0] == "table":
        return (table, None, data.get(table, _MISSING))
    return (table, change[2], data.get(table, {}).get(change[2], _MISSING))


def _undo(data: dict, undo: tuple) -> None:
    table, key, old = undo
    if key is None:
        if old is _MISSING:
            data.pop(table, None)
        else:
            data[table] = old
    elif old is _MISSING:
        data.get(table, {}).pop(key, None)
    else:
        data.setdefault(table, {})[key] = old


def encode(changes: list) -> list[bytes]:
    """One journal line's JSON, in pieces of about a megabyte (without its checksums and newline).
    A whole table is encoded record by record: the same bytes as one `json.dumps`, but a run of
    short calls, so a bulk seed on a worker thread lets the event loop run between them (one call
    over 100k records holds the GIL for most of a second, and so would joining or writing 50 MB at once)."""
    pieces: list[bytes] = []
    for number, change in enumerate(changes):
        pieces.append(b"[" if number == 0 else b",")
        if change[0] == "table":
            pieces.append(f'["table",{_dumps(change[1])},'.encode("utf-8"))
            pieces += _records(change[2])
            pieces.append(b"]")
        else:
            pieces.append(_dumps(list(change)).encode("utf-8"))
    pieces.append(b"]")
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


# -- checksums -------------------------------------------------------------------------------------
# A journal line of format 2: `<JSON> <CRC-32 of the JSON, 8 hex><running checksum, 8 hex>\n`. The
# running checksum starts as the CRC-32 of the header line and takes in each line's CRC in turn.

_TRAILER = 17  # b" " + 16 hex digits


def _header(generation: str) -> bytes:
    return _dumps({"journal": generation}).encode("utf-8") + b"\n"


def _chained(chain: int, body_crc: int) -> int:
    return zlib.crc32(b"%08x" % body_crc, chain)


def _crc(pieces: Iterable[bytes]) -> int:
    crc = 0
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    return crc


def _trailer(body_crc: int, chain: int) -> bytes:
    return b" %08x%08x\n" % (body_crc, chain)


def split_line(line: bytes) -> tuple[bytes, int, int] | None:
    """A format-2 line (without its newline) as (JSON, its CRC, the running checksum); None if it has no trailer."""
    if len(line) <= _TRAILER or line[-_TRAILER:-_TRAILER + 1] != b" ":
        return None
    try:
        return line[:-_TRAILER], int(line[-16:-8], 16), int(line[-8:], 16)
    except ValueError:
        return None


def header_generation(line: bytes) -> str | None:
    try:
        header = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    generation = header.get("journal") if isinstance(header, dict) else None
    return generation if isinstance(generation, str) and len(header) == 1 else None


def _rechained(lines: bytes, chain: int) -> tuple[bytes, int]:
    """Complete format-2 lines given a new running checksum from `chain` on: (their bytes, the last checksum)."""
    out = []
    for line in lines.split(b"\n")[:-1]:
        body, body_crc, _old = split_line(line)
        chain = _chained(chain, body_crc)
        out.append(body + _trailer(body_crc, chain))
    return b"".join(out), chain


# -- reading --------------------------------------------------------------------------------------

@dataclass
class JournalRead:
    generation: str | None  # None: a journal of format 1 (no header, no checksums)
    good: int  # bytes of its intact part: all but a torn last line
    chain: int  # the running checksum at `good`
    torn: int  # bytes of a torn last line (0: none)
    mark_chain: int | None = None  # the running checksum where a line ends at `mark`, if one does


def read_journal(path: Path, on_change: Callable[[list], None], legacy: bool = False, skip_to: int = 0,
                 mark: int | None = None) -> JournalRead:
    """Feed every change of a journal to `on_change` (those of lines ending after `skip_to`); answer
    what was read. `legacy`: format 1, without header or checksums.

    A last line without its newline is torn (a crash mid-append) and not fed; any other bad
    line raises `DamagedDatabase`, naming it. `on_change` sees nothing of a bad line.
    """
    *lines, torn = path.read_bytes().split(b"\n")  # `torn`: what follows the last newline
    database = _database_of(path)
    generation, chain, offset, first = None, 0, 0, 1
    if not legacy:
        if not lines:
            raise DamagedDatabase(f"{path} has no header line{' (it is empty)' if not torn else ''}, so it cannot be "
                                  f"matched with its snapshot. {what_to_do(database)}")
        generation = header_generation(lines[0])
        if generation is None:
            raise DamagedDatabase(f"{path}: line 1 is not this sandbox's journal header; the journal is damaged or "
                                  f"not this database's. {what_to_do(database)}")
        chain = zlib.crc32(lines[0] + b"\n")
        offset, first = len(lines[0]) + 1, 2
    mark_chain = chain if mark == offset else None
    for number, line in enumerate(lines[first - 1:], start=first):
        body = line
        if not legacy:
            parts = split_line(line)
            if parts is None:
                raise DamagedDatabase(f"{path}: line {number} has no checksum, so it is not a line this sandbox "
                                      f"wrote; the journal is damaged before its end. {what_to_do(database)}")
            body, body_crc, stored = parts
            if zlib.crc32(body) != body_crc:
                raise DamagedDatabase(f"{path}: line {number} was changed after it was written (its checksum does "
                                      f"not match); the journal is damaged. {what_to_do(database)}")
            chain = _chained(chain, body_crc)
            if chain != stored:
                raise DamagedDatabase(f"{path}: line {number} does not follow the line before it (a line before it "
                                      f"is missing, repeated or out of order); the journal is damaged. "
                                      f"{what_to_do(database)}")
        try:
            changes = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise DamagedDatabase(f"{path}: line {number} is not valid JSON ({exc}); the journal is damaged "
                                  f"before its end. {what_to_do(database)}") from None
        problem = line_problem(changes)
        if problem:
            raise DamagedDatabase(f"{path}: line {number} is {problem}, not a change this sandbox writes; the "
                                  f"journal is damaged before its end. {what_to_do(database)}")
        offset += len(line) + 1
        if offset > skip_to:
            for change in changes:
                on_change(change)
        if offset == mark:
            mark_chain = chain
    return JournalRead(generation, offset, chain, len(torn), mark_chain)


def _database_of(journal: Path) -> Path:
    return journal.with_name(journal.name.removesuffix(".journal"))


def read_snapshot(path: Path) -> tuple[dict, dict | None]:
    """A snapshot's tables (its seal removed) and its seal (None: format 1, unsealed); its
    checksum verified. Raises `DamagedDatabase`."""
    raw = path.read_bytes()
    if not raw:
        raise DamagedDatabase(f"{path} is empty (0 bytes), not a database. {what_to_do(path)}")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedDatabase(f"{path} is not valid JSON ({exc}). {what_to_do(path)}") from None
    problem = snapshot_problem(data)
    if problem:
        raise DamagedDatabase(f"{path} is {problem}. {what_to_do(path)}")
    seal = data.pop(SEAL_TABLE, {}).get("snapshot")
    if seal is None:
        return data, None
    ok = isinstance(seal, dict) and isinstance(seal.get("generation"), str) and isinstance(seal.get("crc32"), int) \
        and isinstance(seal.get("bytes"), int) and 0 < seal["bytes"] <= len(raw)
    previous = seal.get("previous") if ok else None
    if previous is not None:
        ok = isinstance(previous, dict) and isinstance(previous.get("generation"), str) \
            and isinstance(previous.get("folded"), int) and isinstance(previous.get("chain"), int)
    if not ok or zlib.crc32(raw[:seal["bytes"]]) != seal["crc32"] \
            or raw[seal["bytes"]:] != _seal_text(seal, seal["bytes"] > 1):
        raise DamagedDatabase(f"{path} was changed after it was written (its checksum does not match what it was "
                              f"sealed with). {what_to_do(path)}")
    return data, seal


def _seal_text(seal: dict, after_tables: bool) -> bytes:
    """The end of a sealed snapshot, from the byte its checksum stops at (the snapshot's last brace included)."""
    return (b"," if after_tables else b"") + f'"{SEAL_TABLE}":{{"snapshot":{_dumps(seal)}}}}}'.encode("utf-8")


def load_snapshot(path: Path) -> dict:
    """A snapshot's tables (see `read_snapshot`)."""
    return read_snapshot(path)[0]


# -- what opening finds -----------------------------------------------------------------------------

@dataclass
class Examined:
    """What opening a database finds, before it writes anything."""

    data: dict
    fresh: bool = False  # no database yet (a journal holding only a header may be there)
    legacy: bool = False  # format 1: opening rewrites it in format 2
    generation: str | None = None
    chain: int = 0
    good: int = 0  # the journal's intact bytes
    torn: int = 0  # bytes of a torn last line, which opening cuts
    switch: dict | None = None  # a compaction a crash interrupted: the journal opening writes
    notes: list[str] = field(default_factory=list)


def examine(path: Path, accept: Callable[[dict, bool], None] | None = None) -> Examined:
    """Read a database as opening it would, writing nothing: raises `DamagedDatabase` (or the
    `StoreError` of `accept(tables, sealed)`, the caller's format check) for anything it refuses."""
    journal = journal_path(path)
    if not path.exists():
        if journal.exists() and _journal_holds_changes(journal):
            raise DamagedDatabase(
                f"{path} is missing but its journal {journal} holds {journal.stat().st_size} bytes of changes; "
                f"refusing to start afresh over them (restore the snapshot, or move the journal away to start a "
                f"new database). {what_to_do(path)}")
        return Examined(data={}, fresh=True)
    data, seal = read_snapshot(path)
    if accept is not None:
        accept(data, seal is not None)
    if seal is None:  # format 1
        found = Examined(data=data, legacy=True)
        if journal.exists():
            read = read_journal(journal, lambda change: apply_change(data, change), legacy=True)
            found.good, found.torn = read.good, read.torn
        return found
    generation = seal["generation"]
    if not journal.exists():
        raise DamagedDatabase(
            f"the journal {journal} is missing: the snapshot {path} holds only what was folded into it at its last "
            f"compaction, and every change since is in the journal. Put the journal that was copied with it back "
            f"beside it (the two files belong together). {what_to_do(path)}")
    with journal.open("rb") as handle:
        first = handle.readline()
    found_generation = header_generation(first.rstrip(b"\n")) if first.endswith(b"\n") else None
    previous = seal.get("previous")
    if found_generation == generation:
        read = read_journal(journal, lambda change: apply_change(data, change))
        return Examined(data=data, generation=generation, chain=read.chain, good=read.good, torn=read.torn)
    if previous is not None and found_generation == previous["generation"]:
        # The snapshot was written, the journal it folded was not yet replaced (a crash in between,
        # or a full disk): the journal's lines after what was folded are the new journal's.
        read = read_journal(journal, lambda change: apply_change(data, change), skip_to=previous["folded"],
                            mark=previous["folded"])
        if read.mark_chain == previous["chain"]:
            return Examined(data=data, generation=generation, good=read.good, torn=read.torn,
                            switch={"from": previous["folded"], "to": read.good})
        raise DamagedDatabase(
            f"the journal {journal} is an older copy: it belongs to this snapshot's predecessor but "
            f"{'ends before' if read.good < previous['folded'] else 'differs from'} what the snapshot folded of it, "
            f"so changes since that copy would be lost. Put back the journal that was copied with {path}. "
            f"{what_to_do(path)}")
    if previous is not None and previous["generation"] == LEGACY and found_generation is None:
        # Rewritten from format 1, the old journal not yet replaced: the snapshot holds all of it.
        read = read_journal(journal, lambda change: None, legacy=True)
        if read.good == previous["folded"]:
            return Examined(data=data, generation=generation, good=read.good, torn=read.torn,
                            switch={"from": read.good, "to": read.good})
    if found_generation is None:
        raise DamagedDatabase(f"{journal}: line 1 is not this sandbox's journal header; the journal is damaged or "
                              f"not this database's. {what_to_do(path)}")
    raise DamagedDatabase(
        f"the journal {journal} belongs to another snapshot (generation {found_generation[:12]}, the snapshot "
        f"{path} is {generation[:12]}): an older copy, or another database's. Put back the journal that was copied "
        f"with the snapshot (the two files belong together). {what_to_do(path)}")


def _journal_holds_changes(journal: Path) -> bool:
    with journal.open("rb") as handle:
        first = handle.readline()
        rest = handle.read(1)
    return bool(rest) or (bool(first) and (not first.endswith(b"\n") or header_generation(first[:-1]) is None))


# -- the storage ----------------------------------------------------------------------------------

@dataclass
class _Unsynced:
    """A line appended and applied in memory, not yet durable: what rolls it back."""

    position: int  # bytes ever appended, at its end
    start: int  # where it begins in the journal file
    chain: int  # the running checksum before it
    undo: list


class JournaledJSONStorage(Storage):
    def __init__(self, path: str | os.PathLike, initial: dict | None = None,
                 accept: Callable[[dict, bool], None] | None = None, upgrade: Callable[[dict], None] | None = None,
                 on_rollback: Callable[[], None] | None = None):
        """`initial`: the data a new database starts with (written as its first snapshot);
        `accept(tables, sealed)`: raises `StoreError` for a snapshot the caller does not read (its format);
        `upgrade(tables)`: what changes when a format-1 database is rewritten in format 2;
        `on_rollback()`: called when changes already applied in memory were rolled back."""
        self.path = Path(path)
        self.journal_path = journal_path(self.path)
        self._accept = accept
        self._upgrade = upgrade
        self._on_rollback = on_rollback
        self._initial = initial or {}
        self._data: dict | None = None
        self._journal = None  # the journal file, unbuffered: nothing of a failed write lingers in a buffer
        self._generation = ""
        self._chain = 0
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        # Held while appending and changing the data in memory; the data is never changed in
        # place otherwise, so readers (and a snapshot copy) need no lock.
        self._lock = threading.RLock()
        self._compactor: threading.Thread | None = None
        self._compact_after = 0.0  # monotonic time before which no compaction is tried (after one failed)
        # Bytes ever appended, and how many of them are known durable (both only grow; a
        # compaction, which fsyncs what it keeps, makes everything appended so far durable).
        self._appended = 0
        self.synced = 0
        self._sync_lock = threading.Lock()  # one fsync at a time; those waiting meanwhile share the next
        self._unsynced: list[_Unsynced] = []
        self._voided: list[tuple[int, int]] = []  # (after, up to] positions rolled back by a failed fsync
        self.write_error: str | None = None  # why the last write failed (cleared by the next that succeeds)
        self.broken: str | None = None  # why no write is taken until a restart (a failed fsync)
        self.migrated_from: int | None = None  # the format a database opened in was rewritten from

    # -- TinyDB Storage interface -------------------------------------------
    def read(self) -> dict | None:
        if self._data is None:
            self._open()
        return self._data or None

    def write(self, data: dict) -> None:
        """A whole-database write (TinyDB's own table operations): a new snapshot."""
        if self._data is None:
            self._open()
        with self._lock:
            self._refuse_if_broken()
            try:
                self._write_snapshot(data, *self._folding())
            except OSError as exc:
                raise StoreUnavailable(self._failure(exc, "this change")) from None
            self._data = data

    def close(self) -> None:
        compactor = self._compactor
        if compactor is not None:
            compactor.join()
        if self._journal is not None:
            try:
                self.sync_to(self._appended)
            except StoreUnavailable as exc:
                log.error("%s", exc)
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

    # -- the fast path ---------------------------------------------------------
    def apply(self, changes: Iterable[Change]) -> None:
        """Append changes to the journal, as one line, and apply them in memory; durable before
        this returns, or, within a request (`defer_fsyncs`), before its answer (`settle`).
        Raises `StoreUnavailable`, having changed nothing, when the line cannot be written."""
        changes = [list(change) for change in changes]
        if not changes:
            return
        if self._data is None:
            self._open()
        line = encode(changes)  # before the lock: a bulk line takes a while
        body_crc = _crc(line)
        with self._lock:
            self._refuse_if_broken()
            chain = _chained(self._chain, body_crc)
            line.append(_trailer(body_crc, chain))
            start = self._journal_bytes
            try:
                self._write(line)  # a crash in between leaves a torn last line: never acknowledged, dropped
            except OSError as exc:
                self._cut_back(start, exc)  # raises
            size = sum(map(len, line))
            self._unsynced.append(_Unsynced(self._appended + size, start, self._chain,
                                            [_undo_of(self._data, change) for change in changes]))
            self._journal_bytes += size
            self._appended += size
            self._chain = chain
            position = self._appended
            for change in changes:
                apply_change(self._data, change)
            self.write_error = None
            if self._journal_bytes > max(COMPACT_MIN_BYTES, self._snapshot_bytes) and self._compactor is None \
                    and time.monotonic() >= self._compact_after:
                self._compactor = threading.Thread(target=self.compact, name="pokitdok-sandbox-compaction",
                                                   daemon=True)
                self._compactor.start()
        pending = _deferred.get()
        if pending is None:
            self.sync_to(position)
        else:
            pending.append((self, position))

    def _write(self, pieces: list[bytes]) -> None:
        if sum(map(len, pieces)) < 1 << 16:
            pieces = [b"".join(pieces)]
        fd = self._journal.fileno()  # opened to append, without a buffer: each byte goes straight to the OS
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]

    def _cut_back(self, start: int, exc: OSError) -> None:
        """A line failed to be written: cut the journal back to where it began, and say so."""
        message = self._failure(exc, "this write")
        try:
            os.ftruncate(self._journal.fileno(), start)
        except OSError as cut:
            self.broken = f"{message}; cutting it back failed too ({cut.strerror}): restart the server"
            log.error("%s", self.broken)
            raise StoreUnavailable(self.broken) from None
        self.write_error = message
        log.error("%s", message)
        raise StoreUnavailable(message) from None

    def _failure(self, exc: OSError, what: str) -> str:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            cause = f"the disk holding {self.path} is full ({exc.strerror})"
        else:
            cause = f"writing {self.journal_path} failed ({exc.strerror or exc})"
        return (f"{cause}: {what} was not made, and nothing of it was kept. Writes are refused until the disk "
                "takes them again (reads go on); retry later")

    def _refuse_if_broken(self) -> None:
        if self.broken is not None:
            raise StoreUnavailable(self.broken)

    def sync_to(self, position: int) -> None:
        """Return once the journal is durable up to `position` (bytes ever appended): one fsync
        covers every append made before it started, so writers waiting together share it.
        Raises `StoreUnavailable` if the fsync failed and the change at `position` was rolled back."""
        if self.synced < position:
            with self._sync_lock:
                if self.synced < position:
                    self._fsync()
        self.check_kept(position)

    def _fsync(self) -> None:
        with self._lock:  # a compaction may replace the file: fsync a handle of its own
            self._refuse_if_broken()
            target = self._appended
            handle = os.dup(self._journal.fileno())
        try:
            os.fsync(handle)
        except OSError as exc:
            self._roll_back(exc)
            return
        finally:
            os.close(handle)
        with self._lock:
            self.synced = max(self.synced, target)
            self._unsynced = [line for line in self._unsynced if line.position > self.synced]

    def _roll_back(self, exc: OSError) -> None:
        """An fsync failed: what it covered may be lost already. Every change not known durable is
        undone in memory and cut from the journal, and writes are refused until a restart."""
        with self._lock:
            self.broken = (f"{self._failure(exc, 'the last writes')}. Changes not yet acknowledged were rolled back; "
                           "what was acknowledged is on disk. Restart the server once the disk is fixed")
            log.error("%s", self.broken)
            for line in reversed(self._unsynced):
                for undo in reversed(line.undo):
                    _undo(self._data, undo)
            if self._unsynced:
                first = self._unsynced[0]
                try:
                    os.ftruncate(self._journal.fileno(), first.start)
                except OSError:
                    pass  # a torn or whole unacknowledged tail at worst; nothing more is written
                self._journal_bytes, self._chain = first.start, first.chain
            self._voided.append((self.synced, self._appended))
            self.synced = self._appended
            self._unsynced = []
        if self._on_rollback is not None:
            self._on_rollback()

    def check_kept(self, position: int) -> None:
        """Raise `StoreUnavailable` if the change ending at `position` was rolled back."""
        if any(after < position <= upto for after, upto in self._voided):
            raise StoreUnavailable(self.broken or "this write was rolled back")

    def write_refusal(self) -> str | None:
        """Why writes are refused now, or None. After a failed write, first probe whether the disk
        takes a write again (a temporary file beside the database, removed at once)."""
        if self.broken is not None or self.write_error is None:
            return self.broken
        probe = self.path.with_name(f".{self.path.name}.probe.tmp")
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(b"\0" * PROBE_BYTES)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError:
            return self.write_error
        finally:
            probe.unlink(missing_ok=True)
        self.write_error = None
        return None

    def compact(self) -> None:
        """Fold the journal into a new snapshot; writes go on meanwhile.

        The tables are copied (shallowly: records are replaced, never changed in place) and the
        journal's length noted under the lock; the copy is written without it; then the journal
        keeps only what was appended since. A crash at any point leaves a snapshot and a journal
        that replay to every acknowledged write.
        """
        try:
            with self._lock:
                copy = {name: dict(table) for name, table in self._data.items()}
                folded, previous = self._folding()
            self._write_snapshot(copy, folded, previous)
        except Exception:
            self._compact_after = time.monotonic() + COMPACT_RETRY_SECONDS
            log.exception("compacting %s failed; the journal keeps every change", self.path)
        finally:
            self._compactor = None

    # -- internals ---------------------------------------------------------------
    def _open(self) -> None:
        with self._lock:
            if self._data is not None:
                return
            # Temporary files of a compaction a crash interrupted (ours: the caller holds the file lock).
            for stale in self.path.parent.glob(f".{self.path.name}*.tmp"):
                stale.unlink(missing_ok=True)
            found = examine(self.path, self._accept)
            if found.fresh:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._data = dict(self._initial)
                self._write_snapshot(self._data, 0)
                return
            if found.torn:
                log.warning("%s; it was dropped", torn_line_note(self.journal_path, found.torn))
                with open(self.journal_path, "r+b") as handle:  # or the next append would glue a line to it
                    handle.truncate(found.good)
                    os.fsync(handle.fileno())
            self._data = found.data
            self._snapshot_bytes = self.path.stat().st_size
            if found.legacy:
                if self._upgrade is not None:
                    self._upgrade(self._data)
                self._write_snapshot(self._data, found.good, {"generation": LEGACY, "folded": found.good, "chain": 0})
                self.migrated_from = 1
                log.warning("%s was written by an earlier version (format 1, no checksums): rewritten in format 2, "
                            "a sealed snapshot and a checksummed journal that belong together", self.path)
                return
            self._generation = found.generation
            if found.switch is not None:  # finish the compaction a crash interrupted
                tail = self.journal_path.read_bytes()[found.switch["from"]:found.switch["to"]]
                self._replace_journal(tail, found.generation)
                return
            self._chain = found.chain
            self._journal = open(self.journal_path, "ab", buffering=0)
            self._journal_bytes = found.good

    def _write_snapshot(self, data: dict, folded: int, previous: dict | None = None) -> None:
        """Write `data` as the snapshot, sealed as the successor of `previous` (the journal it folds:
        its generation, and the length and running checksum of what it folded, `folded` bytes);
        then keep only the journal's bytes after `folded`, in a new journal of the snapshot's generation.
        Without `previous`: a new database (its empty journal first)."""
        generation = secrets.token_hex(16)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            crc, size = 0, 0
            with open(tmp, "wb") as handle:
                def put(piece: bytes) -> None:
                    nonlocal crc, size
                    handle.write(piece)
                    crc, size = zlib.crc32(piece, crc), size + len(piece)

                put(b"{")
                for number, (name, table) in enumerate(data.items()):
                    put(f"{',' if number else ''}{_dumps(name)}:".encode("utf-8"))
                    for piece in _records(table):
                        put(piece)
                handle.write(_seal_text({"generation": generation, "crc32": crc, "bytes": size,
                                         "previous": previous}, bool(data)))
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with self._lock:
            if previous is None:  # a new database: its journal first, so a snapshot is never without one
                self._replace_journal(b"", generation)
            os.replace(tmp, self.path)
            _fsync_directory(self.path.parent)
            self._snapshot_bytes = self.path.stat().st_size
            if previous is None:
                return
            # The snapshot holds the journal up to `folded`: keep the rest, in a journal replaced atomically.
            # Should that fail, the snapshot names the journal it folded, which stays: the next open finishes.
            tail = b"" if previous["generation"] == LEGACY else \
                self.journal_path.read_bytes()[folded:self._journal_bytes]
            self._replace_journal(tail, generation)

    def _folding(self) -> tuple[int, dict]:
        """(Under the lock) how far the journal is folded by a snapshot of the data as it is now."""
        return self._journal_bytes, {"generation": self._generation, "folded": self._journal_bytes,
                                     "chain": self._chain}

    def _replace_journal(self, tail: bytes, generation: str) -> None:
        """The journal becomes a new one of `generation` holding `tail` (lines of the old one), atomically."""
        header = _header(generation)
        lines, chain = _rechained(tail, zlib.crc32(header))
        new_journal = self.journal_path.with_name(f".{self.journal_path.name}.{os.getpid()}.tmp")
        try:
            with open(new_journal, "wb") as handle:
                handle.write(header + lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(new_journal, self.journal_path)
        except BaseException:
            new_journal.unlink(missing_ok=True)
            raise
        _fsync_directory(self.path.parent)
        if self._journal is not None:
            self._journal.close()
        self._journal = open(self.journal_path, "ab", buffering=0)
        self._generation, self._chain = generation, chain
        self._journal_bytes = len(header) + len(lines)
        self.synced = max(self.synced, self._appended)  # all of it is in the snapshot or the new journal
        self._unsynced = []


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
