"""Concurrency scenarios shared by the single-process and the multi-worker tests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx

from pokitdok_sandbox.fixtures.doc_examples import PROVIDER_MAIN_OFFICE, PROVIDER_UUID

from .helpers import assert_error, data_of


def assert_overlapping_creations_leave_no_overlap(client: httpx.Client) -> None:
    """40 concurrent requests for one-hour slots starting every 15 minutes (many pairs overlap):
    each is a 200 or a 409, and the slots created, as listed afterwards, never overlap."""
    base = datetime(2031, 3, 3, 9, 0)
    bodies = [{"pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
               "start_date": (base + timedelta(minutes=15 * n)).isoformat(),
               "end_date": (base + timedelta(minutes=15 * n + 60)).isoformat()} for n in range(40)]
    barrier = threading.Barrier(len(bodies))

    def create(body):
        barrier.wait()
        return client.post("/schedule/slots/", json=body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        answers = list(pool.map(create, bodies))
    assert {a.status_code for a in answers} <= {200, 409}
    for refused in (a for a in answers if a.status_code == 409):
        assert_error(refused, 409)
    created = sorted((slot["start_date"], slot["end_date"])
                     for slot in (data_of(a) for a in answers if a.status_code == 200))
    assert created, "at least one slot is created"
    for (_, end), (next_start, _) in zip(created, created[1:]):
        assert end <= next_start, f"overlapping slots were both created: {created}"
    listed = data_of(client.get("/schedule/appointments/", params={
        "pd_provider_uuid": PROVIDER_UUID, "start_date": base.isoformat(),
        "end_date": (base + timedelta(days=1)).isoformat(), "limit": 1000}))
    assert sorted((s["start_date"], s["end_date"]) for s in listed) == created
