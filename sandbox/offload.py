"""Store work that never blocks the event loop, with a deadline.

A store whose calls wait on the network (`Store.blocking`: PostgreSQL) is called through
`run(store, fn, ...)`, which runs the work on the loop's own thread with its database waits awaited
(`greenbridge`): the loop goes on answering other requests (`/healthz` included) while the database
answers. The work gets `REQUEST_SECONDS`: the store reads the deadline (`stores.base.deadline`) and
gives up with `StoreUnavailable` when it passes (no connection in time, or no answer on one: see
`stores/postgres.py`), and the request answers its 503 by then at the latest. At most `LOOP_CALLS`
such calls run at once on a loop; further ones wait their turn within their deadline.

A store kept in this process's memory (TinyDB) answers at once: its work runs inline (its group
commit relies on that). Heavy reads (`heavy`: a location search may read every slot of its tenant)
run on threads of their own on every store, so that the loop goes on answering other tenants
meanwhile. A tenant runs at most `HEAVY_PER_TENANT` of those at once; its further ones wait their
turn, so one tenant cannot take every heavy thread (nor, on PostgreSQL, every pooled connection).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import time
import weakref
from concurrent.futures import ThreadPoolExecutor

from . import greenbridge
from .stores import StoreUnavailable
from .stores.base import deadline

# How long a request's store work may take before its 503 (the 503 comes within about this).
REQUEST_SECONDS = 2.0
# Calls of a blocking store running at once on one event loop; each holds one of the store's
# connections while the database answers (PostgreSQL: `stores.postgres.LOOP_CONNECTIONS`).
LOOP_CALLS = 8
# Threads for heavy reads (`heavy`); each tenant has at most HEAVY_PER_TENANT of them. They stay
# within the PostgreSQL pool's connections (`stores.postgres.POOL_SIZE`).
HEAVY_THREADS = 8
_MARGIN = 0.3  # the store's own deadline fires first; this only answers work stuck past it
HEAVY_PER_TENANT = 1
_heavy_lanes: dict[tuple[int, str], "_Lane"] = {}  # (loop, tenant) -> its heavy reads, while it has any
_turns: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()
_heavy_threads: ThreadPoolExecutor | None = None


class _Lane:
    def __init__(self):
        self.turns = asyncio.Semaphore(HEAVY_PER_TENANT)
        self.users = 0  # running or waiting


def _threads() -> ThreadPoolExecutor:
    """The heavy reads' threads, started when first used."""
    global _heavy_threads
    if _heavy_threads is None:
        _heavy_threads = ThreadPoolExecutor(max_workers=HEAVY_THREADS, thread_name_prefix="pokitdok-heavy")
    return _heavy_threads


async def heavy(store, tenant: str, fn, *args, **kwargs):
    """A read whose cost grows with the tenant's data (`run`, always on a worker thread), at most
    `HEAVY_PER_TENANT` of the tenant's at once."""
    key = (id(asyncio.get_running_loop()), tenant)
    lane = _heavy_lanes.get(key) or _heavy_lanes.setdefault(key, _Lane())
    lane.users += 1
    try:
        async with lane.turns:
            return await run(store, fn, *args, off_loop=True, **kwargs)
    finally:
        lane.users -= 1
        if lane.users == 0:
            del _heavy_lanes[key]


async def run(store, fn, *args, seconds: float = REQUEST_SECONDS, off_loop: bool = False, margin: float = _MARGIN,
              **kwargs):
    """`fn(*args, **kwargs)`: inline for a store in memory, on the loop with its waits awaited when
    `store` blocks, on a heavy read's thread when `off_loop`; within `seconds` or a 503
    (`StoreUnavailable`), which comes at the latest `margin` after the deadline."""
    if not (store.blocking or off_loop):
        return fn(*args, **kwargs)
    context = contextvars.copy_context()
    context.run(deadline.set, time.monotonic() + seconds)
    if off_loop:
        work = asyncio.get_running_loop().run_in_executor(_threads(), functools.partial(context.run, fn, *args, **kwargs))
        if not store.blocking:  # in memory: nothing to wait for but the work itself
            return await work
        waited = work  # given up at the deadline: dropped if still queued, let go if running
    else:
        # A task of its own, so that past the deadline the request answers and the work is let go,
        # not cancelled: bounded work ends at its own deadline, and a first use's seed (which has
        # none) completes, so the tenant's next request finds its data set.
        work = asyncio.ensure_future(_on_loop(context, fn, *args, **kwargs))
        waited = asyncio.shield(work)
    try:
        return await _within(waited, seconds + margin)
    except asyncio.TimeoutError:
        work.add_done_callback(_let_go)
        raise StoreUnavailable(f"{store.name} at {store.description} did not answer within {seconds:g}s") from None


def _let_go(work: asyncio.Future) -> None:
    """The end of work whose request has answered already: its failure was the request's 503."""
    if not work.cancelled():
        work.exception()


async def _on_loop(context: contextvars.Context, fn, *args, **kwargs):
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = asyncio.Semaphore(LOOP_CALLS)
    async with turns:
        if time.monotonic() >= context[deadline]:  # its deadline passed while it waited for its turn
            raise asyncio.TimeoutError  # `run`'s own 503, if its request is still waiting
        return await greenbridge.run(context, fn, *args, **kwargs)


if sys.version_info >= (3, 11):
    async def _within(work, seconds: float):
        async with asyncio.timeout(seconds):
            return await work
else:  # pragma: no cover - Python 3.10
    async def _within(work, seconds: float):
        return await asyncio.wait_for(work, seconds)
