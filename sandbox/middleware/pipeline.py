"""The pipeline: every request to the contract's operations (everything under the API base, and
the token endpoint), answered in one layer, in this order:

1. routing, from a table compiled once from the contract (`operations.py`): a path it does not
   know is a 404, a method the path does not take a 405 listing those it takes;
2. the operation noted in the request's facts (`request_facts.py`);
3. the bearer token, for operations whose `security` asks for one: read from `Authorization`,
   checked by the authority (`Authority.verify`), the tenant noted, the operation's scopes
   required (401 or 403 otherwise);
4. for the platform's operations, the sandbox's extras (`extras_gate.py`): the tenant's rate
   limit, then injected faults and delays;
5. parameters read and checked (query, path, header), then the body's content type and the body;
6. the handler called with what it asks for among `user` (the tenant), `token_info`, the
   parameters by their Python names and `body` (or, for the token endpoint's forms, the request);
7. its answer written (`envelope.encode`), checked against the contract when `validate_answers`.

Any exception on the way is answered by `answers.py`, the one place that renders errors. The
entrance (`entrance.py`) comes first (activity id, guard, group commit, request journal);
Swagger UI and `openapi.json` are Connexion's, ahead of this layer; what is not under the API
base (the console, `/`, `/healthz`) goes on to Connexion's router.
"""

from __future__ import annotations

import inspect
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from .. import answers, contract, envelope
from ..context import entered, left
from ..errors import (MethodNotAllowed, NoSuchPath, SandboxError, ScopeRefused, TokenMissing, Unprocessable,
                      malformed_bearer)
from ..operations import FORMS, Operation, compile_operations
from ..request_facts import facts_of, learn_tenant
from . import extras_gate
from .guard import read_all


class _Handler:
    """A handler and the keywords it takes."""

    def __init__(self, function):
        self.function = function
        self.is_coroutine = inspect.iscoroutinefunction(function)
        parameters = inspect.signature(function).parameters.values()
        self.takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
        self.names = frozenset(p.name for p in parameters)

    def keywords(self, offered: dict) -> dict:
        return offered if self.takes_any else {k: v for k, v in offered.items() if k in self.names}


class Pipeline:
    def __init__(self, app, context, handlers: dict, validate_answers: bool = False):
        """`handlers`: operationId -> handler (`api/handlers.py`)."""
        self.app = app
        self.context = context
        self.operations: dict[str, list[Operation]] = {}  # by method
        self.paths: list[tuple] = []  # (pattern, the methods it takes)
        self.handlers: dict[str, _Handler] = {}
        for operation in compile_operations(validate_answers):
            self.handlers[operation.operation_id] = _Handler(handlers[operation.operation_id])
            routes = [operation]
            if not operation.path.startswith(contract.API_BASE + "/"):  # the token endpoint: at the base too
                routes.append(operation.under(contract.API_BASE))
            for route in routes:
                self.operations.setdefault(route.method, []).append(route)
                if route.method == "GET":
                    self.operations.setdefault("HEAD", []).append(route)
                for index, (pattern, methods) in enumerate(self.paths):
                    if pattern.pattern == route.pattern.pattern:
                        self.paths[index] = (pattern, f"{methods}, {route.method}")
                        break
                else:
                    self.paths.append((route.pattern, route.method))

    def _ours(self, path: str) -> bool:
        return path.startswith(contract.API_BASE + "/") or path == contract.TOKEN_PATH

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self._ours(scope["path"]):
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message):
            nonlocal started
            started = True
            await send(message)

        token = entered(scope)
        try:
            await self._answer(scope, receive, tracked)
        except Exception as exc:
            if started:
                raise
            await answers.send(scope, send, exc)
        finally:
            left(token)

    def _route(self, method: str, path: str):
        for operation in self.operations.get(method, ()):
            match = operation.pattern.match(path)
            if match is not None:
                return operation, match.groupdict()
        for pattern, methods in self.paths:
            if pattern.match(path):
                raise MethodNotAllowed(method, path, methods)
        raise NoSuchPath(path, contract.API_BASE)

    async def _answer(self, scope, receive, send):
        operation, path_parameters = self._route(scope["method"], scope["path"])
        facts = facts_of(scope)
        if facts is not None:
            facts.operation, facts.documented = operation.operation_id, operation.documented
        offered = {}
        if operation.scopes is not None:
            info = await self._token_info(scope, operation)
            offered = {"user": info["sub"], "token_info": info}
        if operation.documented and facts is not None \
                and await extras_gate.answered(self.context.extras, facts, scope, send):
            return
        handler = self.handlers[operation.operation_id]
        if operation.takes_form:  # the token endpoint: its adapter reads the form
            response = await handler.function(Request(scope, receive))
            await response(scope, receive, send)
            return
        headers = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True):
            query.setdefault(name, []).append(value)
        offered.update(operation.arguments(query, path_parameters, headers))
        content_type = headers.get("content-type")
        if operation.body_types:
            _media, charset = operation.content_type(content_type)
            body = operation.body(await read_all(receive), charset)
            offered["body"] = body if body is not None else (operation.body_default or {})
        elif content_type and content_type.lower().startswith(FORMS[1]):
            await _parsed_form(scope, receive)
        result = await self._call(handler, handler.keywords(offered))
        await self._respond(operation, result, scope, receive, send)

    async def _token_info(self, scope, operation: Operation) -> dict:
        """The token's info, the tenant noted; refused when missing, unknown, expired or short of scopes."""
        authorization = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        text = authorization.decode("latin-1") if authorization is not None else ""
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise malformed_bearer() if text.lower().startswith("bearer ") else TokenMissing()
        info = await self.context.authority.verify(parts[1])
        learn_tenant(scope, info["sub"])  # known now, even if the scope check then refuses
        held = set(info["scope"])
        if not any(set(needed) <= held for needed in operation.scopes):
            raise ScopeRefused.for_operation(list(operation.scopes[0]), list(info["scope"]))
        return info

    @staticmethod
    async def _call(handler: _Handler, keywords: dict):
        if handler.is_coroutine:
            return await handler.function(**keywords)
        return await run_in_threadpool(handler.function, **keywords)

    async def _respond(self, operation: Operation, result, scope, receive, send) -> None:
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        status, headers = 200, {}
        if isinstance(result, tuple):
            result, status, headers = result
        body = b"" if result is None else envelope.encode(result) + b"\n"
        if result is not None and operation.answers:
            _check_answer(operation, status, body)
        await answers.send_json(send, status, body, headers)


def _check_answer(operation: Operation, status: int, body: bytes) -> None:
    """An answer the contract does not describe is the sandbox's bug: a 500, never sent as if right."""
    validator = operation.answers.get(str(status)) or operation.answers.get("default")
    if validator is None:
        return
    error = next(iter(validator.iter_errors(orjson.loads(body))), None)
    if error is not None:
        where = ".".join(str(part) for part in error.path)
        raise SandboxError(500, f"the answer does not conform to the contract ({error.message[:200]} at "
                                f"{where or 'the top'}); this is a bug, please report it")


async def _parsed_form(scope, receive) -> None:
    """A form sent to an operation without a body is read (and ignored); one that cannot be read is refused."""
    try:
        await Request(scope, receive).form()
    except HTTPException as exc:
        raise Unprocessable(answers.unreadable_form(scope, str(exc.detail)), "Content-Type") from None
