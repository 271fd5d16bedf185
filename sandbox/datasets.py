"""Seed settings: what a tenant's data set is generated from (the Faker fixtures).

A tenant remembers the settings it was seeded with, so a reset regenerates
exactly the same records (the generator is deterministic for a seed); the store
remembers the settings `pokitdok-sandbox seed` last chose, as the default for
new tenants. Seeding itself is the tenant registry's (`tenants.py`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pokitdok_sandbox.fixtures import DEFAULT_PROVIDERS, DEFAULT_SEED, DEFAULT_SLOTS

# Where `pokitdok-sandbox seed` leaves its settings, as the default for new tenants.
SEED_DEFAULTS_KEY = "seed_defaults"


@dataclass(frozen=True)
class SeedSettings:
    seed: int = DEFAULT_SEED
    providers: int = DEFAULT_PROVIDERS
    slots: int = DEFAULT_SLOTS


def remembered_defaults(store, fallback: SeedSettings) -> SeedSettings:
    """The seed settings the store (a `stores.Store`) was last seeded with, else `fallback`."""
    remembered = store.meta(SEED_DEFAULTS_KEY)
    return SeedSettings(**remembered) if remembered else fallback


def remember_defaults(store, settings: SeedSettings) -> None:
    store.put_meta(SEED_DEFAULTS_KEY, asdict(settings))
