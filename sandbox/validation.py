"""Contract validation tweaks: errors that name the parameter at fault."""

from __future__ import annotations

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
            raise BadRequestProblem(detail="the JSON body is nested too deeply") from None
        except UnicodeDecodeError:
            raise
        except ValueError as exc:
            raise BadRequestProblem(detail=f"the body is not acceptable JSON ({exc})") from None

    def _validate(self, body):
        if body is None and not self._required:
            return None
        return super()._validate(body)


SANDBOX_VALIDATORS = {
    **VALIDATOR_MAP,
    "parameter": NamedParameterValidator,
    "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": SafeJSONRequestBodyValidator}),
}
