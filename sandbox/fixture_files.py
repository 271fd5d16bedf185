"""Fixture files: one tenant's data set in a file (YAML or JSON), to load and to export.

The format is documented in docs/fixture-files.md. A file is read whole, its records are
completed (the fields a person may leave out are derived) and checked by the rules
(`scheduling.check_dataset`); the first record they refuse is named with its file, its place
and what to change, and nothing is loaded. `export` writes a tenant's records in the same
format, complete, so loading an export gives the same data set again.
"""

from __future__ import annotations

import json
import re
import reprlib
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from pokitdok_sandbox.fixtures.doc_examples import APPOINTMENT_TYPES, SCHEDULERS, as_booking_patient

from .errors import SandboxError, Unprocessable
from .scheduling import RecordRefused, check_dataset
from .validation import nested_deeper_than, unstorable
from .stores import KINDS, TenantData
from .timefmt import format_datetime, parse_datetime

FORMAT = "pokitdok-sandbox/tenant"
VERSION = 1
# Derived keys are uuid5 names in this namespace: the same file always makes the same records.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/pokitdok/pokitdok-sandbox/fixture")

# Per kind: the fields a record may have, in the order an export writes them, and those it must have.
FIELDS = {
    "schedulers": ("scheduler_uuid", "name", "description"),
    "appointment_types": ("type", "appointment_type_uuid", "description", "scheduler_uuid", "duration"),
    "providers": ("pd_provider_uuid", "name", "specialty", "scheduler_uuid", "provider_scheduler_uuid",
                  "locations"),
    "patients": ("uuid", "first_name", "last_name", "email", "phone", "birth_date", "member_id"),
    "slots": ("pd_appointment_uuid", "appointment_id", "appointment_type", "pd_provider_uuid",
              "provider_scheduler_uuid", "location", "start_date", "end_date", "booked", "patient", "description"),
    "registrations": ("registration_id", "pd_patient_uuid", "pd_provider_uuid", "location"),
}
REQUIRED = {
    "schedulers": ("scheduler_uuid", "name"),
    "appointment_types": ("type",),
    "providers": ("pd_provider_uuid", "name", "locations"),
    "patients": ("uuid", "first_name", "last_name"),
    "slots": ("appointment_type", "pd_provider_uuid", "start_date", "end_date"),
    "registrations": ("pd_patient_uuid", "pd_provider_uuid"),
}
_UUID_FIELDS = {"scheduler_uuid", "appointment_type_uuid", "pd_provider_uuid", "provider_scheduler_uuid", "uuid",
                "pd_appointment_uuid", "pd_patient_uuid"}
_TYPE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")  # openapi.yaml's AppointmentTypeCode
_TEXT_FIELDS = {"registration_id", "name", "description", "specialty", "first_name", "last_name", "email", "phone", "birth_date",
                "member_id", "type", "appointment_type", "appointment_id", "start_date", "end_date"}


# A fixture's records nest a few levels (document, list, record, patient or locations, field).
MAX_DEPTH = 8
_TOO_DEEP = (f"lists and mappings nest more than {MAX_DEPTH} levels deep; a fixture's records are flat "
             "(see docs/fixture-files.md)")
# The fields of the patient inside a booking (openapi.yaml's AppointmentPatient), all text.
_BOOKING_PATIENT = ("_uuid", "uuid", "email", "phone", "birth_date", "first_name", "last_name", "member_id")


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict, _REPR.maxstring, _REPR.maxother = 2, 4, 4, 60, 60


def _shown(value) -> str:
    """A value quoted in a message, short (read without walking it all: a YAML alias may stand for a huge one)."""
    text = _REPR.repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


class Fixture(NamedTuple):
    """A fixture file's records, completed and checked, and the name it goes by."""

    dataset: dict
    description: str | None  # the file's own, if it has one


class FixtureError(SandboxError):
    """A fixture file that cannot be loaded: which file, which record, what to change (a 422 over HTTP)."""

    def __init__(self, source: str, message: str, record: str | None = None, field: str | None = None):
        where = f"{source}: {record}: " if record else f"{source}: "
        super().__init__(422, where + message, field or "fixture", "fixture_refused")
        self.source, self.record, self.reason = source, record, message


def read_file(path: str | Path) -> Fixture:
    """A fixture file's records, completed and checked (raises `FixtureError`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FixtureError(str(path), f"cannot read it ({exc.strerror or exc}); give the path of a fixture file")
    except UnicodeDecodeError as exc:
        raise FixtureError(str(path), f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                                      "save the file as UTF-8") from None
    return parse(text, str(path), yaml=path.suffix.lower() in (".yaml", ".yml"))


def parse(text: str, source: str, yaml: bool | None = None) -> Fixture:
    """A fixture document from text: JSON, or YAML (`yaml=None`: whichever it reads as)."""
    if yaml is False or (yaml is None and text.lstrip().startswith("{")):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise FixtureError(source, f"not valid JSON ({exc}); fix the syntax there") from None
        except RecursionError:
            raise FixtureError(source, _TOO_DEEP) from None
    else:
        import yaml as pyyaml

        try:
            document = pyyaml.safe_load(text)
        except pyyaml.YAMLError as exc:
            raise FixtureError(source, f"not valid YAML ({' '.join(str(exc).split())}); fix the syntax there") from None
        except RecursionError:
            raise FixtureError(source, _TOO_DEEP) from None
    return load_document(document, source)


def load_document(document: Any, source: str = "fixture") -> Fixture:
    """The data set a fixture document describes (every record complete, keys lower-case), checked
    by the rules, with its description. Raises `FixtureError` naming the
    first record refused."""
    if not isinstance(document, dict):
        raise FixtureError(source, f"a fixture is a mapping with format: {FORMAT} and version: {VERSION}, "
                                   "then the record lists")
    if nested_deeper_than(document, MAX_DEPTH):
        raise FixtureError(source, _TOO_DEEP)
    if document.get("format") != FORMAT:
        raise FixtureError(source, f"format is {_shown(document.get('format'))}; a fixture file starts with "
                                   f"format: {FORMAT}", field="format")
    if type(document.get("version")) is not int or document["version"] != VERSION:
        raise FixtureError(source, f"version {_shown(document.get('version'))} is not one this sandbox reads; "
                                   f"write version: {VERSION} (see docs/fixture-files.md)", field="version")
    unknown = sorted(map(str, set(document) - {"format", "version", "description", *KINDS}))
    if unknown:
        raise FixtureError(source, f"unknown section(s) {', '.join(unknown)}; the sections are "
                                   f"{', '.join(KINDS)}", field=unknown[0])
    lists = {}
    for kind in KINDS:
        records = document.get(kind)
        if records is None:
            records = []
        if not isinstance(records, list):
            raise FixtureError(source, f"{kind} must be a list of records", field=kind)
        lists[kind] = records
    if "schedulers" not in document:
        lists["schedulers"] = [dict(s) for s in SCHEDULERS]
    if "appointment_types" not in document:
        lists["appointment_types"] = [dict(t) for t in APPOINTMENT_TYPES]
    dataset: dict[str, list[dict]] = {}
    for kind in ("schedulers", "appointment_types", "providers", "patients", "slots", "registrations"):
        dataset[kind] = [_complete(kind, index, record, dataset, source) for index, record in enumerate(lists[kind])]
        for index, record in enumerate(dataset[kind]):  # flat by now: text a store could not answer
            problem = unstorable(record, "")
            if problem is not None:
                raise FixtureError(source, problem[1], _pointer(kind, index, record), problem[0])
    try:
        check_dataset(dataset)
    except RecordRefused as refused:
        raise FixtureError(source, _with_advice(refused.error), _pointer(refused.kind, refused.index,
                                                                         dataset[refused.kind][refused.index]),
                           field=refused.error.field) from None
    description = document.get("description")
    if description is not None and not isinstance(description, str):
        raise FixtureError(source, "description must be text", field="description")
    return Fixture(dataset, description)


def _with_advice(error: SandboxError) -> str:
    message = error.message
    if message.startswith("no ") and " with " in message:
        noun = message[3:message.index(" with ")]
        return f"{message}; add that {noun} to the file or name one it has"
    if "already has" in message:
        return f"{message}; move one of the two, or give it another location"
    if "must be after" in message:
        return f"{message}; swap or correct the dates"
    return message


def _pointer(kind: str, index: int, record: dict | None = None) -> str:
    key = KINDS[kind]
    named = record.get(key) if isinstance(record, dict) else None
    return f"{kind}[{index}]" + (f" ({key} {named if isinstance(named, str) else _shown(named)})" if named else "")


def _complete(kind: str, index: int, record: Any, dataset: dict, source: str) -> dict:
    """The record with its derived fields filled in, types checked, keys lower-case."""
    where = _pointer(kind, index, record if isinstance(record, dict) else None)
    if not isinstance(record, dict):
        raise FixtureError(source, f"a record is a mapping of fields, not {type(record).__name__}", where)
    unknown = [name for name in record if name not in FIELDS[kind]]
    if unknown:
        raise FixtureError(source, f"unknown field(s) {', '.join(map(str, unknown))}; a record of {kind} has "
                                   f"{', '.join(FIELDS[kind])}", where, str(unknown[0]))
    missing = [name for name in REQUIRED[kind] if record.get(name) in (None, "")]
    if missing:
        raise FixtureError(source, f"missing {', '.join(missing)}; give {'them' if len(missing) > 1 else 'it'}",
                           where, missing[0])
    out = {name: record[name] for name in FIELDS[kind] if name in record}
    try:
        for name, value in list(out.items()):
            if name in _UUID_FIELDS and value is not None:
                out[name] = _uuid_text(value, name)
            elif name in _TEXT_FIELDS and value is not None:
                if not isinstance(value, str):
                    if name == "birth_date" and hasattr(value, "isoformat"):  # YAML reads 1990-01-13 as a date
                        value = value.isoformat()
                    elif hasattr(value, "isoformat") and name in ("start_date", "end_date"):
                        value = value.isoformat()
                    else:
                        raise Unprocessable(f"{name} must be text, not {_shown(value)}", name)
                out[name] = value
        _DERIVE[kind](out, index, dataset)
    except SandboxError as error:
        raise FixtureError(source, error.message, where, error.field) from None
    return out


def _uuid_text(value, field: str) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise Unprocessable(f"{field} must be a uuid in quotes, not {_shown(value)}", field)
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise Unprocessable(f"{field} {_shown(value)} is not a uuid", field) from None


def _derived_uuid(*parts) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def _default_scheduler(record: dict, dataset: dict) -> None:
    if record.get("scheduler_uuid") is None:
        if not dataset["schedulers"]:
            raise Unprocessable("scheduler_uuid is missing and the file has no schedulers; add one", "scheduler_uuid")
        record["scheduler_uuid"] = dataset["schedulers"][0]["scheduler_uuid"]


def _scheduler(record: dict, index: int, dataset: dict) -> None:
    record.setdefault("description", record["name"])


def _appointment_type(record: dict, index: int, dataset: dict) -> None:
    record.setdefault("appointment_type_uuid", _derived_uuid("appointment_type", record["type"], index))
    if not _TYPE_CODE.match(record["type"]):
        raise Unprocessable(f"type {_shown(record['type'])} is not an appointment type code; send 1 to 32 letters, "
                            "digits, - and _ (such as OV1)", "type")
    record.setdefault("description", record["type"])
    _default_scheduler(record, dataset)
    duration = record.setdefault("duration", 30)
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 1:
        raise Unprocessable(f"duration must be a whole number of minutes above 0, not {_shown(duration)}", "duration")
    _reorder(record, "appointment_types")


def _provider(record: dict, index: int, dataset: dict) -> None:
    record.setdefault("specialty", "")
    _default_scheduler(record, dataset)
    record.setdefault("provider_scheduler_uuid", _derived_uuid("provider_scheduler", record["pd_provider_uuid"]))
    locations = record["locations"]
    if not isinstance(locations, list) or not locations:
        raise Unprocessable("locations must be a list of [latitude, longitude] offices, at least one", "locations")
    record["locations"] = [_place(place, "locations") for place in locations]
    _reorder(record, "providers")


def _patient(record: dict, index: int, dataset: dict) -> None:
    _reorder(record, "patients")


def _slot(record: dict, index: int, dataset: dict) -> None:
    provider = next((p for p in dataset["providers"] if p["pd_provider_uuid"] == record["pd_provider_uuid"]), None)
    record.setdefault("pd_appointment_uuid", _derived_uuid("slot", index, record["pd_provider_uuid"],
                                                           record["start_date"]))
    record.setdefault("appointment_id", record["pd_appointment_uuid"].replace("-", "")[:12].upper())
    if provider is not None:
        record.setdefault("provider_scheduler_uuid", provider["provider_scheduler_uuid"])
        record.setdefault("location", provider["locations"][0])
    else:  # the rules name the unknown provider
        record.setdefault("provider_scheduler_uuid", record["pd_provider_uuid"])
        record.setdefault("location", [0.0, 0.0])
    record["location"] = _place(record["location"], "location")
    for name in ("start_date", "end_date"):
        record[name] = format_datetime(parse_datetime(record[name], name))
    patient = record.get("patient")
    if isinstance(patient, str):  # a patient of the file, by uuid
        patient_uuid = _uuid_text(patient, "patient")
        known = next((p for p in dataset["patients"] if p["uuid"] == patient_uuid), {"uuid": patient_uuid})
        patient = as_booking_patient({k: v for k, v in known.items() if v is not None})
    elif isinstance(patient, dict):
        patient = dict(patient)
        unknown = [str(name) for name in patient if name not in _BOOKING_PATIENT]
        if unknown:
            raise Unprocessable(f"patient has unknown field(s) {', '.join(unknown)}; a booking's patient has "
                                f"{', '.join(_BOOKING_PATIENT)} (or give the patient's uuid)", f"patient.{unknown[0]}")
        for name, value in patient.items():
            if name == "birth_date" and hasattr(value, "isoformat"):  # YAML reads 1990-01-13 as a date
                patient[name] = value = value.isoformat()
            if value is not None and not isinstance(value, str):
                raise Unprocessable(f"patient.{name} must be text, not {_shown(value)}", f"patient.{name}")
        for name in ("_uuid", "uuid"):
            if patient.get(name) is not None:
                patient[name] = _uuid_text(patient[name], f"patient.{name}")
        if "uuid" in patient and "_uuid" not in patient:
            patient["_uuid"] = patient.pop("uuid")
    elif patient is not None:
        raise Unprocessable("patient is a patient's uuid, or the booking patient's fields with _uuid", "patient")
    record["patient"] = patient
    booked = record.setdefault("booked", patient is not None)
    if not isinstance(booked, bool):
        raise Unprocessable(f"booked must be true or false, not {_shown(booked)}", "booked")
    if booked and patient is None:
        raise Unprocessable("a booked slot needs its patient (a patient's uuid)", "patient")
    record.setdefault("description", None)
    _reorder(record, "slots")


def _registration(record: dict, index: int, dataset: dict) -> None:
    record.setdefault("registration_id", f"{record['pd_patient_uuid']}:{record['pd_provider_uuid']}")
    location = record.setdefault("location", None)
    if location is not None:
        record["location"] = _place(location, "location")
    _reorder(record, "registrations")


def _place(value, field: str) -> list[float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise Unprocessable(f"{field} must be [latitude, longitude] (two numbers), not {_shown(value)}", field)
    return [float(value[0]), float(value[1])]


def _reorder(record: dict, kind: str) -> None:
    ordered = {name: record[name] for name in FIELDS[kind] if name in record}
    record.clear()
    record.update(ordered)


_DERIVE = {"schedulers": _scheduler, "appointment_types": _appointment_type, "providers": _provider,
           "patients": _patient, "slots": _slot, "registrations": _registration}


# -- export ---------------------------------------------------------------------------------------

def export(tenant: TenantData, description: str | None = None) -> dict:
    """A tenant's data set as a fixture document (complete records; slots by start date, then uuid)."""
    document: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if description:
        document["description"] = description
    for kind in KINDS:
        records = (tenant.slots_starting_between(None, None) if kind == "slots" else tenant.all(kind))
        views = [{name: record[name] for name in FIELDS[kind] if name in record} for record in records]
        if kind == "slots":
            views.sort(key=lambda s: (parse_datetime(s["start_date"], "start_date"), s["pd_appointment_uuid"]))
        document[kind] = views
    return document


def dump(document: dict, yaml: bool) -> str:
    if not yaml:
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    import yaml as pyyaml

    return pyyaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None, width=120)
