"""Seeding and resetting tenants' data sets from the Faker fixtures.

A tenant remembers the settings it was seeded with, so `reset` regenerates
exactly the same records (the generator is deterministic for a seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fixtures import DEFAULT_PROVIDERS, DEFAULT_SEED, DEFAULT_SLOTS, generate_dataset

from .stores import Store

# Where `pokitdok-sandbox seed` leaves its settings, as the default for new tenants.
SEED_DEFAULTS_KEY = "seed_defaults"


@dataclass(frozen=True)
class SeedSettings:
    seed: int = DEFAULT_SEED
    providers: int = DEFAULT_PROVIDERS
    slots: int = DEFAULT_SLOTS


def remembered_defaults(store: Store, fallback: SeedSettings) -> SeedSettings:
    """The seed settings the store was last seeded with, else `fallback`."""
    remembered = store.meta(SEED_DEFAULTS_KEY)
    return SeedSettings(**remembered) if remembered else fallback


def remember_defaults(store: Store, settings: SeedSettings) -> None:
    store.put_meta(SEED_DEFAULTS_KEY, asdict(settings))


def seed_tenant(store: Store, tenant_id: str, settings: SeedSettings) -> dict:
    """Replace the tenant's data set with a freshly generated one; answer its summary."""
    store.put_dataset(tenant_id, asdict(settings), generate_dataset(**asdict(settings)))
    return summary(store, tenant_id)


def reset_tenant(store: Store, tenant_id: str, defaults: SeedSettings) -> dict:
    """Back to the state the tenant was last seeded with."""
    remembered = store.tenant_settings(tenant_id)
    return seed_tenant(store, tenant_id, SeedSettings(**remembered) if remembered else defaults)


def ensure_seeded(store: Store, tenant_id: str, defaults: SeedSettings) -> None:
    """Seed a tenant seen for the first time (once, even when several processes see it at once),
    with the defaults `pokitdok-sandbox seed` last left in the store, else `defaults`."""
    if not store.tenant_exists(tenant_id):
        settings = asdict(remembered_defaults(store, defaults))
        store.put_dataset(tenant_id, settings, generate_dataset(**settings), if_new=True)


def summary(store: Store, tenant_id: str) -> dict:
    settings = store.tenant_settings(tenant_id) or {}
    with store.transaction(tenant_id) as tenant:
        return {
            "seed": settings.get("seed"),
            "schedulers": tenant.count("schedulers"),
            "appointment_types": tenant.count("appointment_types"),
            "providers": tenant.count("providers"),
            "patients": tenant.count("patients"),
            "slots": tenant.count("slots"),
            "booked": tenant.count_booked(),
        }
