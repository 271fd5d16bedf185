"""Synchronous code on the event loop with its waits awaited (`sandbox/greenbridge.py`), which the
PostgreSQL store's calls made from requests run under."""

import asyncio
import contextvars

import pytest

from pokitdok_sandbox import greenbridge

where = contextvars.ContextVar("where", default="outside")


def _run(coroutine):
    return asyncio.run(coroutine)


def test_the_code_gets_what_it_waits_for_and_its_result_comes_back():
    def add_later(a, b):
        first = greenbridge.wait(asyncio.sleep(0, result=a))
        return first + greenbridge.wait(asyncio.sleep(0.01, result=b))

    assert _run(greenbridge.run(contextvars.copy_context(), add_later, 2, b=3)) == 5


def test_the_loop_runs_other_tasks_while_the_code_waits():
    """The code waits for an event that only another task on the same loop sets: with a blocked loop
    this would never end."""
    async def main():
        ready = asyncio.Event()
        seen = []

        def waits_for_the_other_task():
            greenbridge.wait(ready.wait())
            seen.append("woken")
            return greenbridge.inside()

        async def other():
            seen.append("other ran")
            ready.set()

        bridged = asyncio.ensure_future(greenbridge.run(contextvars.copy_context(), waits_for_the_other_task))
        await asyncio.sleep(0)
        await other()
        return await asyncio.wait_for(bridged, 2), seen

    inside, seen = _run(main())
    assert inside is True
    assert seen == ["other ran", "woken"]


def test_failures_reach_the_code_and_leave_it():
    def catches_then_fails():
        try:
            greenbridge.wait(_fails())
        except KeyError as exc:
            caught = exc.args[0]
        raise ValueError(f"after {caught}")

    with pytest.raises(ValueError, match="after the awaitable's"):
        _run(greenbridge.run(contextvars.copy_context(), catches_then_fails))


async def _fails():
    raise KeyError("the awaitable's")


def test_the_code_runs_in_the_context_given_and_changes_stay_there():
    def reads_and_sets():
        seen = where.get()
        where.set("changed inside")
        return seen

    async def main():
        context = contextvars.copy_context()
        context.run(where.set, "given")
        result = await greenbridge.run(context, reads_and_sets)
        return result, context[where], where.get()

    assert _run(main()) == ("given", "changed inside", "outside")


def test_cancelling_the_caller_unwinds_the_code():
    """A request given up (its deadline) cancels the task: the code sees the cancellation where it
    waits, so its `finally` and `with` blocks (a connection given back) run."""
    unwound = []

    def waits_forever():
        try:
            greenbridge.wait(asyncio.Event().wait())
        finally:
            unwound.append(True)

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(greenbridge.run(contextvars.copy_context(), waits_forever), 0.05)

    _run(main())
    assert unwound == [True]


def test_waiting_outside_the_bridge_is_refused():
    assert greenbridge.inside() is False
    with pytest.raises(RuntimeError, match="outside greenbridge.run"):
        greenbridge.wait(None)
