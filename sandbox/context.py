"""What the handlers of one app need (settings, rules, authority, extras), carried in each
request's ASGI scope by the request guard: several apps may share a process (tests do), so
nothing here is global.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from connexion.context import scope as _operation_scope

if TYPE_CHECKING:
    from .auth import Authority
    from .extras import SandboxExtras
    from .scheduling import Scheduling
    from .settings import Settings
    from .tenants import Tenants

SCOPE_KEY = "pokitdok_sandbox.context"


@dataclass
class SandboxContext:
    settings: Settings
    rules: Scheduling
    tenants: Tenants
    authority: Authority
    extras: SandboxExtras


def current() -> SandboxContext:
    """The context of the app serving the current operation (inside a handler)."""
    return _operation_scope[SCOPE_KEY]


def of_scope(scope) -> SandboxContext | None:
    return scope.get(SCOPE_KEY)
