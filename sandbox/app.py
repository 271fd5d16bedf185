"""create_app(): the one place that wires contract, rules, store, auth and errors together."""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import logging
import pkgutil
import re

import connexion
from connexion.exceptions import OAuthScopeProblem, ProblemException
from connexion.jsonifier import Jsonifier
from connexion.lifecycle import ConnexionResponse
from connexion.middleware import MiddlewarePosition
from connexion.options import SwaggerUIOptions
from jsonschema import Draft4Validator
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from . import api, auth, console, contract, envelope, offload, serving
from .auth import Authority, OAuthError
from .context import SandboxContext
from .contract import API_BASE, SPEC_PATH, TOKEN_PATH
from .api import token
from .errors import SandboxError, ScopeRefused, error_json
from .extras import SandboxExtras
from .middleware.fast_path import FastPath
from .middleware.extras_gate import ExtrasGate
from .middleware.entrance import Entrance
from .middleware.journal_recording import JournalRecorder
from .middleware.operation_tap import OperationTap
from .validation import explain
from .scheduling import Scheduling
from .settings import Settings
from .stores import StoreUnavailable, open_store
from .tenants import Tenants
from .validation import SANDBOX_VALIDATORS

log = logging.getLogger("pokitdok_sandbox")
# The token operation takes a URL-encoded or a multipart form; Connexion warns about an operation
# with two request content types on every request to it, which says nothing to an operator.
logging.getLogger("connexion.operations.openapi3").addFilter(
    lambda record: "accepts multiple content types" not in record.msg)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@Draft4Validator.FORMAT_CHECKER.checks("uuid")
def _is_uuid(value) -> bool:
    """Draft 4 has no uuid format; Connexion validates with Draft 4, so teach it one."""
    # fullmatch: `$` alone would also accept a trailing newline ("<uuid>\n").
    return not isinstance(value, str) or bool(_UUID.fullmatch(value))


def create_app(settings: Settings | None = None) -> connexion.AsyncApp:
    settings = settings or Settings.from_env()
    store = open_store(settings)
    authority = Authority(store, settings)
    tenants = Tenants(store, settings.seed, settings.limits)
    rules = Scheduling(tenants, settings.limits)
    tenants.open(settings.demo_client_id)
    store.warm_up(settings.demo_client_id)
    # The loaded records are long-lived: keep the cyclic GC from walking them on
    # every full collection (pauses of 100+ ms at 100k slots otherwise).
    gc.collect()
    gc.freeze()

    # AsyncApp, not FlaskApp: a Flask app sits behind a WSGI bridge that hands every request to a
    # worker thread and back, which cost more than the rules and the store together.
    app = connexion.AsyncApp(__name__, jsonifier=Jsonifier(envelope.CODEC))
    app.add_api(
        SPEC_PATH,
        strict_validation=True,
        validator_map=SANDBOX_VALIDATORS,
        validate_responses=settings.validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui"),
    )
    _remember_signatures()
    # Sandbox additions (docs/sandbox-extras.md): their state in one service, applied by the
    # middlewares of sandbox/middleware/ (their order is described there).
    extras = SandboxExtras(settings.rate_limit)
    tenants.reset_hooks.append(extras.forget)
    context = SandboxContext(settings=settings, rules=rules, tenants=tenants, authority=authority, extras=extras)
    app.sandbox = context
    app.add_middleware(Entrance, position=MiddlewarePosition.BEFORE_EXCEPTION, context=context,
                       max_body_bytes=settings.max_body_bytes,
                       recorder=JournalRecorder(extras.request_journal, authority.tenant_of_request, API_BASE))
    error_handlers = _add_error_handlers(app)
    if settings.fast_path:
        app.add_middleware(FastPath, position=MiddlewarePosition.BEFORE_EXCEPTION, context=context,
                           api=app.middleware.apis[-1], error_handlers=error_handlers)
    app.add_middleware(OperationTap, position=MiddlewarePosition.BEFORE_SECURITY)
    app.add_middleware(ExtrasGate, position=MiddlewarePosition.BEFORE_VALIDATION, extras=extras)
    app.add_url_rule(TOKEN_PATH, "oauth2_token", token.token, methods=["POST"])
    app.add_url_rule("/", "index", _index, methods=["GET"])
    app.add_url_rule("/healthz", "healthz", functools.partial(_healthz, store), methods=["GET"])
    console.register(app)
    return app


def _remember_signatures() -> None:
    """Give each handler and the token check its `__signature__`.

    Connexion calls `inspect.signature()` on the handler and on the token-info function for
    every request, which builds the signature anew each time (about a tenth of a request's
    CPU time here); a function's own `__signature__` answers at once.
    """
    modules = [importlib.import_module(f"{api.__name__}.{info.name}") for info in pkgutil.iter_modules(api.__path__)]
    for module in [*modules, auth]:
        for function in vars(module).values():
            if inspect.isfunction(function) and function.__module__ == module.__name__:
                function.__signature__ = inspect.signature(function)


def create_app_from_env() -> connexion.AsyncApp:
    """The app of one worker process of `serve --workers N` (settings from the environment)."""
    serving.end_with_parent()
    return create_app(Settings.from_env())


def _json(data, headers: dict | None = None, status: int = 200) -> Response:
    """A JSON answer outside the contract's operations, written like theirs."""
    return Response(envelope.encode(data), status_code=status, media_type="application/json", headers=headers)


HEALTH_SECONDS = 0.3  # /healthz answers within this, whether or not the store does


async def _healthz(store, _request: Request):
    """Whether the server and its store answer: 200 (`ok`, or `degraded` when writes are refused and reads
    answered), or 503 `unavailable` saying what is wrong (for load balancers), within `HEALTH_SECONDS` even
    when the store does not answer at all."""
    try:
        await offload.run(store, store.ping, seconds=HEALTH_SECONDS, margin=0)
    except StoreUnavailable as exc:
        return _json({"status": "unavailable", "store": store.description, "message": str(exc)}, status=503)
    refusal = store.write_refusal()
    if refusal is not None:  # reads are answered: still a 200
        return _json({"status": "degraded", "store": store.description, "writes": "refused", "message": refusal})
    return _json({"status": "ok", "store": store.description})


async def _index(_request: Request):
    return _json({
        "service": "pokitdok-sandbox",
        "api": API_BASE,
        "token_url": "/oauth2/token",
        "contract": f"{API_BASE}/openapi.json",
        "swagger_ui": f"{API_BASE}/ui/",
        "console": "/console",
    })


# -- errors: every 4xx/5xx in the one declared shape ---------------------------

_FIELD_SUFFIX = re.compile(r" - '(?P<field>[^']*)'$")


def _response(request, status: int, message: str, field: str | None = None, code: str | None = None,
              headers: dict | None = None, extra: dict | None = None) -> ConnexionResponse:
    return ConnexionResponse(status_code=status, mimetype="application/json",
                             body=error_json(request.scope, status, message, field, code, extra), headers=headers or {})


def _oauth_response(exc: OAuthError) -> ConnexionResponse:
    return ConnexionResponse(status_code=exc.status, mimetype="application/json",
                             body=envelope.encode(exc.body()), headers={**token.NO_STORE, **exc.headers})


def _is_token_endpoint(request) -> bool:
    return request.url.path.endswith(TOKEN_PATH)


def _token_refused(request, message: str) -> ConnexionResponse:
    """Connexion's own 401s, as RFC 6750 tells them apart: no bearer token at all (no Authorization
    header, or another scheme such as Basic) carries no error code; a malformed bearer token is invalid."""
    if not request.headers.get("authorization", "").lower().startswith("bearer "):
        return _response(request, 401, "send an access token as Authorization: Bearer <token>; get one from "
                         "POST /oauth2/token", None, "token_missing", {"WWW-Authenticate": 'Bearer realm="pokitdok-sandbox"'})
    description = "the Authorization header must be Bearer <token>; get a token from POST /oauth2/token"
    header = f'Bearer realm="pokitdok-sandbox", error="invalid_token", error_description="{description}"'
    return _response(request, 401, description, None, "invalid_token", {"WWW-Authenticate": header})


def _scope_refused(request, exc: OAuthScopeProblem) -> ConnexionResponse:
    """A token without the operation's scope: the platform's 403 in the envelope, as recorded."""
    needed = " ".join(exc.required_scopes or [])
    held = " ".join(exc.token_scopes or []) or "none"
    plural = "s" if " " in needed else ""
    description = (f"this operation needs the scope{plural} {needed} and the token has {held}; "
                   f"get a token with scope={needed.replace(' ', '+')} from POST /oauth2/token")
    refused = ScopeRefused(needed.split(), description)
    return _response(request, 403, refused.message, refused.field, refused.code, refused.headers, refused.extra)


def _add_error_handlers(app: connexion.AsyncApp) -> dict:
    """Register the app's error handlers; answer them (exception class -> handler) for the fast path."""
    handlers = _error_handlers()
    for kind, handler in handlers.items():
        app.add_error_handler(kind, handler)
    return handlers


def _error_handlers() -> dict:
    def sandbox_error(request, exc: SandboxError):
        if isinstance(exc, OAuthError):
            return _oauth_response(exc)
        return _response(request, exc.status, exc.message, exc.field, exc.code, exc.headers, exc.extra)

    def store_unavailable(request, exc: StoreUnavailable):  # the stores' neutral error, as HTTP
        return _response(request, 503, str(exc), None, "store_unavailable", {"Retry-After": "1"})

    def problem(request, exc: ProblemException):
        # jsonschema appends the failing schema after a blank line: keep the first part.
        message = str(exc.detail or exc.title or "request refused").split("\n\n")[0]
        field = None
        match = _FIELD_SUFFIX.search(message)
        if match:
            field, message = match["field"] or None, message[: match.start()]
        if exc.status == 401:
            return _token_refused(request, message)
        status = 422 if exc.status == 400 else exc.status  # the platform: no 400s, 422 for what breaks the contract
        field, message = explain(field, message)
        if _is_token_endpoint(request) and status in (415, 422):
            if field in ("Content-Type", "body"):  # the same words as the plain route's
                message = token.REFUSED_TYPE
            return _oauth_response(OAuthError(400, "invalid_request", message, field))
        return _response(request, status, message, field)

    def http_error(request, exc: HTTPException):
        if isinstance(exc, OAuthScopeProblem):
            return _scope_refused(request, exc)
        # A 405 lists what the resource allows (RFC 9110): all the contract's methods for the
        # path, not only those of the route that matched (or none, for the token route outside the API).
        headers = dict(exc.headers or {})
        message = str(exc.detail or "request refused")
        if exc.status_code == 405:
            path = request.url.path
            allowed = next((methods for pattern, methods in contract.methods_by_path() if pattern.match(path)), None)
            headers["Allow"] = allowed or headers.get("Allow", "")
            message = f"{request.method} is not allowed on {path}; it takes {headers['Allow'] or 'no method'}"
        if exc.status_code == 404 and message == "Not Found":  # the router's own words: say where to look
            message = f"no such path: {request.url.path} (the API is under {API_BASE}/, tokens at /oauth2/token)"
        if exc.status_code == 400:
            # Starlette's own 400: a form it cannot parse (multipart/form-data without a boundary, even on
            # a GET). No answer is a 400: it is the Content-Type that breaks the contract.
            message = (f"{message.rstrip('.')}: the body cannot be read as {request.headers.get('content-type')}; "
                       "send JSON with Content-Type: application/json, or no Content-Type without a body")
            if _is_token_endpoint(request):
                return _oauth_response(OAuthError(400, "invalid_request", message, "Content-Type"))
            return _response(request, 422, message, "Content-Type", headers=headers or None)
        return _response(request, exc.status_code, message, headers=headers or None)

    def undecodable(request, exc: UnicodeDecodeError):
        return _response(request, 422, f"the request is not valid UTF-8 ({exc.reason}); send UTF-8 JSON", "body")

    def disconnected(request, _exc: ClientDisconnect):
        # The client went away while sending its body: nobody to answer, nothing changed, no bug.
        log.debug("client disconnected during %s %s", request.method, request.url.path)
        return _response(request, 422, "the client disconnected before sending the whole body", "body")

    def unexpected(request, exc: Exception):
        log.error("unexpected error", exc_info=exc)
        return _response(request, 500, "the sandbox failed unexpectedly; this is a bug, please report it")

    return {
        SandboxError: sandbox_error,
        StoreUnavailable: store_unavailable,
        ProblemException: problem,
        HTTPException: http_error,
        UnicodeDecodeError: undecodable,
        ClientDisconnect: disconnected,
        Exception: unexpected,
    }
