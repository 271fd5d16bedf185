"""The errors the sandbox answers, each knowing its own answer (docs/wire-format.md).

Every error is a `SandboxError`: its status, its short code, the field at fault (as data, never
inside the message), its headers, and `body(meta)`, the document it answers:

* 401 and the sandbox's other 403s (rate limit, admin token): the platform's bare
  `{"message": "Unauthorized" | "Forbidden"}`, with `error` (a short code) and `error_description`
  (what to do) added for people;
* a missing scope: 403 in the envelope, `data.errors.scope` in the platform's words as recorded
  (`"'user_schedule' scope required to access this API"`), beside the fields of every error;
* the token endpoint's refusals: RFC 6749's `{"error", "error_description"}` (`OAuthError`);
* every other error: the envelope, `data.errors` = status, code, message, field; a 422 adds
  `validation` (field -> messages), the platform's shape for "required information missing or invalid".

`answers.py` turns any exception into its answer (the one place that does); this module builds
no envelope of its own: `meta` is given to `body`.
"""

from __future__ import annotations

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
REALM = 'Bearer realm="pokitdok-sandbox"'
TOKEN_HELP = "get one from POST /oauth2/token"


class SandboxError(Exception):
    """A request the sandbox refuses. Raised before anything is changed. `extra`: fields of
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

    def body(self, meta: dict) -> dict:
        """The answer's document, `meta` being the envelope's (unused by the bare shapes)."""
        if self.status in BARE and not self.extra:
            return {"message": BARE[self.status], "error": self.code, "error_description": self.message}
        return {"meta": meta, "data": {"errors": self.errors()}}

    def errors(self) -> dict:
        """`data.errors`."""
        errors = {**(self.extra or {}), "status": self.status, "error": self.code, "message": self.message,
                  "field": self.field}
        if self.status == 422:
            errors["validation"] = {self.field or WHOLE_REQUEST: [_field_message(self.message, self.field)]}
        return errors


def _field_message(message: str, field: str | None) -> str:
    """The message as the validation map shows it under its field ("start_date must be ..." -> "must be ...")."""
    if field and message.startswith((field + " ", field + ": ")):
        return message[len(field) + 1:].lstrip()
    return message


def error_message(body: dict) -> tuple[str | None, str | None]:
    """The message and field of an error answer, whichever shape it has (for the request journal)."""
    errors = (body.get("data") or {}).get("errors") if isinstance(body.get("data"), dict) else None
    if isinstance(errors, dict):
        return errors.get("message"), errors.get("field")
    return body.get("error_description") or body.get("message"), None


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


class UnsupportedMediaType(SandboxError):
    def __init__(self, message: str):
        super().__init__(415, message, "Content-Type")


class NoSuchPath(SandboxError):
    def __init__(self, path: str, api_base: str):
        super().__init__(404, f"no such path: {path} (the API is under {api_base}/, tokens at /oauth2/token)")


class MethodNotAllowed(SandboxError):
    """A 405 lists what the resource allows (RFC 9110): every method the contract declares for the path."""

    def __init__(self, method: str, path: str, allowed: str):
        super().__init__(405, f"{method} is not allowed on {path}; it takes {allowed or 'no method'}",
                         headers={"Allow": allowed})


class TooLarge(SandboxError):
    def __init__(self, status: int, what: str, limit: int, field: str):
        super().__init__(status, f"the {what} is longer than {limit} bytes" if status == 414
                         else f"the {what} is larger than {limit} bytes", field)


class Unavailable(SandboxError):
    """The store is away (or a write could not be made durable): try again shortly."""

    def __init__(self, message: str):
        super().__init__(503, message, None, "store_unavailable", {"Retry-After": "1"})


class Internal(SandboxError):
    def __init__(self):
        super().__init__(500, "the sandbox failed unexpectedly; this is a bug, please report it")


class TokenMissing(SandboxError):
    """No bearer token at all (no Authorization header, or another scheme such as Basic): RFC 6750's
    challenge without an error code."""

    def __init__(self):
        super().__init__(401, f"send an access token as Authorization: Bearer <token>; {TOKEN_HELP}", None,
                         "token_missing", {"WWW-Authenticate": REALM})


class TokenRefused(SandboxError):
    """A bearer token that is not (or no longer) good, or a malformed one: a 401 saying which."""

    def __init__(self, code: str, message: str, field: str | None = "Authorization"):
        header = f'{REALM}, error="invalid_token", error_description="{message}"'
        super().__init__(401, message, field, code, headers={"WWW-Authenticate": header})


def malformed_bearer() -> TokenRefused:
    return TokenRefused("invalid_token", "the Authorization header must be Bearer <token>; get a token from "
                                         "POST /oauth2/token", None)


def scope_words(scopes) -> str:
    """The platform's words for a missing scope, as recorded: `'user_schedule' scope required to access
    this API` (several: `'a' and 'b' scopes required ...`)."""
    names = [f"'{name}'" for name in scopes] or ["a"]
    return f"{' and '.join(names)} scope{'s' if len(names) > 1 else ''} required to access this API"


class ScopeRefused(SandboxError):
    """A valid token without a scope the request needs: 403 in the envelope, `data.errors.scope`."""

    def __init__(self, scopes, message: str):
        scopes = [scopes] if isinstance(scopes, str) else list(scopes)
        header = f'{REALM}, error="insufficient_scope", scope="{" ".join(scopes)}"'
        super().__init__(403, message, "scope", "insufficient_scope", {"WWW-Authenticate": header},
                         {"scope": scope_words(scopes)})

    @classmethod
    def for_operation(cls, needed: list[str], held: list[str]) -> ScopeRefused:
        """An operation needing `needed`, asked with a token holding `held`."""
        wanted = " ".join(needed)
        plural = "s" if len(needed) > 1 else ""
        return cls(needed, f"this operation needs the scope{plural} {wanted} and the token has "
                           f"{' '.join(held) or 'none'}; get a token with scope={'+'.join(needed)} from POST /oauth2/token")


class OAuthError(SandboxError):
    """RFC 6749 section 5.2 errors of the token endpoint: `{"error": code, "error_description": message}`,
    never cached."""

    NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 section 5.1

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        headers = {**self.NO_STORE, **({"WWW-Authenticate": 'Basic realm="pokitdok-sandbox"'} if status == 401 else {})}
        super().__init__(status, message, field, code, headers=headers)

    def body(self, meta: dict) -> dict:
        return {"error": self.code, "error_description": self.message}
