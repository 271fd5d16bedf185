"""Synchronous code run on the event loop, its waits on the network awaited there.

The rules and the stores are plain functions. A store on the network (PostgreSQL) used to run them
on worker threads; each call then crossed to a thread and back, and the threads and the loop took
turns holding the interpreter, which cost more CPU than the rules and the database round trip
together. Here instead, `await run(context, fn, ...)` runs `fn` in a greenlet on the loop's own
thread; where that code would wait for the database it calls `wait(awaitable)`, which hands the
awaitable to the loop and resumes with its result (or its exception) once the loop has it. The
loop answers other requests meanwhile. This is SQLAlchemy's asyncio bridge, in small.

Code run this way must never block: anything it waits for goes through `wait`
(`stores/postgres.py`'s connections do so for every database wait when `inside()` is true).
"""

from __future__ import annotations

import contextvars

import greenlet


class _Bridged(greenlet.greenlet):
    """A greenlet whose waits its driver (the coroutine that started it) awaits."""

    def __init__(self, fn, driver: greenlet.greenlet):
        super().__init__(fn, driver)
        self.driver = driver


def inside() -> bool:
    """Whether the current code runs under `run` (then it must `wait`, not block)."""
    return isinstance(greenlet.getcurrent(), _Bridged)


def wait(awaitable):
    """The result of `awaitable`, awaited by the event loop; only under `run`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        raise RuntimeError("greenbridge.wait outside greenbridge.run")
    return current.driver.switch(awaitable)


async def run(context: contextvars.Context, fn, *args, **kwargs):
    """`fn(*args, **kwargs)` in `context`, on this thread, its `wait`s awaited here."""
    child = _Bridged(lambda: fn(*args, **kwargs), greenlet.getcurrent())
    child.gr_context = context
    step = child.switch()
    while not child.dead:
        try:
            value = await step
        except BaseException as exc:  # the awaitable's failure (or this task's cancellation) goes to the code
            step = child.throw(exc)
        else:
            step = child.switch(value)
    return step
