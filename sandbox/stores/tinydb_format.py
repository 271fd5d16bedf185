"""What a TinyDB database file says it is: its format mark and version, and its table names.

A leaf of the TinyDB store: the store (`tinydb.py`) and the file check (`damage.py`) both read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .base import FORMAT_MARK, StoreError
from .journal import what_to_do

# 2: a sealed snapshot and a checksummed journal that belong together (`journal.py`); 1 had neither
# and is rewritten as 2 when opened.
FORMAT_VERSION = 2
FORMAT = {"name": FORMAT_MARK, "version": FORMAT_VERSION}
META_TABLE = "_meta"
TENANTS_TABLE = "_tenants"
CLIENTS_TABLE = "_clients"
TOKENS_TABLE = "_tokens"


def format_problem(data: dict, path: Path, sealed: bool = True) -> str | None:
    """Why a snapshot (already shaped like tables of records) is not a database this sandbox reads."""
    mark = data.get(META_TABLE, {}).get("format", {})
    if mark.get("name") != FORMAT_MARK:
        return (f"{path} is not a pokitdok-sandbox database (no {FORMAT_MARK} format mark); refusing to touch "
                "it. Point --db at a new path or delete the file.")
    version = mark.get("version")
    if version == 1 and not sealed or version == FORMAT_VERSION and sealed:
        return None
    if version == FORMAT_VERSION:
        return (f"{path} says it is format {FORMAT_VERSION} but has no seal: it was changed after it was written. "
                f"{what_to_do(path)}")
    if isinstance(version, int) and version > FORMAT_VERSION:
        return f"{path} has database format {version}, written by a newer version; this sandbox reads 1 and 2"
    return f"{path} has database format {version!r}, this sandbox reads 1 and 2"


def accept_format(path: Path) -> Callable[[dict, bool], None]:
    """The journal's format check for a database at `path`: raises `StoreError` naming what is wrong."""
    def accept(data: dict, sealed: bool) -> None:
        problem = format_problem(data, path, sealed)
        if problem:
            raise StoreError(problem)
    return accept


def upgrade(data: dict) -> None:
    data[META_TABLE] = {**data.get(META_TABLE, {}), "format": dict(FORMAT)}
