"""One process at a time on a TinyDB file: an OS-level exclusive lock on `<db>.lock`.

The lock is taken without waiting: a second `serve`, `seed`, `reset` or `migrate`
on a file in use fails at once, naming the process that holds it (its pid and
command line are written into the lock file). The operating system drops the lock
when its holder dies, `kill -9` included, so a stale lock file never blocks anyone.
The snapshot itself cannot carry the lock: it is replaced by a rename on every
compaction.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .base import StoreError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt


class FileInUse(StoreError):
    """Another process has the database open."""


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # byte 0 only: the holder line after it stays readable
    except OSError:
        return False
    return True


def holder(lock_path: Path) -> str | None:
    """Who holds the lock, as written in the lock file ("pid 123: command"); None when nobody does."""
    try:
        fd = os.open(lock_path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        if _try_lock(fd):
            return None
        os.lseek(fd, 1, os.SEEK_SET)
        return os.read(fd, 4096).decode("utf-8", "replace").strip() or "a process that has not said which"
    finally:
        os.close(fd)


class FileLock:
    def __init__(self, database: Path):
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(fd):
                os.lseek(fd, 1, os.SEEK_SET)
                who = os.read(fd, 4096).decode("utf-8", "replace").strip() or "another process"
                os.close(fd)
                raise FileInUse(
                    f"{self.database} is in use by {who}. One process at a time opens a TinyDB file: stop that "
                    "process first, or while it runs use its HTTP routes (POST /api/v4/sandbox/reset, "
                    "/api/v4/sandbox/seed); for several processes on one store use PostgreSQL (--store)")
            # The holder before us may have removed the file after we opened it: lock the file at the path.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        line = f" pid {os.getpid()}: {' '.join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))}"
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, line.encode("utf-8", "replace") + b"\n")
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)  # while still holding it, so nobody locks a file about to vanish
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None
