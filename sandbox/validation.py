"""Contract validation tweaks: errors that name the parameter at fault and say what to send."""

from __future__ import annotations

import re

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.utils import is_null, is_nullable
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from jsonschema import Draft4Validator, ValidationError


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter errors do not say which parameter failed; these do.

    The name is appended as ` - 'name'`, the same suffix Connexion uses for body
    fields, so one error handler turns both into the error's `field`.
    """

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        error = _check_parameter(parameter_type, value, param)
        if error:
            first_part = error.split("\n\n")[0]
            return f"{parameter_type} parameter {param.get('name', param_name)}: {first_part} - '{param.get('name', param_name)}'"
        return error


def _check_parameter(parameter_type, value, param) -> str | None:
    """Connexion's `ParameterValidator.validate_parameter`, with one validator per parameter.

    Connexion deep-copies the parameter and builds a new schema validator for every value
    of every request (a tenth of a search's CPU time); the spec's parameters never change,
    so each gets its validator once.
    """
    if is_nullable(param) and is_null(value):
        return None
    if value is not None:
        try:
            _validator(param).validate(value)
        except ValidationError as exception:
            return str(exception)
        return None
    if param.get("required"):
        return f"Missing {parameter_type} parameter '{param['name']}'"
    return None


# id(parameter) -> (parameter, validator); the parameter is kept so its id is never reused.
_VALIDATORS: dict[int, tuple[dict, Draft4Validator]] = {}


def _validator(param: dict) -> Draft4Validator:
    entry = _VALIDATORS.get(id(param))
    if entry is None or entry[0] is not param:
        entry = (param, Draft4Validator(param.get("schema", param), format_checker=Draft4Validator.FORMAT_CHECKER))
        _VALIDATORS[id(param)] = entry
    return entry[1]


class SafeJSONRequestBodyValidator(JSONRequestBodyValidator):
    """JSON bodies that `json.loads` cannot handle are a 400, not a 500.

    * nesting deeper than Python's recursion limit raises RecursionError;
    * an integer literal over 4300 digits raises ValueError (int max str digits).
    An absent optional body (`required: false`) is accepted as no body.
    """

    async def _parse(self, stream, scope):
        try:
            return await super()._parse(stream, scope)
        except RecursionError:
            raise BadRequestProblem(detail="the JSON body is nested too deeply - 'body'") from None
        except UnicodeDecodeError:
            raise
        except ValueError as exc:
            raise BadRequestProblem(detail=f"the body is not JSON ({str(exc)[:80]}); send a JSON object - 'body'") from None

    def _validate(self, body):
        if body is None and not self._required:
            return None
        return super()._validate(body)


SANDBOX_VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": NamedParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": SafeJSONRequestBodyValidator}),
}


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
    "patient": 'an object with the patient\'s id as "_uuid" (or "uuid"), e.g. {"_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7"}',
}
_UUID_EXAMPLE = "a uuid such as ef987691-0a19-447f-814d-f8f3abbf4859"
# jsonschema's words for "the value has the wrong form" (not "a field is missing" or "unexpected").
_WRONG_FORM = re.compile(r"does not match|is not a '|is not valid under any|is not of type|is too (long|short)|"
                         r"is (less|greater) than|is not one of|expected to be empty|should be non-empty|"
                         r"is a dependency|is valid under each")
_QUOTED_VALUE = re.compile(r"^(?:(?:query|path|header) parameter [^:]+: )?(?P<value>'.*?'|-?[0-9.]+|\[.*?\]|\{.*?\}|None|True|False) ")


def explain(field: str | None, message: str) -> str:
    """A validation error as a person needs it: which field, what was wrong, what to send instead.

    `start_date: '2026-12-07' does not match '^[0-9]{4}-...'` becomes
    `start_date must be an ISO 8601 date-time such as 2026-12-07T09:00:00, not '2026-12-07'`.
    Messages this does not recognise are kept, shortened.
    """
    if field is None or not _WRONG_FORM.search(message):
        return _short(message)
    name = field.rsplit(".", 1)[-1]
    expected = _EXPECTED.get(name) or (_UUID_EXAMPLE if name.endswith("uuid") else None)
    if expected is None:
        return _short(message)
    value = _QUOTED_VALUE.match(message)
    sent = f", not {_short(value['value'], 40)}" if value else ""
    return f"{field} must be {expected}{sent}"


def _short(text: str, limit: int = 200) -> str:
    """At most `limit` characters of a message that may quote what the client sent."""
    return text if len(text) <= limit else text[:limit - 3] + "..."
