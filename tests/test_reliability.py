"""Concurrency, crash safety and serving limits, through real HTTP against `pokitdok-sandbox serve`."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx
import pytest

from pokitdok_sandbox import serving
from pokitdok_sandbox.fixtures.doc_examples import OPEN_SLOT, PROVIDER_MAIN_OFFICE, PROVIDER_UUID

from .helpers import assert_error, data_of
from pokitdok_sandbox.testing import SandboxServer, running_sandbox
from .helpers import ROOT
from .races import assert_overlapping_creations_leave_no_overlap


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_sandbox(tmp_path_factory.mktemp("live") / "db.json") as running:
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
    server = SandboxServer(tmp_path / "db.json").start()
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

    restarted = SandboxServer(server.db).start()
    try:
        client = _client_for(restarted, "crash", client.credentials)
        for slot in acknowledged:
            stored = client.get(f"/schedule/appointments/{slot['pd_appointment_uuid']}")
            assert stored.status_code == 200, f"acknowledged slot {slot['pd_appointment_uuid']} was lost"
            assert data_of(stored) == [slot]
    finally:
        restarted.stop()
    assert not list(tmp_path.glob(".*.tmp"))


class _Ledger:
    """What the server acknowledged, per slot and per seeded tenant, and what was in flight when it died.

    After a crash, a record must be in its last acknowledged state, or in the state of the one
    request about it that got no answer (that one may or may not have been written).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged: dict[str, object] = {}
        self.in_flight: dict[str, object] = {}

    def send(self, key: str, state, request):
        with self.lock:
            self.in_flight[key] = state
        answer = request()  # raises when the server dies mid-request
        with self.lock:
            if answer.is_success:
                self.acknowledged[key] = state
            self.in_flight.pop(key, None)
        return answer


def _crash_writer(client, lane: int, ledger: _Ledger, stop: threading.Event, rng: random.Random) -> None:
    """Create slots, book, cancel and delete them, at random."""
    start = datetime(2033, 1, 1) + timedelta(days=lane * 400 + rng.randrange(300))
    mine: list[str] = []
    number = 0
    try:
        while not stop.is_set():
            number += 1
            action = rng.random()
            if action < 0.5 or not mine:
                begin = start + timedelta(hours=number)
                answer = client.post("/schedule/slots/", json={
                    "pd_provider_uuid": PROVIDER_UUID, "location": PROVIDER_MAIN_OFFICE, "appointment_type": "AT1",
                    "start_date": begin.isoformat(), "end_date": (begin + timedelta(minutes=30)).isoformat()})
                if answer.is_success:
                    uuid_ = data_of(answer)["pd_appointment_uuid"]
                    with ledger.lock:
                        ledger.acknowledged[uuid_] = "open"
                    mine.append(uuid_)
                continue
            slot = rng.choice(mine)
            state = ledger.acknowledged[slot]
            if state == "open" and action < 0.75:
                patient = _patient(lane * 1000 + number)
                ledger.send(slot, ("booked", patient["_uuid"]), lambda: client.put(
                    f"/schedule/appointments/{slot}", json={"patient": patient}))
            elif state == "open":
                ledger.send(slot, "gone", lambda: client.delete(f"/schedule/slots/{slot}"))
                mine.remove(slot)
            elif state != "gone":
                ledger.send(slot, "open", lambda: client.delete(f"/schedule/appointments/{slot}"))
    except httpx.HTTPError:
        return  # the server died: whatever was in flight was never acknowledged


def _crash_seeder(client, ledger: _Ledger, stop: threading.Event, rng: random.Random) -> None:
    """Re-seed a tenant of its own over and over: bulk writes, and compactions, at the moment of the kill."""
    try:
        while not stop.is_set():
            seed = rng.randrange(1000)
            ledger.send("seed", seed, lambda: client.post("/sandbox/seed", json={"seed": seed, "slots": 300}))
    except httpx.HTTPError:
        return


def _state_of(client, slot: str):
    answer = client.get(f"/schedule/appointments/{slot}")
    if answer.status_code == 404:
        return "gone"
    assert answer.status_code == 200, answer.text
    record = data_of(answer)[0]
    return ("booked", record["patient"]["_uuid"]) if record["booked"] else "open"


@pytest.mark.parametrize("round_", range(3))
def test_kill_9_at_a_random_point_loses_no_acknowledged_write(tmp_path, monkeypatch, round_):
    """Writers of every kind and a bulk seeder, a journal compacted every few writes, `kill -9` at a
    random moment; after the restart every acknowledged write is there (`seed` prints the moment)."""
    seed = random.randrange(1 << 30)
    print(f"round {round_}: random seed {seed}")
    rng = random.Random(seed)
    monkeypatch.setenv("POKITDOK_SANDBOX_COMPACT_MIN_BYTES", "20000")
    server = SandboxServer(tmp_path / "db.json").start()
    writers_client = _client_for(server, "crash")
    seeder_client = _client_for(server, "bulk")
    ledger, seeds, stop = _Ledger(), _Ledger(), threading.Event()
    threads = [threading.Thread(target=_crash_writer, args=(writers_client, lane, ledger, stop,
                                                            random.Random(rng.random()))) for lane in range(4)]
    threads.append(threading.Thread(target=_crash_seeder, args=(seeder_client, seeds, stop, random.Random(seed))))
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 120
    while len(ledger.acknowledged) < 10:  # enough writes to mean something, however busy the machine
        assert time.monotonic() < deadline, "the server acknowledged too few writes"
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 2.0))
    server.kill9()
    stop.set()
    for thread in threads:
        thread.join()

    restarted = SandboxServer(server.db).start()
    try:
        client = _client_for(restarted, "crash", writers_client.credentials)
        for slot, state in ledger.acknowledged.items():
            allowed = [state] + ([ledger.in_flight[slot]] if slot in ledger.in_flight else [])
            assert _state_of(client, slot) in allowed, f"slot {slot}: acknowledged {state}, random seed {seed}"
        if "seed" in seeds.acknowledged:
            bulk = _client_for(restarted, "bulk", seeder_client.credentials)
            summary = data_of(bulk.post("/sandbox/reset"))
            allowed = [seeds.acknowledged["seed"]] + ([seeds.in_flight["seed"]] if "seed" in seeds.in_flight else [])
            assert summary["seed"] in allowed, f"acknowledged seed {seeds.acknowledged['seed']}, random seed {seed}"
    finally:
        restarted.stop()
    assert not list(tmp_path.glob(".*.tmp"))  # a compaction's temporary file left by the kill is cleared


def test_serving_several_workers_on_the_embedded_store_is_refused(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", "--db", str(tmp_path / "db.json"),
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


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nxx\r\n0\r\n\r\n",
    b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
]


def _exchange(server, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


@pytest.mark.parametrize("raw", MALFORMED)
def test_a_malformed_request_is_answered_in_the_error_shape_never_a_400(server, raw):
    """Requests uvicorn's parser refuses: a 422 in the declared error shape, and the connection closed."""
    head, _, body = _exchange(server, raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422 "), head
    assert b"content-type: application/json" in head.lower(), head
    errors = json.loads(body)["data"]["errors"]
    assert errors["status"] == 422 and "not valid HTTP/1.1" in errors["message"], errors


def test_clients_trickling_a_body_are_closed(server):
    """Slow-body clients: headers in time, then one byte of the body every 2 s; each connection is
    closed once its body takes longer than the body timeout, and the server goes on answering."""
    connections = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                     b"\r\nContent-Length: 1000\r\n\r\n")
        connections.append(sock)
    started, open_ = time.monotonic(), set(range(len(connections)))
    while open_ and time.monotonic() - started < serving.BODY_TIMEOUT_SECONDS + 8:
        for number in list(open_):
            try:
                connections[number].sendall(b"a")
                connections[number].setblocking(False)
                if connections[number].recv(1024) == b"":
                    open_.discard(number)
            except BlockingIOError:
                pass
            except OSError:  # reset by the server
                open_.discard(number)
            finally:
                connections[number].setblocking(True)
        time.sleep(2)
    took = time.monotonic() - started
    for sock in connections:
        sock.close()
    assert not open_, f"{len(open_)} slow-body connections still open after {took:.0f}s"
    assert took >= serving.BODY_TIMEOUT_SECONDS - 1
    assert httpx.get(server.origin + "/healthz", timeout=5).status_code == 200
