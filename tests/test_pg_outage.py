"""PostgreSQL going away and coming back, through a TCP proxy the test can cut or stall.

While the database is gone (connections refused) or partitioned (the proxy stops forwarding: the
connections stay open and nothing comes back) a request fails with 503 within 3 s, /healthz says
"unavailable" within 1 s, even while other requests wait on the store, and the first request after it
is back succeeds.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.settings import Settings

from .conftest import bearer, get_token
from .helpers import APPOINTMENTS
from pokitdok_sandbox.testing import running_sandbox
from .refusals import refusal

OPEN_SLOT = "ab21e95b-8fa6-41d4-98b9-9a1f6fcff0d2"


class Proxy:
    """127.0.0.1:<port> forwarded to the database; `cut()` closes every connection and refuses new
    ones (the database is gone), `stall()` forwards nothing more either way but keeps every
    connection open and accepts new ones (a partition), `restore()` forwards again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.stalled = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if not self.stalled:  # stalled: nothing gets through (the connection stays open)
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self.up = False
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
            self.sockets.clear()

    def stall(self) -> None:
        self.stalled = True

    def restore(self) -> None:
        self.up = True
        self.stalled = False

    def close(self) -> None:
        self.restore()
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied(pg_url):
    parts = urlsplit(pg_url)
    proxy = Proxy((parts.hostname, parts.port or 5432))
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    yield proxy, urlunsplit(parts._replace(netloc=netloc))
    proxy.close()


@contextmanager
def _sandbox(url: str):
    """A sandbox on the proxied database: its client and the demo client's headers."""
    app = create_app(Settings(db_path=None, store_url=url, validate_responses=True))
    try:
        with app.test_client() as client:
            yield client, bearer(get_token(client))
    finally:
        app.sandbox.tenants.store.close()


def test_a_database_outage_is_a_quick_503_and_the_first_request_after_it_succeeds(proxied):
    proxy, url = proxied
    with _sandbox(url) as (client, headers):
        assert client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers).status_code == 200
        assert client.get("/healthz").status_code == 200

        proxy.cut()
        for _ in range(3):
            started = time.monotonic()
            answer = client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers)
            took = time.monotonic() - started
            error = refusal(answer, 503)
            assert "PostgreSQL" in error["message"] and took < 4.5, (took, error)
        started = time.monotonic()
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert time.monotonic() - started < 4.5

        proxy.restore()
        answer = client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers)
        assert answer.status_code == 200, answer.text
        assert client.get("/healthz").status_code == 200
        assert [client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers).status_code
                for _ in range(5)] == [200] * 5


def test_a_long_outage_does_not_leave_the_pool_backing_off(proxied):
    """After minutes of failed reconnections the pool waits long between attempts; the store does not."""
    proxy, url = proxied
    with _sandbox(url) as (client, headers):
        proxy.cut()
        refusal(client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers), 503)
        time.sleep(8)  # the pool's own attempts are 1, 2, 4 s apart by now
        proxy.restore()
        assert client.get(f"{APPOINTMENTS}{OPEN_SLOT}", headers=headers).status_code == 200


def test_a_partition_is_a_503_within_3s_and_healthz_answers_meanwhile(proxied):
    """The proxy stops forwarding: nothing is refused, nothing comes back. Requests end with their 503
    within 3 s (in the declared shape), /healthz answers "unavailable" within 1 s while they wait (the
    event loop is free), and once packets flow again the first request succeeds."""
    proxy, url = proxied
    with running_sandbox(url) as server:
        headers = {"Authorization": f"Bearer {server.token()}"}
        appointment = f"{server.api}/schedule/appointments/{OPEN_SLOT}"
        assert httpx.get(appointment, headers=headers, timeout=10).status_code == 200

        proxy.stall()

        def timed(url: str, **kwargs):
            started = time.monotonic()
            answer = httpx.get(url, timeout=30, **kwargs)
            return answer, time.monotonic() - started

        with ThreadPoolExecutor(8) as pool:
            waiting = [pool.submit(timed, appointment, headers=headers) for _ in range(6)]
            time.sleep(0.3)  # the requests above are waiting on the store now
            health = [timed(f"{server.origin}/healthz") for _ in range(3)]
            answers = [future.result() for future in waiting]
        for answer, took in health:
            assert answer.status_code == 503 and answer.json()["status"] == "unavailable" and took < 1.0, \
                (took, answer.text)
        for answer, took in answers:
            error = refusal(answer, 503)
            assert error["error"] == "store_unavailable" and "PostgreSQL" in error["message"], error
            assert took < 3.0, (took, error)
        answer, took = timed(appointment, headers=headers)
        assert answer.status_code == 503 and took < 3.0, (took, answer.text)

        proxy.restore()
        answer = httpx.get(appointment, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert httpx.get(f"{server.origin}/healthz", timeout=10).status_code == 200
