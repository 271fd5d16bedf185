"""Contract validation tweaks: errors that name the parameter at fault."""

from __future__ import annotations

from connexion.validators import VALIDATOR_MAP, ParameterValidator


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


SANDBOX_VALIDATORS = {**VALIDATOR_MAP, "parameter": NamedParameterValidator}
