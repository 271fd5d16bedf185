"""Configuration of one sandbox server. Every field has a command-line flag and an env variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .datasets import SeedSettings
from .stores import location_of, redact

DEFAULT_DB = "pokitdok-sandbox.json"
# The demo client's credentials: the server registers them, the contract kit signs in with them.
CLIENT_ID_ENV, CLIENT_SECRET_ENV = "POKITDOK_SANDBOX_CLIENT_ID", "POKITDOK_SANDBOX_CLIENT_SECRET"
# The --db (or --store) value that keeps everything in memory, as SQLite spells it.
MEMORY = ":memory:"


@dataclass(frozen=True)
class Limits:
    """Bounds on the work and memory one client can cause (docs/configuration.md, "Limits"). Over HTTP only:
    the operator's own `pokitdok-sandbox seed` is not limited."""

    # OAuth client ids (tenants) the server registers; further unknown ids are refused.
    tenants: int = 1000
    # Slots one tenant's data set may hold before POST /schedule/slots/ is refused.
    tenant_slots: int = 200_000
    # One POST /sandbox/seed: generated slots and providers.
    seed_slots: int = 20_000
    seed_providers: int = 200
    # A location search's radius, in miles.
    radius_miles: float = 5000.0
    # Slots of every tenant together (what the embedded store holds in memory); seeds and new slots past it
    # are refused.
    slots: int = 2_000_000
    # Live access tokens per client: issuing one more drops that client's oldest.
    client_tokens: int = 1000

    # flag / env suffix for each field
    NAMES = {"tenants": "max-tenants", "tenant_slots": "max-tenant-slots", "seed_slots": "max-seed-slots",
             "seed_providers": "max-seed-providers", "radius_miles": "max-radius", "slots": "max-slots",
             "client_tokens": "max-client-tokens"}

    @classmethod
    def from_env(cls, env, **overrides) -> "Limits":
        values = {}
        for name, flag in cls.NAMES.items():
            raw = overrides.get(name)
            if raw is None:
                raw = env.get("POKITDOK_SANDBOX_" + flag.upper().replace("-", "_"))
            if raw is not None and raw != "":
                kind = float if name == "radius_miles" else int
                values[name] = kind(raw)
                if values[name] < 0:
                    raise ValueError(f"--{flag} must not be negative")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        return {"POKITDOK_SANDBOX_" + flag.upper().replace("-", "_"): str(getattr(self, name))
                for name, flag in self.NAMES.items()}


@dataclass(frozen=True)
class Settings:
    # Path of the TinyDB file; None keeps everything in memory (tests, throw-away runs).
    db_path: str | None = DEFAULT_DB
    # A postgresql:// URL (a shared store for several processes), or a TinyDB path; wins over db_path.
    store_url: str | None = None
    token_ttl_seconds: int = 3600
    demo_client_id: str = "sandbox-demo"
    demo_client_secret: str = "sandbox-demo-secret"
    # Unknown client ids register themselves on first token request (one tenant each).
    open_registration: bool = True
    seed: SeedSettings = field(default_factory=SeedSettings)
    # When set, /sandbox/reset and /sandbox/seed also need this in X-Sandbox-Admin-Token
    # (`serve` sets one whenever it listens beyond loopback).
    admin_token: str | None = None
    # Larger request bodies are refused with 413 before they are read.
    max_body_bytes: int = 256 * 1024
    # Check every answer against the contract too (the test suite turns this on).
    validate_responses: bool = False
    limits: Limits = field(default_factory=Limits)
    # Every tenant's requests per window, e.g. "1000/hour" (None: no limit); see extras/rate_limits.py.
    rate_limit: str | None = None
    # The URL clients reach the server at (behind a proxy), for paging links; None: the listening address.
    public_url: str | None = None

    @classmethod
    def from_env(cls, limits: dict | None = None, **overrides) -> "Settings":
        """From the environment; `overrides` (command-line values, None when not given) win, and so
        do the given `limits` fields."""
        env = os.environ
        values = {
            "db_path": env.get("POKITDOK_SANDBOX_DB", DEFAULT_DB),
            "store_url": env.get("POKITDOK_SANDBOX_STORE") or None,
            "token_ttl_seconds": int(env.get("POKITDOK_SANDBOX_TOKEN_TTL", "3600")),
            "demo_client_id": env.get(CLIENT_ID_ENV, "sandbox-demo"),
            "demo_client_secret": env.get(CLIENT_SECRET_ENV, "sandbox-demo-secret"),
            "open_registration": env.get("POKITDOK_SANDBOX_OPEN_REGISTRATION", "1") not in ("0", "false", "no"),
            "admin_token": env.get("POKITDOK_SANDBOX_ADMIN_TOKEN") or None,
            "limits": Limits.from_env(env, **(limits or {})),
            "rate_limit": env.get("POKITDOK_SANDBOX_RATE_LIMIT") or None,
            "public_url": env.get("POKITDOK_SANDBOX_PUBLIC_URL") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if overrides.get("db_path") is not None and overrides.get("store_url") is None:
            values["store_url"] = None  # --db names the TinyDB file, whatever the environment says
        if values["store_url"] == MEMORY:
            values["store_url"], values["db_path"] = None, MEMORY
        if values["db_path"] == MEMORY:
            values["db_path"] = None  # no file at all: everything in memory, gone when the process ends
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that make `from_env` give these settings back (for worker processes)."""
        env = {
            "POKITDOK_SANDBOX_TOKEN_TTL": str(self.token_ttl_seconds),
            CLIENT_ID_ENV: self.demo_client_id,
            CLIENT_SECRET_ENV: self.demo_client_secret,
            "POKITDOK_SANDBOX_OPEN_REGISTRATION": "1" if self.open_registration else "0",
            "POKITDOK_SANDBOX_ADMIN_TOKEN": self.admin_token or "",
            "POKITDOK_SANDBOX_STORE": self.store_url or "",
            **self.limits.to_env(),
            "POKITDOK_SANDBOX_RATE_LIMIT": self.rate_limit or "",
            "POKITDOK_SANDBOX_PUBLIC_URL": self.public_url or "",
        }
        if self.db_path is not None:
            env["POKITDOK_SANDBOX_DB"] = self.db_path
        return env

    @property
    def store_description(self) -> str:
        location = location_of(self)
        return redact(location) if location else "memory"
