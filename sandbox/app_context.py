"""What the handlers of one app need (settings, rules, tenants, authority, extras), in one object
carried in each request's ASGI scope (`context.SCOPE_KEY`)."""

from __future__ import annotations

from dataclasses import dataclass

from .auth import Authority
from .extras import SandboxExtras
from .scheduling import Scheduling
from .settings import Settings
from .tenants import Tenants


@dataclass
class SandboxContext:
    settings: Settings
    rules: Scheduling
    tenants: Tenants
    authority: Authority
    extras: SandboxExtras
