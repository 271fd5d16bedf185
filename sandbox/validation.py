"""Contract validation tweaks: errors that name the parameter at fault."""

from __future__ import annotations

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator


class NamedParameterValidator(ParameterValidator):
    """Connexion's parameter errors do not say which parameter failed; these do.

    The name is appended as ` - 'name'`, the same suffix Connexion uses for body
    fields, so one error handler turns both into the error's `field`.
    """

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        error = ParameterValidator.validate_parameter(parameter_type, value, param, param_name)
        if error:
            first_part = error.split("\n\n")[0]
            return f"{parameter_type} parameter {param.get('name', param_name)}: {first_part} - '{param.get('name', param_name)}'"
        return error


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
