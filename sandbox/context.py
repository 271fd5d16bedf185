"""The current request, for handlers: its ASGI scope (set by the pipeline for the time of the
call) and, in it, the app's context (the `SandboxContext` of `app_context.py`, put there by the
entrance). Several apps may share a process (tests do), so nothing here is global but the
request being answered.
"""

from __future__ import annotations

from contextvars import ContextVar, Token

from starlette.datastructures import Headers

SCOPE_KEY = "pokitdok_sandbox.context"
_scope: ContextVar[dict] = ContextVar("pokitdok_sandbox.scope")


def entered(scope) -> Token:
    """The pipeline answers `scope` from now on (until `left`)."""
    return _scope.set(scope)


def left(token: Token) -> None:
    _scope.reset(token)


def scope() -> dict:
    """The ASGI scope of the request being answered."""
    return _scope.get()


def current():
    """The app's context of the request being answered (a `SandboxContext`)."""
    return _scope.get()[SCOPE_KEY]


def of_scope(request_scope):
    """The app's context in a request's scope, or None (a scope the entrance never saw)."""
    return request_scope.get(SCOPE_KEY)


class _Request:
    """What handlers read of the request being answered besides their arguments: its headers."""

    @property
    def headers(self) -> Headers:
        return Headers(scope=_scope.get())


request = _Request()
