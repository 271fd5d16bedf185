"""Hand-written requests: sent as given, each answer checked against the contract before a test
looks at its rule: Schemathesis' checks enabled for a request outside its phases (status code
documented, content type, headers, body schema, no server error: data/schemathesis.toml) and
every kit check (checks.py); `expect_status` / `expect_that` turn a broken rule into a
ContractViolation."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from schemathesis.errors import FailureGroup

from .checks import for_schemathesis
from .report import ContractViolation
from .run import Run
from .schema import failure_rule, failure_text, get_schema
from .wire import NotJson

# The kit check that judges a search against the run's model: left to a caller with a model of its own.
MODEL_CHECK = "search_results_match_the_query"


class Api:
    def __init__(self, run: Run):
        self.run = run
        self.target = run.target
        self.wire = run.wire
        self.schema = get_schema(run.options.spec)
        # every kit check, bound to this run; also what test_properties.py gives Schemathesis
        self.checks = for_schemathesis(run)
        self._checks_beside_a_model = for_schemathesis(run, without=(MODEL_CHECK,))

    def call(self, method: str, path: str, *, params: dict | None = None, query: dict | None = None,
             json: Any = None, tenant=None, scope: str | None = None, token: str | None = None,
             auth: bool = True, conform: bool = True, headers: dict | None = None, **kwargs):
        """`path` is the contract's template (e.g. APPOINTMENT) filled from `params`."""
        url_path = path.format(**(params or {}))
        answer = self.target.request(method, url_path, tenant=tenant, scope=scope, token=token, auth=auth,
                                     params=query, json=json, headers=headers, **kwargs)
        if conform:
            # another tenant's searches are not judged against the run's model (its records live elsewhere)
            elsewhere = tenant is not None and tenant is not self.target.main
            self.conforms(method, path, answer, params=params, query=query, body=json, model_checked=elsewhere)
        return answer

    def operation(self, method: str, path: str):
        return self.schema[path][method.upper()]

    def template_for(self, method: str, concrete_path: str) -> tuple[str, dict]:
        """The contract path a concrete one (e.g. /schedule/slots/<uuid>) belongs to, and its parameters."""
        for template in self.schema.raw_schema["paths"]:
            names = re.findall(r"{([^}/]+)}", template)
            pattern = "^" + re.sub(r"\\{[^}/]+\\}", "([^/]+)", re.escape(template)) + "$"
            match = re.match(pattern, concrete_path)
            if match and method.lower() in self.schema.raw_schema["paths"][template]:
                return template, dict(zip(names, match.groups()))
        raise LookupError(f"{method} {concrete_path} is not an operation of the contract")

    def call_path(self, method: str, concrete_path: str, **kwargs):
        """Like `call`, for a concrete path with an optional query string (e.g. a documented URL)."""
        path, _, query_string = concrete_path.partition("?")
        template, params = self.template_for(method, path)
        query = {key: values if len(values) > 1 else values[0]
                 for key, values in parse_qs(query_string, keep_blank_values=True).items()} or None
        return template, self.call(method, template, params=params, query=query, **kwargs)

    def conforms(self, method: str, path: str, answer, *, params=None, query=None, body=None,
                 model_checked: bool = False) -> None:
        """Raise a ContractViolation naming every check the answer breaks for this operation.
        `model_checked`: the caller checks searches against its own model (stateful.py)."""
        operation = self.operation(method, path)
        case = operation.Case(path_parameters=params or {}, query=query or {},
                              **({"body": body} if body is not None else {}))
        try:
            case.validate_response(answer, additional_checks=self._checks_beside_a_model if model_checked
                                   else self.checks)
        except FailureGroup as group:
            failures = list(group.exceptions)
            names = ", ".join(dict.fromkeys(check_name(f) for f in failures))
            violation = ContractViolation(
                names, failure_text(failures[0]), answer, operation=operation.label, rule=failure_rule(failures[0]),
                detail="\n".join(f"also {check_name(f)}: {failure_text(f)}" for f in failures[1:]))
            violation.recorded = True  # the after_validate hook has recorded each failed check
            raise violation from None

    def payload(self, answer, method: str, path: str):
        """The documented payload of an answer (unwrapped from the envelope when the contract has one)."""
        try:
            return self.wire.payload(answer)
        except NotJson:
            raise ContractViolation("answers are JSON", "a JSON body", answer,
                                    operation=self.label(method, path)) from None

    def label(self, method: str, path: str) -> str:
        return f"{method.upper()} {path}"


def check_name(failure) -> str:
    # Schemathesis failures carry their check's code name in the title; the class names it too.
    custom = re.search(r"Custom check failed: `(\w+)`", getattr(failure, "title", "") or "")
    if custom:  # one of the kit's checks (checks.py): its own name
        return custom[1]
    return {
        "UndefinedStatusCode": "status_code_conformance",
        "UndefinedContentType": "content_type_conformance",
        "MalformedMediaType": "content_type_conformance",
        "JsonSchemaError": "response_schema_conformance",
        "MissingContentType": "content_type_conformance",
        "ServerError": "not_a_server_error",
        "MissingHeaders": "response_headers_conformance",
        "InvalidHeaders": "response_headers_conformance",
        "MalformedJson": "response_schema_conformance",
        "CustomFailure": "kit check",
    }.get(type(failure).__name__, type(failure).__name__)


def expect_status(api: Api, answer, expected: int | tuple, rule: str, method: str, path: str,
                  why: str = "") -> None:
    """The business rule's status, or a ContractViolation naming the rule."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if answer.status_code not in allowed:
        raise ContractViolation(rule, f"{' or '.join(map(str, allowed))}{f' ({why})' if why else ''}", answer,
                                operation=api.label(method, path))


def validation_of(api: Api, answer) -> dict:
    """A refusal's `data.errors.validation` (field -> messages), or {}."""
    try:
        validation = api.wire.error(answer).get("validation")
    except ValueError:
        return {}
    return validation if isinstance(validation, dict) else {}


def names_a_field(validation: dict, fields: tuple) -> bool:
    """The validation names one of the fields at fault (itself, or a dotted part of it)."""
    return any(key == field or str(key).startswith(field + ".") for key in validation for field in fields)


def expect_that(condition: bool, api: Api, answer, rule: str, expected: str, method: str, path: str,
                actual: str | None = None) -> None:
    if not condition:
        raise ContractViolation(rule, expected, answer, operation=api.label(method, path), actual=actual)
