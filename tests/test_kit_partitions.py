"""The kit's partition suite (contract_tests/test_partitions.py) catches bugs at the edges of the
contract's rules, and a seed replays a run's requests exactly.

Each broken variant (tests/kit_variants.py) is an otherwise correct sandbox with one behaviour
broken; the partition suite alone runs against it and must report the partition that shows it.
"""

from __future__ import annotations

import json
import re

import pytest

from pokitdok_sandbox.contract_tests.options import KitOptions
from pokitdok_sandbox.contract_tests.runner import run
from pokitdok_sandbox.app import create_app

from .conftest import make_settings
from .kit_variants import VARIANTS

SEED = 8128

# variant -> a partition (or check) its report must name
CAUGHT_BY = {
    "radius-strict": "radius: zero on the edge",
    "radius-in-km": "radius: bare number inside",
    "km-read-as-miles": "radius: km inside",
    "default-radius-25": "radius: default inside",
    "latitude-longitude-swapped": "radius: default inside",
    "flat-earth-distance": "radius: across the antimeridian",
    "end-date-time-ignored": "dates: ",  # the first window edge it meets
    "window-to-the-second": "dates: start just outside",
    "unstable-order-on-equal-starts": "radius: default inside",
    "limit-off-by-one-past-100": "paging: limit 99, 100, 101",
    "count-capped-at-the-page": "paging: a page and one",
    "overlap-checked-against-the-previous-slot": "overlap: containing",
    "overlap-ignoring-seconds": "overlap: a second over the start",
    "overlap-across-providers": "overlap: another provider",
    "overlap-by-type": "overlap: another type",
    "zero-length-slot-accepted": "refusals: slot end equals start",
    "provider-ignored-with-a-location": "providers places types: location and provider",
    "cancelled-slot-missing-from-location-search": "booking and cancel: cancel reopens for location",
    "search-end-equal-to-start-answered": "refusals: search end equals start",
    "token-request-not-a-form-answered-401": "tokens: not a form",
    "credentials-in-the-form-refused": "tokens: credentials in the form",
    "patient-search-ignores-the-provider": "providers places types: patient and provider",
    "type-filter-case-insensitive": "providers places types: type in another case",
    "stale-tag-answered-not-modified": "conditional reads: another tag",
}


def sandbox():
    return create_app(make_settings(validate_responses=False))


def test_every_variant_has_its_partition():
    assert set(CAUGHT_BY) == set(VARIANTS)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_a_broken_variant_is_caught_at_its_partition(monkeypatch, name):
    VARIANTS[name](monkeypatch)
    result = run(KitOptions(app=sandbox(), seed=SEED, max_examples=5), keyword="partitions", quiet=True)
    assert not result.passed, f"{name} passed the partition suite"
    text = "\n".join(f"{f.check} | {f.expected} | {f.actual}" for f in result.findings)
    wanted = CAUGHT_BY[name]
    assert any(wanted in f.check or (wanted.startswith("paging") and "wire_format" in f.check)
               for f in result.findings), f"{wanted!r} not among:\n{text}"
    assert f"--seed {SEED}" in result.summary  # the replay command


# -- replay ---------------------------------------------------------------------------------------

class Recorder:
    """ASGI middleware keeping every API request (method, path, query, body) and every answer's body."""

    def __init__(self, app):
        self.app = app
        self.log: list[tuple] = []
        self.answers: list[bytes] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        chunks: list[bytes] = []

        async def receiving():
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        async def sending(message):
            if message["type"] == "http.response.body":
                self.answers.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receiving, sending)
        self.log.append((scope["method"], scope["path"], scope["query_string"].decode(errors="replace"),
                         b"".join(chunks).decode(errors="replace")))


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _server_ids(recorder: Recorder) -> dict[str, str]:
    """The ids the server assigned (the slots it created), named by the order they first appear."""
    assigned: dict[str, str] = {}
    for body in recorder.answers:
        try:
            data = json.loads(body).get("data")
        except (ValueError, AttributeError):
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and isinstance(item.get("pd_appointment_uuid"), str):
                assigned.setdefault(item["pd_appointment_uuid"].lower(), f"<slot {len(assigned) + 1}>")
    return assigned


def _normalised(text: str, assigned: dict[str, str]) -> str:
    text = _UUID.sub(lambda m: assigned.get(m[0].lower(), m[0].lower()), text)
    text = re.sub(r"contract-[0-9a-f]{12}", "contract-<run>", text)  # the run's fresh tenant
    text = re.sub(r"\"appointment_id\": \"[A-Z0-9]+\"", "\"appointment_id\": <id>", text)
    text = re.sub(r"\"(activity_id|processing_time)\": [^,}]+", r'"\1": <meta>', text)
    return re.sub(r"\d+(\.\d+)?s\b", "<time>", text)


def _replayed(seed: int) -> tuple[list, str]:
    recorder = Recorder(sandbox())
    result = run(KitOptions(app=recorder, seed=seed, max_examples=10, shrink_seconds=1),
                 keyword="partitions or model or rules", quiet=True)
    assert not result.passed
    assigned = _server_ids(recorder)
    requests = [_normalised(" ".join(entry), assigned) for entry in recorder.log]
    report = "\n".join(_normalised(f.render(), assigned) for f in result.findings)
    return requests, report


def test_a_seed_replays_a_failing_run_exactly(monkeypatch):
    """Twice the same seed against the same broken server: the same requests in the same order
    (apart from the slot ids the server assigns and the run's fresh tenant), the same report."""
    VARIANTS["overlap-ignoring-seconds"](monkeypatch)
    first, first_report = _replayed(SEED)
    second, second_report = _replayed(SEED)
    assert len(first) > 300
    assert first == second, next((a, b) for a, b in zip(first, second) if a != b)
    assert first_report == second_report
    other, _ = _replayed(SEED + 1)
    assert other != first  # the seed decides: another seed, other dates
