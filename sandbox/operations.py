"""The contract's operations, compiled once: what the pipeline (`middleware/pipeline.py`) needs to
route a request, check it and call its handler.

For each operation of openapi.yaml: the path as a pattern, the scopes its `security` asks for,
its parameters with one schema validator each, its request body's content types and validator,
and the validators of its JSON answers (when answers are checked). Parameters are read as the
contract declares them (OpenAPI 3's `form` style for the query: a list is repeated keys, or
comma-separated; values typed from their schema), and checked in the order query, path,
header; the first fault is refused (422, its field named), in the words of `validation.explain`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from dataclasses import dataclass, field

from jsonschema import ValidationError

from . import contract
from .errors import Unprocessable, UnsupportedMediaType
from .validation import ContractValidator, explain, several_missing, unstorable

_PARAMETER = re.compile(r"\\\{(?P<name>[^/]+?)\\\}")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_TYPES = {"integer": int, "number": float, "boolean": lambda text: _boolean(text)}
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise ValueError(text)


def _typed(schema: dict, text: str):
    """A text as its schema's type, or the text itself when it is not one (the validator then says so)."""
    convert = _TYPES.get(schema.get("type"))
    if convert is None:
        return text
    try:
        return convert(text)
    except (ValueError, TypeError):
        return text


@dataclass
class Parameter:
    name: str
    location: str  # query, path or header
    schema: dict
    required: bool
    validator: ContractValidator
    argument: str  # the handler's keyword

    def value(self, texts: list[str]):
        """The parameter's value from its texts in the request (a query's repeated keys)."""
        if self.schema.get("type") == "array":
            items = ",".join(texts).split(",")
            return [_typed(self.schema.get("items", {}), item) for item in items]
        return _typed(self.schema, texts[-1])

    def check(self, value) -> None:
        if value is None:
            if self.required:
                raise _refused(self.name, f"Missing {self.location} parameter '{self.name}'", parameter=True)
            return
        error = next(iter(self.validator.iter_errors(value)), None)
        if error is not None:
            raise _refused(self.name, _first_part(error), parameter=True)


def _first_part(error: ValidationError) -> str:
    """jsonschema's words for an error, without the schema and instance it appends."""
    return str(error).split("\n\n")[0]


def _refused(field_: str | None, message: str, parameter: bool = False) -> Unprocessable:
    """A 422 for a check that failed, in the words of `validation.explain` (which may name the field)."""
    field_, message = explain(field_, message, parameter)
    return Unprocessable(message, field_)


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str  # as the contract writes it
    pattern: re.Pattern
    documented: bool  # one of the platform's operations (not sandbox administration)
    scopes: tuple[tuple[str, ...], ...] | None  # alternatives; None: no bearer token needed
    parameters: list[Parameter]
    query_names: frozenset[str]
    body_types: tuple[str, ...] = ()  # the request body's content types (none: no body)
    body_required: bool = False
    body_default: object = None
    body_validator: ContractValidator | None = None
    body_nullable: bool = False
    answers: dict = field(default_factory=dict)  # status (or "default") -> validator of its JSON body

    def under(self, base: str) -> Operation:
        """The same operation at `base` + its path (the token endpoint, also under the API base)."""
        template = _PARAMETER.sub(r"(?P<\g<name>>[^/]+)", re.escape(base + self.path))
        return dataclasses.replace(self, path=base + self.path, pattern=re.compile(f"^{template}$"))

    @property
    def takes_form(self) -> bool:
        return bool(self.body_types) and all(kind in FORMS for kind in self.body_types)

    def arguments(self, query: dict[str, list[str]], path: dict[str, str], headers) -> dict:
        """The parameters' values by the handler's keywords, checked; defaults for absent query parameters."""
        extra = [name for name in query if name not in self.query_names]
        if extra:
            names = ",".join(extra)
            raise Unprocessable(f"{names} {'is not a parameter' if len(extra) == 1 else 'are not parameters'} "
                                "of this operation; leave it out (see openapi.yaml)", extra[0])
        values = {}
        for parameter in self.parameters:
            if parameter.location == "query":
                texts = query.get(parameter.name)
                value = parameter.value(texts) if texts is not None else None
            elif parameter.location == "path":
                value = path.get(parameter.name)
            else:
                value = headers.get(parameter.name.lower())
            parameter.check(value)
            if parameter.location == "header":
                continue
            if value is None and "default" in parameter.schema:
                value = copy.deepcopy(parameter.schema["default"])
            if value is not None:
                values[parameter.argument] = value
        return values

    def content_type(self, header: str | None) -> tuple[str, str]:
        """(media type, charset) of a body, refused when the operation takes another."""
        media, _, rest = (header or "").partition(";")
        media = media.strip().lower() or self.body_types[0]
        charset = "utf-8"
        for part in rest.split(";"):
            name, _, value = part.strip().partition("=")
            if name.lower() == "charset" and value:
                charset = value.strip('"')
        if media not in self.body_types:
            expected = self.body_types[0]
            raise UnsupportedMediaType(f"send the body as {expected} (Content-Type: {expected}), "
                                       f"not {_short(media, 40) or 'without a type'}")
        return media, charset

    def body(self, raw: bytes, charset: str):
        """The JSON body, parsed and checked (None: an optional body not sent)."""
        if not raw:
            body = copy.deepcopy(self.body_default)
            if body is None and self.body_required:
                raise _refused(None, "RequestBody is required")
            if body is None:
                return None
        else:
            text = raw.decode(charset)
            try:
                body = json.loads(text)
            except RecursionError:
                raise Unprocessable("the JSON body is nested too deeply", "body") from None
            except json.JSONDecodeError as exc:
                raise _refused(None, str(exc)) from None
            except ValueError as exc:
                raise Unprocessable(f"the body is not JSON ({str(exc)[:80]}); send a JSON object", "body") from None
        if body is None:
            if self.body_nullable:
                return None
            raise _refused(None, "Request body must not be empty")
        problem = unstorable(body)
        if problem is not None:
            raise Unprocessable(problem[1], problem[0])
        if isinstance(body, dict):
            missing = several_missing(self.body_validator, body)
            if missing is not None:
                raise _refused(*missing)
        error = next(iter(self.body_validator.iter_errors(body)), None) if self.body_validator else None
        if error is not None:
            where = ".".join(str(part) for part in error.path) or None
            raise _refused(where, error.message)
        return body


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _resolved(node, root: dict, seen: dict):
    """`node` with every local `$ref` replaced by what it names (each target resolved once)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref not in seen:
                target = root
                for part in ref[2:].split("/"):
                    target = target[part]
                seen[ref] = {}
                seen[ref].update(_resolved(target, root, seen))
            return seen[ref]
        return {key: _resolved(value, root, seen) for key, value in node.items()}
    if isinstance(node, list):
        return [_resolved(item, root, seen) for item in node]
    return node


def _argument(name: str) -> str:
    return re.sub(r"\W", "_", name)


def compile_operations(validate_answers: bool) -> list[Operation]:
    spec = contract.spec()
    resolved = _resolved(spec, spec, {})
    documented = contract.documented_operations()
    schemes = resolved.get("components", {}).get("securitySchemes", {})
    operations = []
    for path, item in resolved["paths"].items():
        for method, spec_operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            merged = {(p["name"], p["in"]): p for p in item.get("parameters", ())}
            merged.update({(p["name"], p["in"]): p for p in spec_operation.get("parameters", ())})
            parameters = [Parameter(p["name"], p["in"], p.get("schema", {}), bool(p.get("required")),
                                    ContractValidator(p.get("schema", {}), format_checker=ContractValidator.FORMAT_CHECKER),
                                    _argument(p["name"]))
                          for location in ("query", "path", "header")
                          for p in merged.values() if p["in"] == location]
            prefix = "" if item.get("servers") else contract.API_BASE  # the token endpoint lives outside the base
            template = _PARAMETER.sub(r"(?P<\g<name>>[^/]+)", re.escape(prefix + path))
            operation = Operation(
                operation_id=spec_operation["operationId"], method=method.upper(), path=prefix + path,
                pattern=re.compile(f"^{template}$"), documented=spec_operation["operationId"] in documented,
                scopes=_scopes(spec_operation.get("security", resolved.get("security")), schemes),
                parameters=parameters,
                query_names=frozenset(p.name for p in parameters if p.location == "query"))
            request_body = spec_operation.get("requestBody")
            if request_body:
                content = request_body.get("content", {})
                operation.body_types = tuple(kind.lower() for kind in content)
                operation.body_required = bool(request_body.get("required"))
                schema = next(iter(content.values()), {}).get("schema", {})
                operation.body_default = schema.get("default")
                operation.body_nullable = bool(schema.get("nullable"))
                operation.body_validator = ContractValidator(schema, format_checker=ContractValidator.FORMAT_CHECKER)
            if validate_answers:
                for status, answer in spec_operation.get("responses", {}).items():
                    schema = answer.get("content", {}).get("application/json", {}).get("schema")
                    if schema is not None:
                        operation.answers[status] = ContractValidator(schema, format_checker=ContractValidator.FORMAT_CHECKER)
            operations.append(operation)
    return operations


def _scopes(security, schemes: dict) -> tuple[tuple[str, ...], ...] | None:
    """One set of scopes per alternative of an operation's `security` (a token holding every scope of
    one of them passes); None when it needs no bearer token (`security: []`)."""
    if not security:
        return None
    alternatives = []
    for requirement in security:
        for name, scopes in requirement.items():
            if schemes.get(name, {}).get("type") == "oauth2":
                alternatives.append(tuple(scopes))
    return tuple(alternatives) or None
