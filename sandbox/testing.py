"""A running sandbox for tests, with a fresh tenant per test: for pytest (see `pytest_plugin.py`)
or any other test runner.

    from pokitdok_sandbox.testing import running_sandbox

    with running_sandbox() as sandbox:           # `pokitdok-sandbox serve` on a free port, in memory
        tenant = sandbox.new_tenant()            # a client id of its own: its own data set
        tenant.base_url, tenant.client_id, tenant.client_secret, tenant.token
        tenant.get("/schedule/schedulers/").json()

`running_sandbox(url=...)` uses a sandbox that is already running instead; `store=` gives the
server a TinyDB file or a PostgreSQL URL; `fixture=` loads a fixture file (docs/fixture-files.md)
into every new tenant. Tenants are isolated from each other, so tests need no reset between them
and may run in parallel (pytest-xdist).
"""

from __future__ import annotations

import collections
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx

from .stores import url_scheme

__all__ = ["running_sandbox", "Sandbox", "SandboxServer", "Tenant", "free_port", "DEMO"]

DEMO = ("sandbox-demo", "sandbox-demo-secret")
API_PATH = "/api/v4"
ADMIN_HEADER = "X-Sandbox-Admin-Token"
_BANNER = re.compile(r"^pokitdok-sandbox on (http://\S+?)\s")


def free_port() -> int:
    """A loopback port free right now (for servers that cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sandbox:
    """A sandbox that answers at `origin` (e.g. http://127.0.0.1:8000)."""

    def __init__(self, origin: str, *, admin_token: str | None = None, fixture: str | Path | dict | None = None,
                 timeout: float = 30.0):
        origin = origin.rstrip("/")
        if origin.endswith(API_PATH):  # the API base given instead of the origin
            origin = origin[: -len(API_PATH)]
        self.origin = origin
        self.admin_token = admin_token if admin_token is not None else os.environ.get("POKITDOK_SANDBOX_ADMIN_TOKEN")
        self.timeout = timeout
        self.fixture = _fixture_document(fixture) if fixture is not None else None

    @property
    def api(self) -> str:
        """The API base, e.g. http://127.0.0.1:8000/api/v4."""
        return self.origin + API_PATH

    @property
    def token_url(self) -> str:
        return self.origin + "/oauth2/token"

    def token(self, credentials=DEMO, scope: str | None = None) -> str:
        """A bearer token for these client credentials (an unknown client id registers a new tenant)."""
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        answer = httpx.post(self.token_url, data=form, auth=credentials, timeout=self.timeout)
        if answer.status_code != 200:
            raise RuntimeError(f"the sandbox at {self.origin} refused a token for {credentials[0]}: "
                               f"{answer.status_code} {answer.text[:300]}")
        return answer.json()["access_token"]

    def new_tenant(self, fixture: str | Path | dict | None = None, client_id: str | None = None) -> "Tenant":
        """A tenant of its own (a new client id), with the sandbox's fixture or `fixture` loaded
        (else the generated data set every new tenant gets)."""
        client_id = client_id or f"test-{secrets.token_hex(8)}"
        tenant = Tenant(self, client_id, secrets.token_urlsafe(16))
        chosen = _fixture_document(fixture) if fixture is not None else self.fixture
        if chosen is not None:
            tenant.load(chosen)
        return tenant

    def wait_until_up(self, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                return
            try:
                if httpx.get(self.origin + "/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"no sandbox answered at {self.origin} within {timeout:g} s")


class SandboxServer(Sandbox):
    """`pokitdok-sandbox serve` in a process of its own on a free loopback port.

    `store`: None (everything in memory), a TinyDB file path, or a postgresql:// URL; `extra`:
    more `serve` arguments (e.g. "--workers", "4")."""

    def __init__(self, store: str | Path | None = None, *extra: str, fixture: str | Path | dict | None = None,
                 cwd: str | Path | None = None, port: int = 0, env: dict | None = None):
        super().__init__("http://127.0.0.1:0", fixture=fixture)
        self.db = store
        self.extra = extra
        self.cwd = cwd
        self.requested_port = port
        self.env = env
        self.port: int | None = None
        self.process: subprocess.Popen | None = None
        self._lines: collections.deque[str] = collections.deque(maxlen=500)
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        """What the server printed (its last 500 lines)."""
        return "\n".join(self._lines)

    def start(self, timeout: float = 60) -> "SandboxServer":
        command = [sys.executable, "-m", "pokitdok_sandbox.cli", "serve", *self._store_option(),
                   "--port", str(self.requested_port), "--log-level", "warning",
                   # one tenant per test: as many as the tests make
                   "--max-tenants", "1000000", *self.extra]
        self.process = subprocess.Popen(command, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env={**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1"})
        found = threading.Event()

        def read() -> None:  # drain the pipe for as long as the server runs, so it never blocks on it
            for line in self.process.stdout:
                self._lines.append(line.rstrip("\n"))
                match = _BANNER.match(line)
                if match and not found.is_set():
                    self.port = int(match.group(1).rsplit(":", 1)[1])
                    self.origin = f"http://127.0.0.1:{self.port}"  # whichever address it listens on
                    found.set()
            found.set()

        self._reader = threading.Thread(target=read, name="sandbox-output", daemon=True)
        self._reader.start()
        started = time.monotonic()
        found.wait(timeout)
        if self.port is None:
            self.stop()
            raise RuntimeError(f"the sandbox did not start (exit {self.process.returncode}):\n{self.output}")
        self.wait_until_up(max(1.0, timeout - (time.monotonic() - started)), self.process)
        if self.process.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {self.process.returncode}:\n{self.output}")
        return self

    def _store_option(self) -> list[str]:
        if self.db is None:
            return ["--db", ":memory:"]
        return ["--store", str(self.db)] if url_scheme(str(self.db)) else ["--db", str(self.db)]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def kill9(self) -> None:
        """End the server the hard way (a crash)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class Tenant:
    """One tenant of a sandbox: its client credentials, a ready token, and a small API helper
    (paths are relative to the API base, e.g. `tenant.get("/schedule/schedulers/")`)."""

    def __init__(self, sandbox: Sandbox, client_id: str, client_secret: str):
        self.sandbox = sandbox
        self.client_id = client_id
        self.client_secret = client_secret
        self.token = sandbox.token((client_id, client_secret))  # registers the client: a new tenant
        self._http = httpx.Client(base_url=sandbox.api, timeout=sandbox.timeout)

    base_url = property(lambda self: self.sandbox.api, doc="The API base, e.g. http://127.0.0.1:8000/api/v4.")
    origin = property(lambda self: self.sandbox.origin)
    token_url = property(lambda self: self.sandbox.token_url)

    @property
    def credentials(self) -> tuple[str, str]:
        return self.client_id, self.client_secret

    @property
    def headers(self) -> dict:
        """The Authorization header of the ready token."""
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self._http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def data(self, method: str, path: str, **kwargs) -> Any:
        """The answer's `data`; a refusal raises with the sandbox's message."""
        answer = self.request(method, path, **kwargs)
        if answer.status_code >= 400:
            raise AssertionError(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer.json()["data"]

    # -- the tenant's data set ---------------------------------------------------------------
    def load(self, fixture: str | Path | dict) -> dict:
        """Replace this tenant's data set with a fixture file's records (a path, or the document)."""
        return self.data("POST", "/sandbox/seed", json={"fixture": _fixture_document(fixture)},
                         headers=self._admin())

    def export(self) -> dict:
        """This tenant's data set as a fixture document."""
        return self.data("GET", "/sandbox/export")

    def reset(self) -> dict:
        return self.data("POST", "/sandbox/reset", headers=self._admin())

    def slots(self, **filters) -> list[dict]:
        """Every slot of the data set, open or booked (filters: pd_provider_uuid, booked, start_date, ...)."""
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in filters.items()}
        return self.data("GET", "/sandbox/slots", params={"limit": 5000, **params})["slots"]

    def _admin(self) -> dict:
        return {ADMIN_HEADER: self.sandbox.admin_token} if self.sandbox.admin_token else {}

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"<Tenant {self.client_id} of {self.sandbox.origin}>"


def _fixture_document(fixture: str | Path | dict) -> dict:
    """A fixture as the document to send, checked here first (a broken file is named before any server)."""
    from .fixture_files import load_document, parse

    if isinstance(fixture, dict):
        load_document(fixture, "fixture")
        return fixture
    path = Path(fixture)
    text = path.read_text(encoding="utf-8")
    parse(text, str(path), yaml=path.suffix.lower() in (".yaml", ".yml"))
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        return _plain(yaml.safe_load(text))
    import json

    return json.loads(text)


def _plain(value):
    """YAML's dates as the text they were written as (JSON has no dates)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@contextmanager
def running_sandbox(store: str | Path | None = None, *extra: str, url: str | None = None,
                    fixture: str | Path | dict | None = None, admin_token: str | None = None,
                    timeout: float = 60) -> Iterator[Sandbox]:
    """A running sandbox for the block: the one at `url`, else a new server (stopped afterwards)."""
    if url is not None:
        sandbox = Sandbox(url, admin_token=admin_token, fixture=fixture)
        sandbox.wait_until_up(timeout)
        yield sandbox
        return
    server = SandboxServer(store, *extra, fixture=fixture).start(timeout)
    try:
        yield server
    finally:
        server.stop()
