"""The contract's schema checks and their messages: the field at fault and what to send instead."""

from __future__ import annotations

import math
import re

from jsonschema import Draft4Validator, validators

from .envelope import LONE_SURROGATE

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@Draft4Validator.FORMAT_CHECKER.checks("uuid")
def _is_uuid(value) -> bool:
    """Draft 4 has no uuid format: the contract's uuids are checked with this one."""
    # fullmatch: `$` alone would also accept a trailing newline ("<uuid>\n").
    return not isinstance(value, str) or bool(_UUID.fullmatch(value))


def _nullable(check):
    """A keyword's check that lets `null` through where the schema says `nullable: true` (OpenAPI 3)."""

    def nullable_check(validator, value, instance, schema):
        if instance is None and schema.get("nullable"):
            return
        yield from check(validator, value, instance, schema)

    return nullable_check


# The contract's schemas: JSON Schema draft 4 with OpenAPI 3's `nullable`, and the formats above.
ContractValidator = validators.extend(Draft4Validator, {
    "type": _nullable(Draft4Validator.VALIDATORS["type"]),
    "enum": _nullable(Draft4Validator.VALIDATORS["enum"]),
})


def several_missing(validator, body: dict) -> tuple[str | None, str] | None:
    """Several required fields missing from one object, named together (jsonschema stops at the
    first): (the object's path or None, the message for `explain`); None when not so."""
    errors = list(validator.iter_errors(body))
    if not errors or errors[0].validator != "required":  # jsonschema's first error is another: that one
        return None
    path = tuple(errors[0].path)
    names = [match["name"] for error in errors
             if error.validator == "required" and tuple(error.path) == path
             and (match := _REQUIRED.match(error.message)) is not None]
    if len(names) <= 1:
        return None
    where = ".".join(map(str, path)) or None
    return where, ", ".join(f"'{n}'" for n in names) + " are required properties"


def unstorable(value, path: str = "") -> tuple[str, str] | None:
    """The first value of a parsed JSON body that no store can keep, as (field, what to send instead).

    Python's JSON reader accepts two things that are not data: a lone UTF-16 surrogate (`"\\ud800"`,
    half of a pair: no UTF-8 text holds it, so it could be stored but never answered) and the
    non-standard `NaN`, `Infinity` and `-Infinity` (no JSON answer holds them). Checked before the
    contract's schema, so nothing of such a request reaches the rules or a store.
    """
    where = path or "body"
    if isinstance(value, str):
        found = LONE_SURROGATE.search(value)
        if found:
            return where, (f"{where} holds a lone UTF-16 surrogate (\\u{ord(found.group()):04x} at character "
                           f"{found.start()}), which is not text: send valid Unicode (a character beyond U+FFFF "
                           "as its \\ud83d\\ude00-style pair, or as UTF-8)")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        sent = "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
        return where, f"{where} is {sent}, which is not a JSON number; send a finite number"
    if isinstance(value, dict):
        for key, item in value.items():
            if LONE_SURROGATE.search(key):
                return where, (f"a key inside {where} holds a lone UTF-16 surrogate, which is not text; "
                               "send field names as valid Unicode")
            problem = unstorable(item, f"{path}.{key}" if path else key)
            if problem:
                return problem
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problem = unstorable(item, f"{path}.{index}" if path else str(index))
            if problem:
                return problem
    return None


def nested_deeper_than(value, levels: int) -> bool:
    """Whether objects and lists in `value` nest more than `levels` deep (counted without recursion,
    so any depth a parser let through is measured, and each container once per level). Answers are written by a JSON writer that stops
    at 255 levels: what is kept to be answered later stays well under that."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > levels:
            return True
        # each container once per level: a YAML alias repeated at one level is walked once
        containers = {id(node): node for node in level if isinstance(node, (dict, list))}
        level = [item for node in containers.values() for item in (node.values() if isinstance(node, dict) else node)]
    return False


# -- messages a person can act on ---------------------------------------------------

_DATE_TIME = "an ISO 8601 date-time such as 2026-12-07T09:00:00"
# What to send, by the name of the field at fault (its last part).
_EXPECTED = {
    "start_date": _DATE_TIME,
    "end_date": _DATE_TIME,
    "birth_date": "a date such as 1970-01-01",
    "radius": "a distance such as 10mi or 25km (miles by default)",
    "location": "[latitude, longitude], e.g. location=32.78811&location=-79.932364 in a query",
    "appointment_type": "an appointment type code such as AT1 (letters, digits, - and _)",
    "mark_completed": 'true (or "true") to mark a booked appointment completed; leave it out otherwise',
    "patient": 'an object with the patient\'s id as "_uuid" (or "uuid"), e.g. {"_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7"}',
}
_UUID_EXAMPLE = "a uuid such as ef987691-0a19-447f-814d-f8f3abbf4859"
# jsonschema's words for "the value has the wrong form" (not "a field is missing" or "unexpected").
_WRONG_FORM = re.compile(r"does not match|is not a '|is not valid under any|is not of type|is too (long|short)|"
                         r"is (less|greater) than|is not one of|expected to be empty|should be non-empty|"
                         r"is a dependency|is valid under each")
_QUOTED_VALUE = re.compile(r"^(?P<value>'.*?'|-?[0-9.]+|\[.*?\]|\{.*?\}|None|True|False) ")


_UNEXPECTED = re.compile(r"^Additional properties are not allowed \((?P<names>.*) (?:was|were) unexpected\)")
_REQUIRED = re.compile(r"^'(?P<name>[^']+)' is a required property")
_SEVERAL_REQUIRED = re.compile(r"^(?P<names>'[^']+'(?:, '[^']+')+) are required properties")
_NOT_AN_OBJECT_BODY = re.compile(r"^(?P<value>.+) is not of type 'object'$")
_OUT_OF_RANGE = re.compile(r" is (less|greater) than (or equal to )?the (minimum|maximum) of ")
_WRONG_TYPE = re.compile(r" is not of type '(?P<type>[a-z]+)'$")
_TYPE_WORDS = {"string": "a string (text in quotes)", "integer": "a whole number", "number": "a number",
               "boolean": "true or false", "object": "a JSON object", "array": "a JSON array"}
_JSON_ERROR = re.compile(r"(Expecting|Unterminated|Invalid control character|Extra data|Invalid \\escape)")


def explain(field: str | None, message: str, parameter: bool = False) -> tuple[str | None, str]:
    """A validation error as a person needs it: the field at fault, what was wrong, what to send instead.

    `start_date: '2026-12-07' does not match '^[0-9]{4}-...'` becomes
    `start_date must be an ISO 8601 date-time such as 2026-12-07T09:00:00, not '2026-12-07'`.
    Messages this does not recognise are kept, shortened (a parameter's after its name).
    """
    prefix = parameter
    if (match := _UNEXPECTED.match(message)) is not None:
        names = [name.strip("' ") for name in match["names"].split(",")]
        where = f" inside {field}" if field else ""
        unexpected = ".".join(filter(None, [field, names[0]]))
        return unexpected, f"{', '.join(names)} {'is not a field' if len(names) == 1 else 'are not fields'}{where}; " \
                           "leave it out (see the operation's schema in openapi.yaml)"
    if (match := _SEVERAL_REQUIRED.match(message)) is not None:
        names = [f"{field}.{name}" if field else name for name in re.findall(r"'([^']+)'", match["names"])]
        return names[0], f"{', '.join(names[:-1])} and {names[-1]} are required; send all {len(names)}"
    if (match := _REQUIRED.match(message)) is not None:
        field = f"{field}.{match['name']}" if field else match["name"]  # the missing one, inside its parent
        expected = _expected(field)
        return field, f"{field} is required" + (f": {expected}" if expected else "")
    if (match := _NOT_AN_OBJECT_BODY.match(message)) is not None and field is None:
        return "body", f"the body must be a JSON object, not {_short(match['value'], 40)}"
    if message.startswith(("RequestBody is required", "Request body must not be empty")):
        return "body", "this operation needs a JSON body (Content-Type: application/json)"
    if message.endswith("should be non-empty") or message.startswith("{} does not have enough properties"):
        return "body", "the body is an empty object; send at least one of the operation's fields"
    if _JSON_ERROR.match(message):
        return "body", f"the body is not valid JSON ({_short(message, 80)}); send a JSON object"
    if field is None or not _WRONG_FORM.search(message):
        return field, f"{field}: {_short(message)}" if prefix and field else _short(message)
    value = _QUOTED_VALUE.match(message)
    expected = _expected(field)
    wrong_type = _WRONG_TYPE.search(message)
    if expected is None and wrong_type is not None:
        expected = _TYPE_WORDS.get(wrong_type["type"], wrong_type["type"])
    if expected is None or _OUT_OF_RANGE.search(message):  # keep jsonschema's reason, the value quoted short
        reason = f"{_short(value['value'], 40)} {message[value.end():]}" if value else message
        return field, f"{field}: {_short(reason)}"
    sent = f", not {_short(value['value'], 40)}" if value else ""
    return field, f"{field} must be {expected}{sent}"


def _expected(field: str | None) -> str | None:
    """What to send for a field, by its name (its last part), when the contract gives it a form."""
    if not field:
        return None
    parts = field.split(".")
    name = parts[-2] if parts[-1].isdigit() and len(parts) > 1 else parts[-1]  # location.1 is a location
    return _EXPECTED.get(name) or (_UUID_EXAMPLE if name.endswith("uuid") else None)


def _short(text: str, limit: int = 200) -> str:
    """At most `limit` characters of a message that may quote what the client sent."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
