"""Durable TinyDB storage whose per-request cost does not grow with the data.

TinyDB's JSONStorage rewrites the whole file on every write. Here the TinyDB
JSON file is a *snapshot*, and each change a request makes is appended to a
journal beside it (`<db>.journal`, one JSON line per change set, fsynced
before the request is answered). Opening the database loads the snapshot and
replays the journal; when the journal outgrows the snapshot it is folded into
a new snapshot (written to a temporary file and renamed, so a crash leaves the
old or the new snapshot, never half of one).

A crash in the middle of an append leaves at most one torn last line: it was
never acknowledged, so it is dropped on the next open.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from tinydb.storages import Storage

# A change: ("put", table, key, record) | ("del", table, key) | ("table", table, {key: record})
Change = tuple

COMPACT_MIN_BYTES = 4 * 1024 * 1024


class JournaledJSONStorage(Storage):
    def __init__(self, path: str | os.PathLike, load=None):
        """`load(path) -> dict` reads and checks a snapshot (default: plain JSON)."""
        self.path = Path(path)
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self._load = load or (lambda p: json.loads(p.read_text(encoding="utf-8")))
        self._data: dict | None = None
        self._journal = None
        self._snapshot_bytes = 0
        self._journal_bytes = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # -- TinyDB Storage interface -------------------------------------------
    def read(self) -> dict | None:
        if self._data is None:
            self._open()
        return self._data or None

    def write(self, data: dict) -> None:
        """A whole-database write (TinyDB's own table operations): a new snapshot."""
        self._data = data
        self._write_snapshot()

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- the fast path ---------------------------------------------------------
    def apply(self, changes: Iterable[Change]) -> None:
        """Apply changes in memory and append them to the journal, durably, as one line."""
        changes = [list(change) for change in changes]
        if not changes:
            return
        if self._data is None:
            self._open()
        for change in changes:
            apply_change(self._data, change)
        line = (json.dumps(changes, separators=(",", ":")) + "\n").encode("utf-8")
        self._journal.write(line)
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._journal_bytes += len(line)
        if self._journal_bytes > max(COMPACT_MIN_BYTES, self._snapshot_bytes):
            self._write_snapshot()

    # -- internals ---------------------------------------------------------------
    def _open(self) -> None:
        data: dict = {}
        if self.path.exists() and self.path.stat().st_size:
            data = self._load(self.path)
            self._snapshot_bytes = self.path.stat().st_size
        self._data = data
        if self.journal_path.exists():
            self._replay()
        self._journal = open(self.journal_path, "ab")
        self._journal_bytes = self._journal.tell()

    def _replay(self) -> None:
        raw = self.journal_path.read_bytes()
        good = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn by a crash mid-append: never acknowledged
            try:
                changes = json.loads(line)
            except ValueError:
                break
            for change in changes:
                apply_change(self._data, change)
            good += len(line)
        if good != len(raw):
            with open(self.journal_path, "r+b") as handle:
                handle.truncate(good)
                os.fsync(handle.fileno())

    def _write_snapshot(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            # dumps, not dump: json.dump streams through the pure-Python encoder, dumps uses the C one.
            handle.write(json.dumps(self._data, separators=(",", ":")))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_directory(self.path.parent)
        self._snapshot_bytes = self.path.stat().st_size
        # The snapshot now holds everything: start an empty journal.
        if self._journal is not None:
            self._journal.close()
        self._journal = open(self.journal_path, "wb")
        os.fsync(self._journal.fileno())
        self._journal_bytes = 0


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
