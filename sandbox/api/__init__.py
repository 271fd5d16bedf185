"""Thin HTTP handlers, one module per resource: parse, call the rules, shape the answer.

The pipeline (`middleware/pipeline.py`) has already checked every parameter and body against
openapi.yaml and the token's scopes; `user` is the token's client id, i.e. the tenant. Which
handler answers which operation: `handlers.py`.
Every answer is the platform's envelope (docs/wire-format.md): `one(data)`, or
`page(items, limit, offset)` for collections and searches.

Handlers are coroutines: the pipeline runs a plain function on a worker thread, and
that hand-off cost more than the rules and the store together. They run on the
event loop and reach the rules through `call`, which awaits a store on the
network (PostgreSQL) without blocking the loop, within the request's deadline (`offload.py`).
"""

from __future__ import annotations

from .. import envelope, offload
from ..context import current, scope
from ..scheduling import Scheduling


def rules() -> Scheduling:
    return current().rules


async def call(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` (the rules, or another reader of the store), its waits on a store on the
    network awaited (`offload.run`)."""
    return await offload.run(current().tenants.store, fn, *args, **kwargs)


async def heavy_call(user: str, fn, *args, **kwargs):
    """`call` for a read whose cost grows with the tenant's data: off the loop on every store, a few
    of a tenant's at once (`offload.heavy`)."""
    return await offload.heavy(current().tenants.store, user, fn, *args, **kwargs)


def one(data) -> dict:
    """The answer `{meta, data}` (200)."""
    return envelope.document(scope(), data)


def page(items: list, limit: int | None, offset: int | None) -> dict:
    """One page of a collection, with `meta.count`, `next` and `previous`."""
    return envelope.paged_document(scope(), items, limit, offset)


def page_of(items: list, count: int, limit: int, offset: int) -> dict:
    """A page already cut (`items`, from `offset`) of `count` records, with `meta.count`, `next` and `previous`."""
    return envelope.paged_document(scope(), items, limit, offset, count=count)
