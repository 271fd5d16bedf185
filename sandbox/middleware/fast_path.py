"""The fast path: the platform's scheduling operations answered without Connexion's per-request layers.

Why it exists: on the benchmark's read mix about a third of a request's time went to the chain
of ASGI layers before the handler (Connexion's routing, security, validation and context
middlewares, each routing the request again and building its helpers anew for every request),
which made a stateful sandbox slower than a stateless mock. This one layer does the same work
for the operations it knows, once:

* routing from a table compiled from the contract's paths as Connexion loaded them (anchored
  like Starlette's routes; a path that matches none, or matches with another method, goes on);
* the bearer token through the same authority (`Authority.verify`, what the contract's
  `x-tokenInfoFunc` calls) and the operation's scopes from its `security`;
* the operation noted in the request's facts (what `operation_tap` does), the tenant learnt;
* validation by Connexion's own validator objects, built once per operation from the same
  contract and with the same validator map (`validation.SANDBOX_VALIDATORS`): the parameter
  validator and the content-type check of `RequestValidationOperation` for operations without
  a body, the whole `RequestValidationOperation` for those with one (and
  `ResponseValidationOperation` when responses are validated), so parameters, content types
  and bodies are checked by the very code the slow path runs and the two cannot drift apart;
* parameters decorated (Connexion's `get_arguments`, which types them from the contract) and
  answers serialised (Connexion's response decorator) for the same handlers; for operations
  with a body, Connexion's whole decorator chain, built once;
* errors answered by the app's own error handlers (`app._error_handlers()`), as Connexion's
  exception layer would.

It sits after the sandbox's entrance (`entrance.py`), so the activity id, the request journal,
the group commit and the guard's refusals and rewrites are the same on both paths.

What falls back, untouched, to the full Connexion stack (which answers it as it always has):
anything it has no route for (unknown paths, other methods, the token endpoint, sandbox
administration, the console, Swagger UI), any request whose token is missing, malformed,
unknown, expired or lacks the scope (the 401/403 answers are Connexion's; a store that is away
during the token check is its 503, as there, not a second try), a request asking for
a fault (`X-Sandbox-Fault`, `X-Sandbox-Delay`) or from a tenant with fault rules or a rate
limit, and a server mounted below a root path. Nothing has been read or changed when it falls
back.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from connexion.context import _context, _operation, _receive, _scope
from connexion.decorators import StarletteDecorator
from connexion.decorators.parameter import get_arguments, pythonic, sanitized
from connexion.decorators.response import AsyncResponseDecorator
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware.exceptions import connexion_wrapper
from connexion.middleware.request_validation import RequestValidationOperation
from connexion.middleware.response_validation import ResponseValidationOperation
from connexion.operations import OpenAPIOperation
from connexion.resolver import Resolver
from connexion.uri_parsing import OpenAPIURIParser
from connexion.utils import inspect_function_arguments
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from .. import contract
from ..auth import TokenRefused
from ..extras.fault_rules import DELAY_HEADER, FAULT_HEADER
from ..request_facts import facts_of, short_name
from ..stores import StoreUnavailable

_ROUTING = "connexion_routing"
_CONTEXT = "connexion_context"
_REQUEST = "pokitdok_sandbox.fast_path.request"  # the checked ConnexionRequest, for the handler
_FAULT_HEADERS = frozenset({FAULT_HEADER.lower().encode(), DELAY_HEADER.lower().encode()})
_PARAMETER = re.compile(r"\\\{(?P<name>[^/]+?)\\\}")


@dataclass
class _Route:
    pattern: re.Pattern
    operation_id: str
    short_name: str
    scopes: tuple[frozenset[str], ...]  # alternatives: a token with all of one of them passes
    operation: OpenAPIOperation
    validated: object  # Connexion's validation layer(s) for the operation, ending in the handler


class FastPath:
    def __init__(self, app, context, api, error_handlers: dict, base_path: str = contract.API_BASE):
        """`api`: the Connexion API the app serves (its specification and options);
        `error_handlers`: exception class -> the app's Connexion error handler. The operations
        taken: the platform's (not sandbox administration) that need a bearer token."""
        self.app = app
        self.context = context
        self.error_handlers = error_handlers
        self.base_path = base_path
        self.routes: dict[str, list[_Route]] = {}
        options = api.kwargs
        resolver = options.get("resolver") or Resolver()
        decorator = StarletteDecorator(pythonic_params=options.get("pythonic_params") or False,
                                       jsonifier=options["jsonifier"])
        documented = contract.documented_operations()
        for path, item in api.specification["paths"].items():
            for method, spec in item.items():
                if not isinstance(spec, dict) or spec.get("operationId") not in documented:
                    continue
                operation = api.specification.operation_cls.from_spec(
                    api.specification, path=path, method=method, resolver=resolver,
                    uri_parser_class=options.get("uri_parser_class") or OpenAPIURIParser)
                scopes = _scopes_of(operation)
                if scopes is None or not _string_path_parameters(operation):
                    continue
                bodyless = not operation.is_request_body_defined
                validated = _Call(operation, options) if bodyless else \
                    _Handler(operation, decorator.decorate(operation.function))
                if options.get("validate_responses"):
                    validated = ResponseValidationOperation(validated, operation=operation,
                                                            validator_map=options.get("validator_map"))
                validated = RequestValidationOperation(validated, operation=operation,
                                                       strict_validation=options.get("strict_validation") or False,
                                                       validator_map=options.get("validator_map"))
                if bodyless:
                    validated = _Checks(validated, operation, options)
                template = _PARAMETER.sub(r"(?P<\g<name>>[^/]+)", re.escape(base_path + path))
                self.routes.setdefault(method.upper(), []).append(_Route(
                    re.compile(f"^{template}$"), operation.operation_id, short_name(operation.operation_id),
                    scopes, operation, validated))

    async def __call__(self, scope, receive, send):
        try:
            route, path_params, tenant, info = await self._take(scope) if scope["type"] == "http" else (None,) * 4
        except StoreUnavailable as exc:  # the token check's store is away: its 503, as on the slow path
            await self._answer_error(scope, receive, send, exc)
            return
        if route is None:
            await self.app(scope, receive, send)
            return
        facts = facts_of(scope)
        if facts is not None:
            facts.operation, facts.documented, facts.tenant = route.short_name, True, tenant
        extensions = dict(scope.get("extensions") or {})
        extensions[_ROUTING] = {"api_base_path": self.base_path, "operation_id": route.operation_id}
        extensions[_CONTEXT] = {"user": tenant, "token_info": info}
        scope = dict(scope, path_params=path_params, extensions=extensions)
        try:
            await route.validated(scope, receive, send)
        except Exception as exc:
            await self._answer_error(scope, receive, send, exc)

    async def _answer_error(self, scope, receive, send, exc: Exception) -> None:
        """As Connexion's exception layer: the app's handler for the exception's class answers."""
        handler = next(self.error_handlers[kind] for kind in type(exc).__mro__ if kind in self.error_handlers)
        response = await connexion_wrapper(handler)(Request(scope, receive), exc)
        await response(scope, receive, send)

    async def _take(self, scope):
        """(route, path parameters, tenant, token info) when this path answers the request, else Nones."""
        nothing = (None,) * 4
        routes = self.routes.get(scope["method"])
        if routes is None or scope.get("root_path"):
            return nothing
        path = scope["path"]
        for route in routes:
            match = route.pattern.match(path)
            if match is not None:
                break
        else:
            return nothing
        authorization = None
        for name, value in scope["headers"]:
            if name in _FAULT_HEADERS:
                return nothing
            if name == b"authorization" and authorization is None:
                authorization = value
        # Connexion's reading of the header: the scheme, then the rest, split once on whitespace.
        parts = authorization.decode("latin-1").split(maxsplit=1) if authorization is not None else ()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return nothing
        try:
            info = await self.context.authority.verify(parts[1])
        except TokenRefused:
            return nothing
        tenant = info["sub"]
        held = set(info["scope"])
        if not any(needed <= held for needed in route.scopes):
            return nothing
        extras = self.context.extras
        if extras.faults.has_rules(tenant) or extras.rate_limits.limit_of(tenant) is not None:
            return nothing
        return route, match.groupdict(), tenant, info


class _Checks:
    """An operation without a request body: what `RequestValidationOperation` checks for it
    (parameters, then the content type), with Connexion's validator objects built once."""

    def __init__(self, validation: RequestValidationOperation, operation: OpenAPIOperation, options: dict):
        self.validation = validation  # Connexion's, for its content-type check
        self.next_app = validation.next_app
        self.uri_parser = operation.uri_parser_class(operation.parameters, operation.body_definition())
        self.parameters = validation._validator_map["parameter"](
            operation.parameters, uri_parser=self.uri_parser, strict_validation=validation.strict_validation,
            security_query_params=validation.security_query_params)

    async def __call__(self, scope, receive, send):
        request = ConnexionRequest(scope, receive, uri_parser=self.uri_parser)
        self.parameters.validate_request(request)
        mime_type, _encoding = self.validation.extract_content_type(scope["headers"])
        self.validation.validate_mime_type(mime_type)
        scope[_REQUEST] = request
        await self.next_app(scope, receive, send)


class _Call:
    """The handler of an operation without a request body, as Connexion's decorators call it:
    arguments from the checked request (typed by `get_arguments` from the contract) and the
    token check's context, the answer built by Connexion's response decorator."""

    def __init__(self, operation: OpenAPIOperation, options: dict):
        self.operation = operation
        self.function = operation.function
        self.arguments, self.has_kwargs = inspect_function_arguments(self.function)
        self.sanitize = pythonic if options.get("pythonic_params") else sanitized
        self.answer = AsyncResponseDecorator(framework=StarletteFramework, jsonifier=options["jsonifier"])

    async def __call__(self, scope, receive, send):
        context = scope["extensions"][_CONTEXT]
        _context.set(context)
        _operation.set(self.operation)
        _receive.set(receive)
        _scope.set(scope)
        request = scope.pop(_REQUEST)
        files = await request.files()  # as Connexion's decorator: a form body is parsed (and refused) here
        kwargs = get_arguments(self.operation, path_params=request.path_params, query_params=request.query_params,
                               body=None, files=files, arguments=self.arguments, has_kwargs=self.has_kwargs,
                               sanitize=self.sanitize, content_type=request.mimetype)
        kwargs = {self.sanitize(name): value for name, value in kwargs.items()}
        kwargs.update((name, value) for name, value in context.items() if self.has_kwargs or name in self.arguments)
        if asyncio.iscoroutinefunction(self.function):
            result = await self.function(**kwargs)
        else:
            result = await run_in_threadpool(self.function, **kwargs)
        if StarletteFramework.is_framework_response(result):
            response = result
        elif isinstance(result, ConnexionResponse):
            response = StarletteFramework.connexion_to_framework_response(result)
        else:
            response = self.answer.build_framework_response(result)
        await response(scope, receive, send)


class _Handler:
    """The end of the line: Connexion's operation context, then the decorated handler and its answer."""

    def __init__(self, operation: OpenAPIOperation, function):
        self.operation = operation
        self.function = function  # Connexion's parameter and response decorators around the handler
        self.uri_parser = operation.uri_parser_class(operation.parameters, operation.body_definition())

    async def __call__(self, scope, receive, send):
        _context.set(scope["extensions"][_CONTEXT])
        _operation.set(self.operation)
        _receive.set(receive)
        _scope.set(scope)
        response = await self.function(ConnexionRequest(scope, receive, uri_parser=self.uri_parser))
        await response(scope, receive, send)


def _scopes_of(operation: OpenAPIOperation) -> tuple[frozenset[str], ...] | None:
    """The scopes an operation needs, when its security is the one OAuth2 scheme with a token check:
    one set of scopes per alternative (a token holding every scope of one of them passes)."""
    security = operation.security
    if not security:
        return None
    alternatives = []
    for requirement in security:
        if len(requirement) != 1:
            return None
        (name, scopes), = requirement.items()
        scheme = operation.security_schemes.get(name, {})
        if scheme.get("type") != "oauth2" or "x-tokenInfoFunc" not in scheme:
            return None
        alternatives.append(frozenset(scopes))
    return tuple(alternatives)


def _string_path_parameters(operation: OpenAPIOperation) -> bool:
    """Path parameters Starlette would route as plain strings (no int or float converters)."""
    return all(parameter.get("schema", {}).get("type", "string") == "string"
               for parameter in operation.parameters if parameter["in"] == "path")
