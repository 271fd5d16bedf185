"""create_app(): the one place that wires contract, rules, store, auth and errors together."""

from __future__ import annotations

import functools
import gc
import logging

import connexion
from connexion import ConnexionMiddleware
from connexion.lifecycle import ConnexionResponse
from connexion.middleware import MiddlewarePosition
from connexion.middleware.context import ContextMiddleware
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.options import SwaggerUIOptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from . import answers, console, envelope, offload, serving
from .api.handlers import resolve, resolved
from .app_context import SandboxContext
from .auth import Authority
from .contract import API_BASE, SPEC_PATH
from .extras import SandboxExtras
from .middleware.entrance import Entrance
from .middleware.journal_recording import JournalRecorder
from .middleware.pipeline import Pipeline
from .scheduling import Scheduling
from .settings import Settings
from .stores import StoreUnavailable, open_store
from .tenants import Tenants

log = logging.getLogger("pokitdok_sandbox")

# The contract's operations are answered by the sandbox's pipeline, placed before Connexion's router:
# Connexion's layers that did that work per request are left out of the app's stack (its documented
# way, "Customizing the middleware stack"). It keeps its server-error and exception layers, Swagger UI
# and the contract as JSON, the router of the routes outside the contract (console, /, /healthz) and
# the app's lifespan.
REPLACED = (SecurityMiddleware, RequestValidationMiddleware, ResponseValidationMiddleware, ContextMiddleware)
MIDDLEWARES = [middleware for middleware in ConnexionMiddleware.default_middlewares if middleware not in REPLACED]


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
    app = connexion.AsyncApp(__name__, middlewares=list(MIDDLEWARES))
    # Connexion serves the contract (Swagger UI, openapi.json) and knows its operations by the same table.
    app.add_api(SPEC_PATH, resolver=resolve,
                swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui"))
    # Sandbox additions (docs/sandbox-extras.md): their state in one service, applied by the
    # pipeline (sandbox/middleware/, the order of its layers described there).
    extras = SandboxExtras(settings.rate_limit)
    tenants.reset_hooks.append(extras.forget)
    context = SandboxContext(settings=settings, rules=rules, tenants=tenants, authority=authority, extras=extras)
    app.sandbox = context
    app.add_middleware(Entrance, position=MiddlewarePosition.BEFORE_EXCEPTION, context=context,
                       max_body_bytes=settings.max_body_bytes,
                       recorder=JournalRecorder(extras.request_journal, authority.tenant_of_request, API_BASE))
    app.add_middleware(Pipeline, position=MiddlewarePosition.BEFORE_ROUTING, context=context, handlers=resolved(),
                       validate_answers=settings.validate_responses)
    for kind in (HTTPException, Exception):  # (Connexion has its own answer for HTTPException)
        app.add_error_handler(kind, _error)
    app.add_url_rule("/", "index", _index, methods=["GET"])
    app.add_url_rule("/healthz", "healthz", functools.partial(_healthz, store), methods=["GET"])
    console.register(app)
    return app


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


def _error(request: Request, exc: Exception) -> ConnexionResponse:
    """Errors of the routes outside the contract (the console's, the router's 404 and 405), as answers.py has them."""
    status, headers, body = answers.render(request.scope, exc)
    return ConnexionResponse(status_code=status, mimetype="application/json", body=body, headers=headers)
