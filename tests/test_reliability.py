"""Concurrency, crash safety and serving limits, through real HTTP against `pokitdok-sandbox serve`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest

from fixtures.doc_examples import OPEN_SLOT, PROVIDER_MAIN_OFFICE, PROVIDER_UUID

from .helpers import assert_error, data_of
from .live_server import ROOT, LiveServer, live_server
from .races import assert_overlapping_creations_leave_no_overlap


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server(tmp_path_factory.mktemp("live") / "db.json") as running:
        yield running


def _client_for(server, name: str, credentials: tuple[str, str] | None = None) -> httpx.Client:
    """A client on its own tenant (a fresh client id), so tests sharing the server do not meet."""
    credentials = credentials or (f"{name}-{uuid.uuid4()}", "secret")
    client = httpx.Client(base_url=server.api, timeout=30,
                          headers={"Authorization": f"Bearer {server.token(credentials)}"})
    client.credentials = credentials
    return client


def _patient(number: int) -> dict:
    return {"_uuid": str(uuid.UUID(int=number + 1)), "first_name": f"P{number}", "last_name": "Racer"}


def test_fifty_concurrent_bookings_of_one_slot_have_exactly_one_winner(server):
    client = _client_for(server, "race")
    barrier = threading.Barrier(50)

    def book(number: int):
        barrier.wait()
        answer = client.put(f"/schedule/appointments/{OPEN_SLOT}", json={"patient": _patient(number)})
        return number, answer.status_code

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(book, range(50)))
    statuses = sorted(status for _, status in results)
    assert statuses == [200] + [409] * 49
    winner = next(number for number, status in results if status == 200)
    [stored] = data_of(client.get(f"/schedule/appointments/{OPEN_SLOT}"))
    assert stored["booked"] is True and stored["patient"]["_uuid"] == _patient(winner)["_uuid"]


def test_concurrent_overlapping_slot_creation_leaves_no_overlap(server):
    assert_overlapping_creations_leave_no_overlap(_client_for(server, "overlap"))


def test_every_acknowledged_write_survives_kill_9(tmp_path):
    server = LiveServer(tmp_path / "db.json").start()
    client = _client_for(server, "crash")
    acknowledged: list[dict] = []
    refused: list[httpx.Response] = []
    stop = threading.Event()

    def writer(lane: int):
        start = datetime(2032, 1, 1) + timedelta(days=lane * 400)
        number = 0
        while not stop.is_set():
            begin = start + timedelta(hours=number)
            try:
                answer = client.post("/schedule/slots/", json={
                    "pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
                    "start_date": begin.isoformat(), "end_date": (begin + timedelta(minutes=30)).isoformat()})
            except httpx.HTTPError:
                return  # the server died mid-request: that write was never acknowledged
            if answer.status_code == 200:
                acknowledged.append(data_of(answer))
            else:
                refused.append(answer)
                return
            number += 1

    threads = [threading.Thread(target=writer, args=(lane,)) for lane in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(acknowledged) < 60 and not refused and time.monotonic() < deadline:
        threading.Event().wait(0.02)
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join()
    assert not refused, f"a write was refused: {refused[0].status_code} {refused[0].text}"
    assert len(acknowledged) >= 60

    restarted = LiveServer(server.db).start()
    try:
        client = _client_for(restarted, "crash", client.credentials)
        for slot in acknowledged:
            stored = client.get(f"/schedule/appointments/{slot['pd_appointment_uuid']}")
            assert stored.status_code == 200, f"acknowledged slot {slot['pd_appointment_uuid']} was lost"
            assert data_of(stored) == [slot]
    finally:
        restarted.stop()
    assert not list(tmp_path.glob(".*.tmp"))


def test_serving_several_workers_on_the_embedded_store_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "sandbox.cli", "serve", "--db", str(tmp_path / "db.json"),
                             "--workers", "4"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "single-process" in result.stderr
    assert not (tmp_path / "db.json").exists()


def test_a_long_query_string_is_refused_in_the_error_shape(server):
    client = _client_for(server, "query")
    answer = client.get("/schedule/appointments/", params={"appointment_type": "A" * 30000})
    assert "query string" in assert_error(answer, 414, "query")["message"]


def test_oversized_and_chunked_bodies(server):
    client = _client_for(server, "body")
    huge = b'{"description": "' + b"x" * 300_000 + b'"}'
    sized = client.put(f"/schedule/appointments/{OPEN_SLOT}", content=huge,
                       headers={"Content-Type": "application/json"})
    assert assert_error(sized, 413, "body")["error"] == "payload_too_large"
    chunked = client.put(f"/schedule/appointments/{OPEN_SLOT}", content=iter([huge[:100_000], huge[100_000:]]),
                         headers={"Content-Type": "application/json"})
    assert assert_error(chunked, 413, "body")["error"] == "payload_too_large"
    small = client.put(f"/schedule/appointments/{OPEN_SLOT}", content=iter([b'{"description": ', b'"chunked"}']),
                       headers={"Content-Type": "application/json"})
    updated = data_of(small)
    assert updated["description"] == "chunked"
    assert "booked" in updated
