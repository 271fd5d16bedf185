"""Error answers in the platform's wire format (docs/wire-format.md), and the exception that carries them.

* 401 and the sandbox's other 403s (rate limit, admin token): the platform's bare
  `{"message": "Unauthorized" | "Forbidden"}`, with `error` (a short code) and `error_description`
  (what to do) added for people;
* a missing scope: 403 in the envelope, `data.errors.scope` in the platform's words as recorded
  (`"'user_schedule' scope required to access this API"`), beside the fields of every error;
* every other error: the envelope, `data.errors` = status, code, message, field; a 422 adds
  `validation` (field -> messages), the platform's shape for "required information missing or invalid".
"""

from __future__ import annotations

from . import envelope

# Short machine-readable codes by status, used when a caller gives none.
DEFAULT_CODES = {
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}
BARE = {401: "Unauthorized", 402: "Payment Required", 403: "Forbidden"}
# The key of `validation` when no single field is at fault.
WHOLE_REQUEST = "request"


class SandboxError(Exception):
    """A request the rules refuse. Raised before anything is changed. `extra`: fields of
    `data.errors` beside the usual ones (an error with them is always in the envelope)."""

    def __init__(self, status: int, message: str, field: str | None = None, code: str | None = None,
                 headers: dict | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or DEFAULT_CODES.get(status, "error")
        self.headers = headers or {}
        self.extra = extra


def scope_words(scopes) -> str:
    """The platform's words for a missing scope, as recorded: `'user_schedule' scope required to access
    this API` (several: `'a' and 'b' scopes required ...`)."""
    names = [f"'{name}'" for name in scopes] or ["a"]
    return f"{' and '.join(names)} scope{'s' if len(names) > 1 else ''} required to access this API"


class ScopeRefused(SandboxError):
    """A valid token without a scope the request needs: 403 in the envelope, `data.errors.scope`."""

    def __init__(self, scopes, message: str):
        scopes = [scopes] if isinstance(scopes, str) else list(scopes)
        header = f'Bearer realm="pokitdok-sandbox", error="insufficient_scope", scope="{" ".join(scopes)}"'
        super().__init__(403, message, "scope", "insufficient_scope", {"WWW-Authenticate": header},
                         {"scope": scope_words(scopes)})


def error_body(scope, status: int, message: str, field: str | None = None, code: str | None = None,
               extra: dict | None = None) -> dict:
    code = code or DEFAULT_CODES.get(status, "error")
    if status in BARE and not extra:
        return {"message": BARE[status], "error": code, "error_description": message}
    errors = {**(extra or {}), "status": status, "error": code, "message": message, "field": field}
    if status == 422:
        errors["validation"] = {field or WHOLE_REQUEST: [_field_message(message, field)]}
    return envelope.document(scope, {"errors": errors})


def _field_message(message: str, field: str | None) -> str:
    """The message as the validation map shows it under its field ("start_date must be ..." -> "must be ...")."""
    if field and message.startswith((field + " ", field + ": ")):
        return message[len(field) + 1:].lstrip()
    return message


def error_json(scope, status: int, message: str, field: str | None = None, code: str | None = None,
               extra: dict | None = None) -> bytes:
    return envelope.encode(error_body(scope, status, message, field, code, extra))


def error_message(body: dict) -> tuple[str | None, str | None]:
    """The message and field of an error answer, whichever shape it has (for the request journal)."""
    errors = (body.get("data") or {}).get("errors") if isinstance(body.get("data"), dict) else None
    if isinstance(errors, dict):
        return errors.get("message"), errors.get("field")
    return body.get("error_description") or body.get("message"), None


async def send_error(scope, send, status: int, message: str, field: str | None = None, code: str | None = None,
                     headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    """Answer an error straight from an ASGI middleware."""
    body = error_json(scope, status, message, field, code)
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


class Unprocessable(SandboxError):
    """The request breaks the contract (a missing or malformed field, an unknown code, dates out of order)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(422, message, field)
