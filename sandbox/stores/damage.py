"""`pokitdok-sandbox check`: what a TinyDB file holds, what is damaged, and a salvage into a new file.

Reads only: the original snapshot and journal are never written. The salvage keeps every
record that can be read: the records of the snapshot up to the first unreadable byte
(a truncated snapshot keeps all its complete records), then every journal line that is a
well-formed change set, in order, skipping the damaged ones, which are listed.
"""

from __future__ import annotations

import json
from pathlib import Path

from .base import CheckReport, StoreError
from .filelock import holder
from .journal import (
    DamagedDatabase, JournaledJSONStorage, apply_change, journal_path, line_problem, load_snapshot,
)

_DECODER = json.JSONDecoder()


def check(path: Path, salvage_to: Path | None = None) -> CheckReport:
    from .tinydb import FORMAT, META_TABLE, TENANTS_TABLE, format_problem

    if salvage_to is not None and (salvage_to.exists() or journal_path(salvage_to).exists()):
        raise StoreError(f"{salvage_to} exists already; --salvage writes a new file, give a path that is free")
    lines, damage = [], []
    who = holder(path.with_name(path.name + ".lock"))
    if who:
        lines.append(f"{path} is in use by {who}; read as it is now")

    # The snapshot.
    data: dict = {}
    if not path.exists():
        lines.append(f"snapshot {path}: missing")
        if journal_path(path).exists() and journal_path(path).stat().st_size:
            damage.append("the snapshot is missing beside a journal")
    else:
        try:
            data = load_snapshot(path)
            lines.append(f"snapshot {path}: {path.stat().st_size} bytes, readable")
        except DamagedDatabase as exc:
            data, complete = _readable_prefix(path.read_bytes())
            damage.append(str(exc).split(". Nothing was changed")[0])
            lines.append(f"snapshot {path}: damaged ({damage[-1]}); "
                         f"{sum(map(len, data.values()))} records readable before the damage"
                         f"{'' if complete else ', the rest is lost'}")
        problem = format_problem(data, path) if data else None
        if problem and not damage:
            damage.append(problem)
            lines.append(f"snapshot: {problem}")

    # The journal, line by line.
    journal = journal_path(path)
    if journal.exists():
        *whole, torn = journal.read_bytes().split(b"\n")
        good = 0
        for number, line in enumerate(whole, start=1):
            try:
                changes = json.loads(line)
                problem = line_problem(changes)
            except (UnicodeDecodeError, ValueError) as exc:
                problem = f"not valid JSON ({exc})"
            if problem:
                damage.append(f"journal line {number}: {problem}")
                lines.append(f"journal {journal} line {number}: {problem}; skipped")
                continue
            for change in changes:
                apply_change(data, change)
            good += 1
        lines.append(f"journal {journal}: {good} change sets readable of {len(whole)}")
        if torn:
            lines.append(f"journal: a torn last line ({len(torn)} bytes, a crash mid-append, never acknowledged); "
                         "serving drops it")

    # What is there.
    tenants = sorted(data.get(TENANTS_TABLE, {}))
    lines.append(f"{len(tenants)} tenants, {len(data.get('_clients', {}))} clients, "
                 f"{len(data.get('_tokens', {}))} tokens")
    for tenant in tenants:
        lines.append(f"  {tenant}: {len(data.get(f'{tenant}/slots', {}))} slots, "
                     f"{len(data.get(f'{tenant}/providers', {}))} providers, "
                     f"{len(data.get(f'{tenant}/patients', {}))} patients")
    lines.append("intact: the server opens it as it is" if not damage else
                 f"DAMAGED: {len(damage)} problem(s); the server refuses it. Salvage the readable records with "
                 f"`pokitdok-sandbox check --db {path} --salvage NEW.json`, then serve NEW.json")

    if salvage_to is not None:
        data.setdefault(META_TABLE, {})["format"] = dict(FORMAT)
        storage = JournaledJSONStorage(salvage_to, initial=data)
        storage.read()  # a new database: its first snapshot, written atomically
        storage.close()
        lines.append(f"salvaged {sum(map(len, data.values()))} records into {salvage_to}; {path} is unchanged")
    return CheckReport(lines=lines, intact=not damage)


def _readable_prefix(raw: bytes) -> tuple[dict, bool]:
    """The tables and records of a damaged snapshot that parse, in order, up to the first that does
    not (a snapshot is `{"table": {"key": {record}, ...}, ...}`); and whether that was all of it."""
    try:
        text = raw.decode("utf-8", "replace")
    except Exception:
        return {}, False
    data: dict = {}
    position = _skip(text, 0)
    if not text.startswith("{", position):
        return {}, False
    position += 1
    try:
        while True:
            position = _skip(text, position)
            if text.startswith("}", position):
                return data, True
            name, position = _DECODER.raw_decode(text, position)
            position = _expect(text, position, ":")
            position = _expect(text, position, "{")
            table = data.setdefault(name, {})
            while True:
                position = _skip(text, position)
                if text.startswith("}", position):
                    position += 1
                    break
                key, position = _DECODER.raw_decode(text, position)
                position = _expect(text, position, ":")
                record, position = _DECODER.raw_decode(text, _skip(text, position))
                if isinstance(key, str) and isinstance(record, dict):
                    table[key] = record
                position = _skip(text, position)
                if text.startswith(",", position):
                    position += 1
            position = _skip(text, position)
            if text.startswith(",", position):
                position += 1
    except (ValueError, IndexError):
        return data, False


def _skip(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def _expect(text: str, position: int, char: str) -> int:
    position = _skip(text, position)
    if not text.startswith(char, position):
        raise ValueError(f"expected {char!r} at {position}")
    return position + 1

