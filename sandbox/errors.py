"""The one error shape every 4xx/5xx answer uses, and the exception that carries it."""

from __future__ import annotations

import json

# Short machine-readable codes by status, used when a caller gives none.
DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    500: "internal_error",
}


class SandboxError(Exception):
    """A request the rules refuse. Raised before anything is changed."""

    def __init__(self, status: int, message: str, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or DEFAULT_CODES.get(status, "error")

    def body(self) -> dict:
        return error_body(self.status, self.message, self.field, self.code)


def error_body(status: int, message: str, field: str | None = None, code: str | None = None) -> dict:
    return {
        "status": status,
        "error": code or DEFAULT_CODES.get(status, "error"),
        "message": message,
        "field": field,
    }


def error_json(status: int, message: str, field: str | None = None, code: str | None = None) -> bytes:
    return json.dumps(error_body(status, message, field, code)).encode()


async def send_error(send, status: int, message: str, field: str | None = None, code: str | None = None,
                     headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer an error in the declared shape straight from an ASGI middleware."""
    body = error_json(status, message, field, code)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})


class NotFound(SandboxError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(404, message, field)


class Conflict(SandboxError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(409, message, field)


class BadRequest(SandboxError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(400, message, field)


class Unprocessable(SandboxError):
    def __init__(self, message: str, field: str | None = None):
        super().__init__(422, message, field)
