"""The model-based stateful suite (stateful.py): random sequences of every scheduling operation,
each answer compared with the kit's reference model of the records the run creates; a failure
is the shortest failing sequence, as a numbered shell script."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test

from pokitdok_sandbox.contract_tests.stateful import ModelMachine, machine_settings

# Sequences per run: a fifth of --max-examples (20 at the default), at least 5; up to 12 steps each
# (30 with --thorough: options.model_steps).


def test_the_server_behaves_like_the_model(api, contract_run):
    class Sequences(ModelMachine):
        pass

    Sequences.api = api
    Sequences.violations = []
    Sequences._hypothesis_internal_use_seed = contract_run.seed
    examples = max(5, contract_run.options.max_examples // 5)
    steps = contract_run.options.model_steps
    # A failure is shrunk for at most --shrink-seconds (Hypothesis' own limit is 5 minutes).
    with shrink_budget(contract_run.options.shrink_seconds):
        try:
            run_state_machine_as_test(Sequences, settings=machine_settings(contract_run, examples, steps))
        except Flaky:
            # The same sequence answered differently when replayed: the server's answers depend on
            # more than the requests (a cache, a clock, leftovers of earlier sequences). The first
            # violation seen is still one; report it as found, unshrunk.
            if not Sequences.violations:
                raise
            first = Sequences.violations[0]
            first.detail = ((first.detail + "\n") if first.detail else "") + (
                "not reproduced when the sequence was replayed: the server answered the same requests "
                "differently (a cache or stale read?); the script is the sequence as first run")
            first.args = (first.render(),)
            raise first from None


@contextlib.contextmanager
def shrink_budget(seconds: int):
    """Bound the time spent shrinking a failure (each replay sends real requests)."""
    from hypothesis.internal.conjecture import engine

    before = getattr(engine, "MAX_SHRINKING_SECONDS", None)
    if before is not None:
        engine.MAX_SHRINKING_SECONDS = seconds
    try:
        yield
    finally:
        if before is not None:
            engine.MAX_SHRINKING_SECONDS = before
