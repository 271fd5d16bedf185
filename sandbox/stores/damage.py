"""`pokitdok-sandbox check`: what a TinyDB file holds, what is damaged, and a salvage into a new file.

Reads only: the original snapshot and journal are never written. The verdict (intact or
refused, and why) is `journal.examine`, the very check `serve` makes when it opens the file, so
the two always agree. The salvage keeps every record that can be read: the records of the
snapshot up to the first unreadable byte (a truncated snapshot keeps all its complete records),
then every journal line that is a well-formed change set whose own checksum holds, in order,
skipping the damaged ones, which are listed. Records that are not what the sandbox stores (a
garbled key, a missing or mistyped field, a table of no known kind) are dropped and listed; the
clients and tenants are kept, and a tenant whose records survive without its settings row gets
one (the default seed settings), so its first request does not seed a new data set over them.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import asdict
from pathlib import Path

from jsonschema import Draft4Validator

from .base import KINDS, CheckReport, StoreError
from .filelock import holder
from .journal import (
    DamagedDatabase, JournaledJSONStorage, apply_change, examine, header_generation, journal_path, line_problem,
    read_snapshot, split_line, torn_line_note,
)
from .tinydb_format import FORMAT, META_TABLE, TENANTS_TABLE, accept_format

_DECODER = json.JSONDecoder()


def check(path: Path, salvage_to: Path | None = None) -> CheckReport:
    path = Path(os.path.realpath(path))  # as serve opens it
    if salvage_to is not None and (salvage_to.exists() or journal_path(salvage_to).exists()):
        raise StoreError(f"{salvage_to} exists already; --salvage writes a new file, give a path that is free")
    lines: list[str] = []
    who = holder(path.with_name(path.name + ".lock"))
    if who:
        lines.append(f"{path} is in use by {who}; read as it is now")

    # The verdict: what serve does with the file.
    try:
        found = examine(path, accept_format(path))
        verdict = None
    except StoreError as exc:
        found, verdict = None, str(exc).split(" Nothing was changed")[0]

    data, damage = _readable(path, lines)
    if found is not None:
        data = found.data  # exactly what serve would hold
        if found.fresh:
            lines.append(f"no database at {path} yet: serve creates one")
        if found.legacy:
            lines.append("format 1 (written by an earlier version, without checksums): serve, or `pokitdok-sandbox "
                         "migrate`, rewrites it in format 2 (a sealed snapshot and a checksummed journal)")
        if found.switch is not None:
            lines.append("a compaction was interrupted after its snapshot was written; serve finishes it")
        if found.torn:
            lines.append(f"{torn_line_note(journal_path(path), found.torn)}; serve drops it")

    # What is there.
    tenants = sorted(data.get(TENANTS_TABLE, {}))
    lines.append(f"{len(tenants)} tenants, {len(data.get('_clients', {}))} clients, "
                 f"{len(data.get('_tokens', {}))} tokens")
    for tenant in tenants:
        lines.append(f"  {tenant}: {len(data.get(f'{tenant}/slots', {}))} slots, "
                     f"{len(data.get(f'{tenant}/providers', {}))} providers, "
                     f"{len(data.get(f'{tenant}/patients', {}))} patients")
    if verdict is None:
        lines.append("intact: the server opens it as it is")
    else:
        lines.append(f"REFUSED: {verdict}")
        lines.append(f"DAMAGED: {len(damage) or 1} problem(s); the server refuses it. Salvage the readable records "
                     f"with `pokitdok-sandbox check --db {path} --salvage NEW.json`, then serve NEW.json")

    if salvage_to is not None:
        dropped, added = _keep_valid(data, _default_settings())
        lines += [f"dropped: {what}" for what in dropped] + [f"added: {what}" for what in added]
        data.setdefault(META_TABLE, {})["format"] = dict(FORMAT)
        storage = JournaledJSONStorage(salvage_to, initial=data)
        try:
            storage.read()  # a new database: its first snapshot, written atomically
        except OSError as exc:
            raise StoreError(f"{salvage_to} cannot be written ({exc.strerror or exc}); give --salvage a path in a "
                             f"directory this user can write, on a disk with room. {path} is unchanged") from None
        storage.close()
        lines.append(f"salvaged {sum(map(len, data.values()))} records into {salvage_to} ({len(dropped)} dropped); "
                     f"{path} is unchanged")
    return CheckReport(lines=lines, intact=verdict is None)


def _readable(path: Path, lines: list[str]) -> tuple[dict, list[str]]:
    """Every record that can be read, snapshot then journal line by line, however damaged; the damage seen."""
    data: dict = {}
    damage: list[str] = []
    if not path.exists():
        lines.append(f"snapshot {path}: missing")
        if journal_path(path).exists() and journal_path(path).stat().st_size:
            damage.append("the snapshot is missing beside a journal")
    else:
        try:
            data, seal = read_snapshot(path)
            lines.append(f"snapshot {path}: {path.stat().st_size} bytes, readable"
                         f"{'' if seal else ', unsealed (format 1, or its seal removed)'}")
        except DamagedDatabase as exc:
            damage.append(str(exc).split(". Nothing was changed")[0])
            try:
                data, complete = json.loads(path.read_bytes()), True
            except ValueError:
                data, complete = _readable_prefix(path.read_bytes())
            if not isinstance(data, dict):
                data, complete = {}, False
            data.pop("_seal", None)
            lines.append(f"snapshot {path}: damaged ({damage[-1]}); "
                         f"{sum(len(t) for t in data.values() if isinstance(t, dict))} records readable"
                         f"{'' if complete else ', the rest is lost'}")

    journal = journal_path(path)
    if journal.exists():
        *whole, torn = journal.read_bytes().split(b"\n")
        good = 0
        for number, line in enumerate(whole, start=1):
            if number == 1 and header_generation(line) is not None:
                continue
            parts = split_line(line)
            body = parts[0] if parts else line
            if parts and zlib.crc32(body) != parts[1]:
                problem = "changed after it was written (its checksum does not match)"
            else:
                try:
                    problem = line_problem(json.loads(body))
                except (UnicodeDecodeError, ValueError) as exc:
                    problem = f"not valid JSON ({exc})"
            if problem:
                damage.append(f"journal line {number}: {problem}")
                lines.append(f"journal {journal} line {number}: {problem}; skipped")
                continue
            for change in json.loads(body):
                apply_change(data, change)
            good += 1
        lines.append(f"journal {journal}: {good} change sets readable")
        if torn:
            lines.append(f"journal: {torn_line_note(journal, len(torn))}")
    elif path.exists():
        lines.append(f"journal {journal}: missing")
    data = {name: table for name, table in data.items() if isinstance(table, dict)}
    return data, damage


# -- what a salvage keeps -------------------------------------------------------------------------

_UUID = {"type": "string", "minLength": 1}
_DATE_TIME = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$"}
_POINT = {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}
# The fields the rules and the store's indexes read from each kind of record, as stored.
_RECORD_SCHEMAS = {
    "schedulers": {"required": ["scheduler_uuid", "name"], "properties": {"scheduler_uuid": _UUID}},
    "appointment_types": {"required": ["appointment_type_uuid", "type", "duration"],
                          "properties": {"appointment_type_uuid": _UUID, "type": {"type": "string"},
                                         "duration": {"type": "integer"}}},
    "providers": {"required": ["pd_provider_uuid", "locations"],
                  "properties": {"pd_provider_uuid": _UUID, "locations": {"type": "array", "items": _POINT}}},
    "patients": {"required": ["uuid"], "properties": {"uuid": _UUID}},
    "slots": {"required": ["pd_appointment_uuid", "pd_provider_uuid", "appointment_type", "location", "start_date",
                           "end_date", "booked"],
              "properties": {"pd_appointment_uuid": _UUID, "pd_provider_uuid": _UUID,
                             "appointment_type": {"type": "string"}, "location": _POINT, "start_date": _DATE_TIME,
                             "end_date": _DATE_TIME, "booked": {"type": "boolean"},
                             "patient": {"type": ["object", "null"], "required": ["_uuid"],
                                         "properties": {"_uuid": _UUID}}}},
    "registrations": {"required": ["registration_id", "pd_patient_uuid", "pd_provider_uuid"],
                      "properties": {"registration_id": _UUID}},
    "_clients": {"required": ["client_id", "salt", "secret_hash", "scopes"],
                 "properties": {"client_id": _UUID, "salt": {"type": "string"}, "secret_hash": {"type": "string"},
                                "scopes": {"type": "array", "items": {"type": "string"}}}},
    "_tokens": {"required": ["access_token", "client_id", "scopes", "expires_at"],
                "properties": {"access_token": _UUID, "client_id": {"type": "string"},
                               "scopes": {"type": "array", "items": {"type": "string"}},
                               "expires_at": {"type": "number"}}},
    "_tenants": {"required": ["seed", "providers", "slots"],
                 "properties": {name: {"type": "integer", "minimum": 0} for name in ("seed", "providers", "slots")}},
}
_KEY_FIELDS = {**KINDS, "_clients": "client_id", "_tokens": "access_token"}
_VALIDATORS = {kind: Draft4Validator({"type": "object", **schema}) for kind, schema in _RECORD_SCHEMAS.items()}


def _default_settings() -> dict:
    from ..datasets import SeedSettings

    return asdict(SeedSettings())


def _keep_valid(data: dict, default_settings: dict) -> tuple[list[str], list[str]]:
    """Drop from `data` what the sandbox does not store; give every tenant with records a settings row.
    Answer what was dropped and what was added, one line each."""
    notes: list[str] = []
    added: list[str] = []
    for name in list(data):
        if name == META_TABLE:
            continue
        tenant, _, kind = name.rpartition("/") if not name.startswith("_") else ("", "", name)
        validator = _VALIDATORS.get(kind)
        if validator is None:
            notes.append(f"table {name!r}: not a kind of record the sandbox stores ({len(data[name])} records)")
            del data[name]
            continue
        key_field = _KEY_FIELDS.get(kind)
        for key, record in list(data[name].items()):
            error = next(iter(validator.iter_errors(record)), None)
            problem = (f"{error.message} at {'.'.join(map(str, error.path)) or 'the record'}" if error is not None
                       else f"its {key_field} is not its key" if key_field and record.get(key_field) != key
                       else None)
            if problem:
                notes.append(f"{name} record {key!r}: {problem}")
                del data[name][key]
    tenants = data.setdefault(TENANTS_TABLE, {})
    for name in list(data):
        tenant, slash, kind = name.rpartition("/")
        if slash and kind in KINDS and data[name] and tenant not in tenants:
            tenants[tenant] = dict(default_settings)
            added.append(f"tenant {tenant!r} had records but no settings row: given the default seed settings "
                         f"{default_settings}, so its records are kept (a reset re-seeds it with those)")
    return notes, added


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
