"""The store interface both backends implement; the rules talk to nothing else.

A store holds every tenant's data set, the OAuth clients and tokens, and a
few settings (`meta`). The rules work on one tenant at a time inside
`Store.transaction(tenant_id)`, which yields a `TenantData`: everything read
and changed through it is one atomic unit (TinyDB: one process-wide lock;
PostgreSQL: one database transaction with row and advisory locks).

Slot queries answer a *superset* of what the rules want (say, every slot of
a provider starting in a window); the rules filter the records exactly. So a
backend may answer from whatever index it has, as long as it never misses a
match, and the rules stay the one place that decides.

Dates passed to the queries are naive UTC datetimes; None means unbounded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Iterable

from ..slot_search import SlotSearch

# The key field of each kind of record.
KINDS = {
    "schedulers": "scheduler_uuid",
    "appointment_types": "appointment_type_uuid",
    "providers": "pd_provider_uuid",
    "patients": "uuid",
    "slots": "pd_appointment_uuid",
    "registrations": "registration_id",
}
FORMAT_MARK = "pokitdok-sandbox"

#: When the current unit of work must be done (a `time.monotonic()` value), set by `offload.run` for
#: a request; a store that waits on the network gives up with `StoreUnavailable` by then.
#: None: the store's own default budget per call.
deadline: ContextVar[float | None] = ContextVar("pokitdok_sandbox_store_deadline", default=None)


class StoreError(Exception):
    """The store cannot be used (unreachable, corrupt, foreign, unwritable, in use)."""


class StoreUnavailable(StoreError):
    """The store went away while serving (the app answers 503; a command prints the message)."""


class OverlapRefused(StoreError):
    """The store itself refused a slot overlapping another of the provider at the same place."""


class SlotLimitReached(StoreError):
    """A data set refused because the slots of every tenant together would pass `most_slots`."""

    def __init__(self, others: int, slots: int, most: int):
        super().__init__(f"{others} slots in other tenants and {slots} in this data set pass the limit of {most}")
        self.others, self.slots, self.most = others, slots, most


@dataclass
class CheckReport:
    lines: list[str]  # what a person reads
    intact: bool  # opens as it is (a torn last journal line is expected after a crash)


class TenantData(ABC):
    """One tenant's records, inside a transaction."""

    id: str

    # -- any kind of record, by its key -------------------------------------------
    @abstractmethod
    def get(self, kind: str, key: str, for_update: bool = False) -> dict | None:
        """The record, or None. `for_update`: no other transaction changes it until this one ends."""

    @abstractmethod
    def all(self, kind: str) -> list[dict]:
        """Every record of a kind, in the order they were stored (catalogue kinds only: small)."""

    @abstractmethod
    def insert(self, kind: str, record: dict) -> bool:
        """Add a record; False (and no change) when one with its key exists already.
        A store with its own overlap constraint raises `OverlapRefused` for an overlapping slot."""

    @abstractmethod
    def replace(self, kind: str, record: dict) -> None:
        """Store a record over the one with the same key."""

    @abstractmethod
    def remove(self, kind: str, key: str) -> None: ...

    @abstractmethod
    def count(self, kind: str) -> int: ...

    # -- slots ---------------------------------------------------------------------
    @abstractmethod
    def count_booked(self) -> int: ...

    @abstractmethod
    def slot_total(self) -> int:
        """Slots of every tenant together. From here until this transaction ends, no other
        transaction that asked too adds a slot (in any process): a cap on the total checked
        against this answer holds for this transaction's inserts."""

    @abstractmethod
    def slots_of_provider(self, provider: str, start: datetime | None, end: datetime | None) -> list[dict]:
        """Slots of a provider starting in [start, end]."""

    def search_candidates(self, search: SlotSearch) -> list[dict]:
        """The slots a search can match, from the narrowest index (a superset: the rules filter them)."""
        if search.patient is not None:
            return self.slots_of_patient(search.patient)
        if search.provider is not None:
            return self.slots_of_provider(search.provider, search.start, search.end)
        return self.slots_near(search.origin, search.radius, search.start, search.end)

    def open_slots_page(self, search: SlotSearch, offset: int, limit: int) -> tuple[int, list[dict]] | None:
        """For a search of a provider's open slots (`search.open_slots_of_provider`): the slots matching
        every filter of `search`, ordered by start date; how many, and `limit` of them from `offset`.
        Exact, unlike the other slot queries. None when the store has no faster way than
        `search_candidates` for this search (the rules then filter and page those)."""
        return None

    @abstractmethod
    def slots_of_patient(self, patient: str) -> list[dict]:
        """Slots booked by a patient (lower-case uuid)."""

    @abstractmethod
    def slots_near(self, point, miles: float, start: datetime | None, end: datetime | None) -> list[dict]:
        """Slots starting in [start, end] within about `miles` of `point` (a generous superset)."""

    @abstractmethod
    def slots_starting_between(self, start: datetime | None, end: datetime | None) -> list[dict]: ...

    @abstractmethod
    def overlap_candidates(self, provider: str, place, start: datetime, end: datetime) -> list[dict]:
        """Slots of a provider that may overlap [start, end) at `place`."""

    @abstractmethod
    def lock_calendar(self, provider: str) -> None:
        """No other transaction adds a slot for this provider until this one ends."""


class Store(ABC):
    """Tenants' data sets, OAuth clients and tokens, settings."""

    #: what the data lives in, for messages ("PostgreSQL at <description> did not answer ...")
    name: ClassVar[str] = "the store"
    #: where the data lives, fit to show (no password)
    description: str
    #: several server processes may share this store (`serve --workers N`)
    multi_process: ClassVar[bool] = False
    #: the store has a schema that `migrate` creates or updates
    has_schema: ClassVar[bool] = False
    #: calls wait on the network: the app awaits those waits on the event loop (`offload.run`, `greenbridge`)
    blocking: ClassVar[bool] = False

    @abstractmethod
    def transaction(self, tenant_id: str, readonly: bool = False) -> AbstractContextManager[TenantData]:
        """One atomic unit of work on a tenant's data set. `readonly`: the block only reads, with one
        query (a backend may then skip transaction bookkeeping)."""

    # -- settings kept in the store ------------------------------------------------
    @abstractmethod
    def meta(self, key: str) -> dict | None: ...

    @abstractmethod
    def put_meta(self, key: str, record: dict) -> None: ...

    # -- tenants ---------------------------------------------------------------------
    @abstractmethod
    def tenant_settings(self, tenant_id: str) -> dict | None:
        """The seed settings a tenant was last seeded with; None for a tenant never seen."""

    @abstractmethod
    def tenant_ids(self) -> list[str]: ...

    def tenant_exists(self, tenant_id: str) -> bool:
        return self.tenant_settings(tenant_id) is not None

    @abstractmethod
    def put_dataset(self, tenant_id: str, settings: dict, dataset: dict[str, Iterable[dict]],
                    if_new: bool = False, most_slots: int | None = None) -> bool:
        """Replace a tenant's whole data set atomically. With `if_new`, only when the tenant
        has none yet (two processes seeding a new tenant at once seed it once). True if stored.
        With `most_slots`, `SlotLimitReached` (nothing stored) when the data set holds more slots than
        the tenant's present one and, with the other tenants' slots, would pass it: counted while slot
        creations of every process wait, as theirs are."""

    # -- OAuth clients and tokens ------------------------------------------------------
    @abstractmethod
    def get_client(self, client_id: str) -> dict | None: ...

    @abstractmethod
    def add_client(self, record: dict, most: int | None = None) -> dict | None:
        """Register a client unless its id exists; answer the stored client either way. With `most`,
        None (nothing stored) when that many clients exist already: checked and stored as one step,
        whatever other processes register meanwhile."""

    @abstractmethod
    def get_token(self, access_token: str) -> dict | None: ...

    def cached_token(self, access_token: str, fresh: bool = True) -> dict | None:
        """The token if it can be had without waiting (a blocking store's cache), else None. `fresh`:
        only a copy recent enough to accept the token on (`get_token` reads it again otherwise);
        without, any copy seen (to tell whose a request is, not to let it in)."""
        return None if self.blocking else self.get_token(access_token)

    @abstractmethod
    def put_token(self, record: dict, now: float, keep: int | None = None) -> None:
        """Store a token, dropping the tokens expired at `now` and, with `keep`, the client's oldest
        tokens beyond `keep` live ones (the new one included), without reading every token."""

    @abstractmethod
    def client_count(self) -> int:
        """How many OAuth clients (tenants) are registered."""

    def migrate(self) -> int:
        """Create or update the schema (stores with `has_schema`); answer its version."""
        raise NotImplementedError(f"{type(self).__name__} has no schema to migrate")

    @classmethod
    def exists(cls, location: str | None) -> bool:
        """Whether there is a store at `location` already (opening one may create it)."""
        return True

    @classmethod
    def check(cls, location: str | None, salvage_to: str | None = None) -> "CheckReport":
        """What the store at `location` holds and whether it is damaged; with `salvage_to`, every
        valid record copied into a new store there. Only for stores kept in files."""
        raise StoreError(f"check reads database files; {cls.__name__} keeps its data elsewhere, check it there")

    def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers now (the health check)."""

    def write_refusal(self) -> str | None:
        """Why the store refuses writes now while it still answers reads (a full disk), or None."""
        return None

    def slot_total(self) -> int:
        """Slots of every tenant together."""
        total = 0
        for tenant_id in self.tenant_ids():
            with self.transaction(tenant_id, readonly=True) as tenant:
                total += tenant.count("slots")
        return total

    def warm_up(self, tenant_id: str) -> None:
        """Build whatever a tenant's first request would otherwise wait for."""

    def defer_durability(self) -> object:
        """From here on in this context (one request), changes note what they still need to become
        durable instead of waiting for it; answer a handle for `settle`. A store whose changes are
        durable when their transaction ends has nothing to note."""
        return None

    async def settle(self, deferred: object) -> None:
        """Wait until the changes noted under `deferred` are durable; raise `StoreUnavailable` if
        one of them was rolled back instead."""

    def close(self) -> None:
        """Release connections and files (the store is not used afterwards)."""
