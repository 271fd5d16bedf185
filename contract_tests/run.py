"""The state of one contract run, in one ContextVar.

Everything a run accumulates (the target, the seed, the findings, the counts of generated
requests, the reference model) lives on one `Run`; `current()` hands it to the hooks, checks and
tests. A kit run started from inside another (the kit's own tests do that) sets its run and puts
the outer one back when it ends.
"""

from __future__ import annotations

from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from .options import KitOptions
from .report import Findings
from .target import Target
from .wire import WireFormat

TOKEN_PATH = "/oauth2/token"


@dataclass
class Run:
    options: KitOptions
    target: Target
    seed: int
    wire: WireFormat
    findings: Findings = field(default_factory=Findings)
    # (operation, status) -> count of the generated requests Schemathesis sent
    statuses: Counter = field(default_factory=Counter)
    # slots the generated requests deleted (DELETE /schedule/slots/{id} answered 2xx) -> by which case
    deleted_slots: dict = field(default_factory=dict)
    current_test: str = ""
    unreachable: str = ""  # why the target stopped answering, once it did
    # The reference model of the records the model-based suite keeps alive while the generated
    # tests run (see model.py); None until that suite has opened them.
    model: Any = None
    # (rule, partition) pairs of partitions.RULES the run exercised
    partitions: set = field(default_factory=set)
    # meta.activity_id of every answer the checks saw -> the request it answered (an id answered
    # to two requests is a replayed answer; the same answer looked at twice is not)
    activity_ids: dict = field(default_factory=dict)

    def base_url_for(self, operation) -> str | None:
        """Where an operation lives: the token endpoint is outside the API base path."""
        if operation.path == TOKEN_PATH:
            url = self.target.token_url
            return url[: -len(TOKEN_PATH)] if url.endswith(TOKEN_PATH) else None
        return self.target.base_url


_RUN: ContextVar[Run | None] = ContextVar("pokitdok_contract_run", default=None)


def active() -> Run | None:
    """The run in progress, or None (hooks and checks are no-ops outside a run)."""
    return _RUN.get()


def current() -> Run:
    run = _RUN.get()
    if run is None:
        raise RuntimeError("no contract run is active (run the kit through pytest or `pokitdok-sandbox contract`)")
    return run


def activate(run: Run | None) -> Run | None:
    """Make `run` the current one; answers the run it replaces (to put back with `activate`)."""
    previous = _RUN.get()
    _RUN.set(run)
    return previous
