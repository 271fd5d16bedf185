"""PostgreSQL going away and coming back, through a TCP proxy the test can cut.

While the database is gone a request fails with 503 within about 3 s (not the pool's 30 s), and
/healthz says so; the first request after it is back succeeds.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.settings import Settings

from .conftest import bearer, get_token
from .helpers import APPOINTMENTS
from .refusals import refusal

OPEN_SLOT = "ab21e95b-8fa6-41d4-98b9-9a1f6fcff0d2"


class Proxy:
    """127.0.0.1:<port> forwarded to the database; `cut()` closes every connection and refuses new
    ones (the database is gone), `restore()` forwards again on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
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

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
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

    def restore(self) -> None:
        self.up = True

    def close(self) -> None:
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
