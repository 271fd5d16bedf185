"""Seeding and resetting tenants' data sets from the Faker fixtures.

A tenant remembers the settings it was seeded with, so `reset` regenerates
exactly the same records (the generator is deterministic for a seed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fixtures import DEFAULT_PROVIDERS, DEFAULT_SEED, DEFAULT_SLOTS, generate_dataset

from .store import Store


# Where `pokitdok-sandbox seed` leaves its settings, as the default for new tenants.
SEED_DEFAULTS_KEY = "seed_defaults"


@dataclass(frozen=True)
class SeedSettings:
    seed: int = DEFAULT_SEED
    providers: int = DEFAULT_PROVIDERS
    slots: int = DEFAULT_SLOTS


def remembered_defaults(store: Store, fallback: SeedSettings) -> SeedSettings:
    """The seed settings the database file was last seeded with, else `fallback`."""
    with store.lock:
        remembered = store.meta(SEED_DEFAULTS_KEY)
    return SeedSettings(**remembered) if remembered else fallback


def remember_defaults(store: Store, settings: SeedSettings) -> None:
    with store.lock:
        store.put_meta(SEED_DEFAULTS_KEY, asdict(settings))


def seed_tenant(store: Store, tenant_id: str, settings: SeedSettings) -> dict:
    """Replace the tenant's data set with a freshly generated one; answer its summary."""
    dataset = generate_dataset(**asdict(settings))
    with store.lock:
        store.put_dataset(tenant_id, asdict(settings), dataset)
    return summary(store, tenant_id)


def reset_tenant(store: Store, tenant_id: str, defaults: SeedSettings) -> dict:
    """Back to the state the tenant was last seeded with."""
    with store.lock:
        remembered = store.tenant_settings(tenant_id)
    return seed_tenant(store, tenant_id, SeedSettings(**remembered) if remembered else defaults)


def ensure_seeded(store: Store, tenant_id: str, defaults: SeedSettings) -> None:
    """Seed a tenant seen for the first time. Call with the store lock held."""
    if store.tenant_settings(tenant_id) is None:
        seed_tenant(store, tenant_id, defaults)


def summary(store: Store, tenant_id: str) -> dict:
    with store.lock:
        tenant = store.tenant(tenant_id)
        settings = store.tenant_settings(tenant_id) or {}
        return {
            "seed": settings.get("seed"),
            "schedulers": tenant.count("schedulers"),
            "appointment_types": tenant.count("appointment_types"),
            "providers": tenant.count("providers"),
            "patients": tenant.count("patients"),
            "slots": tenant.count("slots"),
            "booked": len(tenant.find("slots", lambda s: s["booked"])),
        }
