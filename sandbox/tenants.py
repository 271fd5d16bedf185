"""The tenant registry: the one place that opens a tenant's data set, seeds and resets it.

Like moto's per-account backends, a tenant (an OAuth client id) gets its data set
lazily: the first time anything opens it, it is seeded with the defaults
`pokitdok-sandbox seed` last left in the store (else the server's). The rules and
the read-only views open tenants through here and nowhere else; whatever else the
app keeps per tenant (fault rules, the request journal) hangs a reset hook here.
"""

from __future__ import annotations

import gc
import hashlib
import json
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, replace
from typing import Iterator

from pokitdok_sandbox.fixtures import generate_dataset

from . import datasets
from .datasets import SeedSettings
from .errors import Conflict, Unprocessable
from .stores import SlotLimitReached, Store, TenantData


# Where a loaded fixture's records are kept (by content digest), for resets.
FIXTURE_KEY = "fixture:"


def _no_room(total: int, more_slots: int, most: int) -> Conflict:
    return Conflict(f"this sandbox holds {total} slots across its tenants and {more_slots} more would pass its "
                    f"limit of {most} (--max-slots); delete slots, seed a smaller data set, or ask its "
                    "operator to raise the limit", "slots")


class Tenants:
    def __init__(self, store: Store, defaults: SeedSettings | None = None, limits=None):
        """`defaults`: the seed settings of tenants seen for the first time, unless the store
        remembers others; `limits`: the server's `Limits` (None: no limit on seeds)."""
        self.store = store
        self.defaults = datasets.remembered_defaults(store, defaults or SeedSettings())
        self.limits = limits
        # Called with a tenant id after its data set is reset.
        self.reset_hooks: list[Callable[[str], object]] = []

    def open(self, tenant_id: str) -> None:
        """Make sure the tenant has a data set: seeded once on first use, even when several
        processes see it at once."""
        if not self.store.tenant_exists(tenant_id):
            settings = asdict(self.defaults)
            self.check_room(settings["slots"])
            self._put(tenant_id, settings, generate_dataset(**settings), if_new=True)

    @contextmanager
    def transaction(self, tenant_id: str, readonly: bool = False) -> Iterator[TenantData]:
        """The tenant's data set (seeded on first use) in one store transaction."""
        self.open(tenant_id)
        with self.store.transaction(tenant_id, readonly=readonly) as tenant:
            yield tenant

    def seed(self, tenant_id: str, **choices) -> dict:
        """Replace the tenant's data set with a freshly generated one (`seed`, `providers`,
        `slots` chosen, the rest from the defaults); answer its summary."""
        self._check_size(choices)  # what the client asks for; the operator's defaults may be larger
        settings = replace(self.defaults, **choices)
        if self.store.tenant_exists(tenant_id):
            with self.store.transaction(tenant_id, readonly=True) as tenant:
                held = tenant.count("slots")
        else:
            held = 0
        self.check_room(settings.slots - held)
        return self._store_dataset(tenant_id, settings)

    def check_room(self, more_slots: int, within: TenantData | None = None) -> None:
        """A 409 unless the server's slots of all tenants together (`--max-slots`) leave room for `more_slots`.
        `within`: the transaction that will add them, which then holds the total until it ends, so that
        the check is exact across processes (`TenantData.slot_total`); without it, the check is
        as of now (a seed's, before its data set is written)."""
        most = self.limits.slots if self.limits is not None else None
        if most is None or more_slots <= 0:
            return
        total = within.slot_total() if within is not None else self.store.slot_total()
        if total + more_slots > most:
            raise _no_room(total, more_slots, most)

    def _put(self, tenant_id: str, settings: dict, dataset: dict, if_new: bool = False) -> None:
        """Store a whole data set; the check of `--max-slots` before it is as of then, this one is exact."""
        most = self.limits.slots if self.limits is not None else None
        try:
            self.store.put_dataset(tenant_id, settings, dataset, if_new=if_new, most_slots=most)
        except SlotLimitReached as refused:
            raise Conflict(f"this data set's {refused.slots} slots and the {refused.others} of the other tenants would "
                           f"pass this sandbox's limit of {refused.most} slots (--max-slots); seed a smaller data "
                           "set, delete slots elsewhere, or ask its operator to raise the limit", "slots") from None

    def load(self, tenant_id: str, dataset: dict, description: str | None, source: str = "fixture") -> dict:
        """Replace the tenant's data set with a fixture's records (`fixture_files`, already checked);
        a reset comes back to them. The summary calls it by its `description`, else its `source`."""
        key = _digest(dataset)
        self.store.put_meta(FIXTURE_KEY + key, dataset)  # content-addressed: the same file is kept once
        settings = {"fixture": key, "description": description, "source": source}
        with _long_lived_records():
            self._put(tenant_id, settings, dataset)
        return self.summary(tenant_id)

    def reset(self, tenant_id: str) -> dict:
        """Back to the state the tenant was last seeded (or loaded) with; the reset hooks forget the rest."""
        remembered = self.store.tenant_settings(tenant_id)
        if remembered and "fixture" in remembered:
            dataset = self.store.meta(FIXTURE_KEY + remembered["fixture"])
            with _long_lived_records():
                self._put(tenant_id, remembered, dataset)
            summary = self.summary(tenant_id)
        else:
            summary = self._store_dataset(tenant_id, SeedSettings(**remembered) if remembered else self.defaults)
        for forget in self.reset_hooks:
            forget(tenant_id)
        return summary

    def summary(self, tenant_id: str) -> dict:
        settings = self.store.tenant_settings(tenant_id) or {}
        with self.store.transaction(tenant_id) as tenant:
            counts = {
                "schedulers": tenant.count("schedulers"),
                "appointment_types": tenant.count("appointment_types"),
                "providers": tenant.count("providers"),
                "patients": tenant.count("patients"),
                "slots": tenant.count("slots"),
                "booked": tenant.count_booked(),
            }
        if "fixture" in settings:
            return {"fixture": settings.get("description") or settings.get("source") or settings["fixture"], **counts}
        return {"seed": settings.get("seed"), "seed_providers": settings.get("providers"),
                "seed_slots": settings.get("slots"), **counts}

    def _store_dataset(self, tenant_id: str, settings: SeedSettings) -> dict:
        with _long_lived_records():
            self._put(tenant_id, asdict(settings), generate_dataset(**asdict(settings)))
        return self.summary(tenant_id)

    def _check_size(self, choices: dict) -> None:
        if self.limits is None:
            return
        for field, limit in (("slots", self.limits.seed_slots), ("providers", self.limits.seed_providers)):
            if choices.get(field, 0) > limit:
                raise Unprocessable(f"{field} {choices[field]} is over this server's limit of {limit} per seed "
                                 f"(--max-seed-{field}); ask for at most {limit}", field)


_bulk_lock = threading.Lock()
_bulk_runs = 0


@contextmanager
def _long_lived_records():
    """No cyclic garbage collection while a data set is generated and stored, and the new records
    frozen out of it afterwards: a full collection walks every young object while holding the GIL,
    and in the middle of a 100k-slot seed that stalled other tenants' requests for over 500 ms.
    Seeds on several threads at once: collection resumes when the last one ends."""
    global _bulk_runs
    with _bulk_lock:
        _bulk_runs += 1
        gc.disable()
    try:
        yield
    finally:
        with _bulk_lock:
            _bulk_runs -= 1
            if _bulk_runs == 0:
                gc.freeze()  # what the seed keeps lives as long as the tenant (see app.create_app)
                gc.enable()


def _digest(dataset: dict) -> str:
    """A short name for a data set's content (where the store keeps a loaded fixture for resets)."""
    text = json.dumps(dataset, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
