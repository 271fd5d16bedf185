"""The one place an exception becomes an answer, whichever layer raised it.

A `SandboxError` renders itself (`errors.py`: status, body, headers); the few exceptions that
are not the sandbox's own are named here once: the stores' `StoreUnavailable` (503), a body
that is not UTF-8 or whose client went away (422), Starlette's own HTTP errors from the router
of the routes outside the contract (404, 405, and the 400 of a form it cannot parse), and
anything else, which is a bug (500, logged).
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from . import contract, envelope
from .errors import Internal, MethodNotAllowed, NoSuchPath, SandboxError, Unavailable, Unprocessable
from .stores import StoreUnavailable

log = logging.getLogger("pokitdok_sandbox")
JSON = "application/json"


def as_error(scope, exc: BaseException) -> SandboxError:
    """The sandbox's error for any exception raised while answering the request of `scope`."""
    if isinstance(exc, SandboxError):
        return exc
    if isinstance(exc, StoreUnavailable):  # the stores' neutral error, as HTTP
        return Unavailable(str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return Unprocessable(f"the request is not valid UTF-8 ({exc.reason}); send UTF-8 JSON", "body")
    if isinstance(exc, ClientDisconnect):
        # The client went away while sending its body: nobody to answer, nothing changed, no bug.
        log.debug("client disconnected during %s %s", scope.get("method"), scope.get("path"))
        return Unprocessable("the client disconnected before sending the whole body", "body")
    if isinstance(exc, HTTPException):
        return _from_router(scope, exc)
    log.error("unexpected error", exc_info=exc)
    return Internal()


def _from_router(scope, exc: HTTPException) -> SandboxError:
    """Starlette's errors, from the routes outside the contract (the pipeline answers its own)."""
    path, method = scope.get("path", ""), scope.get("method", "")
    if exc.status_code == 404:
        return NoSuchPath(path, contract.API_BASE)
    if exc.status_code == 405:
        allowed = contract.allowed_methods(path)
        return MethodNotAllowed(method, path, allowed if allowed is not None else (exc.headers or {}).get("Allow", ""))
    if exc.status_code == 400:
        # A form Starlette cannot parse (multipart/form-data without a boundary): the Content-Type breaks the contract.
        return Unprocessable(unreadable_form(scope, str(exc.detail)), "Content-Type")
    return SandboxError(exc.status_code, str(exc.detail or "request refused"), headers=dict(exc.headers or {}))


def unreadable_form(scope, detail: str) -> str:
    content_type = next((value.decode("latin-1") for name, value in scope.get("headers", ()) if name == b"content-type"),
                        None)
    return (f"{detail.rstrip('.')}: the body cannot be read as {content_type}; "
            "send JSON with Content-Type: application/json, or no Content-Type without a body")


def render(scope, exc: BaseException) -> tuple[int, dict, bytes]:
    """(status, headers, body) of the answer to `exc`."""
    error = as_error(scope, exc)
    return error.status, error.headers, envelope.encode(error.body(envelope.meta(scope)))


def response(scope, exc: BaseException) -> Response:
    status, headers, body = render(scope, exc)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


async def send(scope, send_, exc: BaseException, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer `exc` straight from an ASGI layer (`headers`: more of them, already encoded)."""
    status, named, body = render(scope, exc)
    await send_json(send_, status, body, named, headers)


async def send_json(send_, status: int, body: bytes, headers: dict,
                    encoded: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """A JSON answer sent from an ASGI layer: `headers` by name, `encoded` already as bytes."""
    await send_({"type": "http.response.start", "status": status,
                 "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode()),
                             *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()),
                             *encoded]})
    await send_({"type": "http.response.body", "body": body})
