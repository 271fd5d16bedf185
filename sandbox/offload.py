"""Store work off the event loop, with a deadline.

A store whose calls block on the network (`Store.blocking`: PostgreSQL) is never called from the
event loop: `run(store, fn, ...)` runs the work on one of a few store threads and the loop goes on
answering other requests (`/healthz` included) meanwhile. The work gets `REQUEST_SECONDS`: the
store reads the deadline (`stores.base.deadline`) and gives up with `StoreUnavailable` when it
passes (no pooled connection in time, or no answer on one: see `stores/postgres.py`), and the
request answers its 503 by then even if a worker is still stuck.

A store kept in this process's memory (TinyDB) answers at once: its work runs inline, as before
(its group commit relies on that), except heavy reads (`heavy`: a location search may read every
slot of its tenant), which run on threads of their own on every store so that the loop goes on
answering other tenants meanwhile, and a store's quick calls never wait behind them. A tenant runs
at most `HEAVY_PER_TENANT` of those at once; its further ones wait their turn, so one tenant cannot
take every heavy thread (nor, on PostgreSQL, every pooled connection).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import time
from concurrent.futures import ThreadPoolExecutor

from .stores import StoreUnavailable
from .stores.base import deadline

# How long a request's store work may take before its 503 (the 503 comes within about this).
REQUEST_SECONDS = 2.0
# Threads for a blocking store's calls; more work queues (within its deadline). Few: each thread
# waiting on the database takes the interpreter back from the event loop when its answer comes, so
# more threads cost CPU rather than add throughput. With one worker process on PostgreSQL, two
# servers side by side differing only in this number served the read mix at 1,466 requests a
# second with 3 threads against 1,313 with 12, and 1,498 with one against 1,141
# (`bench/cpu_per_request.py` shows the CPU per request). Two, so that one slow call (a row lock)
# does not hold up the others.
STORE_THREADS = 2
# Threads for heavy reads (`heavy`), apart from the store's, so the quick calls never wait behind
# them; each tenant has at most HEAVY_PER_TENANT of them. Store threads and heavy threads together
# stay within the PostgreSQL pool's connections (`stores.postgres.POOL_SIZE`).
HEAVY_THREADS = 8
_MARGIN = 0.3  # the store's own deadline fires first; this only answers a worker stuck past it
HEAVY_PER_TENANT = 1
_heavy_lanes: dict[tuple[int, str], "_Lane"] = {}  # (loop, tenant) -> its heavy reads, while it has any


class _Lane:
    def __init__(self):
        self.turns = asyncio.Semaphore(HEAVY_PER_TENANT)
        self.users = 0  # running or waiting

_executors: dict[str, ThreadPoolExecutor] = {}


def _threads(kind: str) -> ThreadPoolExecutor:
    """The threads of `kind`: "store" (STORE_THREADS) or "heavy" (HEAVY_THREADS), started when first used."""
    if kind not in _executors:
        size = STORE_THREADS if kind == "store" else HEAVY_THREADS
        _executors[kind] = ThreadPoolExecutor(max_workers=size, thread_name_prefix=f"pokitdok-{kind}")
    return _executors[kind]


async def heavy(store, tenant: str, fn, *args, **kwargs):
    """A read whose cost grows with the tenant's data (`run`, always on a worker thread), at most
    `HEAVY_PER_TENANT` of the tenant's at once."""
    key = (id(asyncio.get_running_loop()), tenant)
    lane = _heavy_lanes.get(key) or _heavy_lanes.setdefault(key, _Lane())
    lane.users += 1
    try:
        async with lane.turns:
            return await run(store, fn, *args, off_loop=True, threads="heavy", **kwargs)
    finally:
        lane.users -= 1
        if lane.users == 0:
            del _heavy_lanes[key]


async def run(store, fn, *args, seconds: float = REQUEST_SECONDS, off_loop: bool = False, margin: float = _MARGIN,
              threads: str = "store", **kwargs):
    """`fn(*args, **kwargs)`, on one of the `threads` when `store` blocks (or `off_loop`); within
    `seconds` or a 503 (`StoreUnavailable`), which comes at the latest `margin` after the deadline."""
    if not (store.blocking or off_loop):
        return fn(*args, **kwargs)
    context = contextvars.copy_context()
    context.run(deadline.set, time.monotonic() + seconds)
    future = asyncio.get_running_loop().run_in_executor(_threads(threads),
                                                        functools.partial(context.run, fn, *args, **kwargs))
    if not store.blocking:  # in memory: nothing to wait for but the work itself
        return await future
    try:
        return await asyncio.wait_for(future, seconds + margin)
    except asyncio.TimeoutError:  # work still queued is dropped; a worker past its deadline is let go
        raise StoreUnavailable(f"{store.name} at {store.description} did not answer within {seconds:g}s") from None
