"""`pokitdok-sandbox serve` as a real process on a loopback port, for tests that need HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEMO = ("sandbox-demo", "sandbox-demo-secret")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, db: Path | str, *extra: str):
        """`db`: a TinyDB file, or a postgresql:// URL (extra arguments such as `--workers 4` follow)."""
        self.db = db
        self.extra = extra
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.origin}/api/v4"
        self.process: subprocess.Popen | None = None
        self.output = b""

    def start(self, timeout: float = 60) -> "LiveServer":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pokitdok_sandbox.cli", "serve", *self._store_option(), "--port", str(self.port),
             "--log-level", "warning", *self.extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.process.stdout.read()!r}")
            try:
                if httpx.get(self.origin + "/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("server did not start in time")

    def _store_option(self) -> list[str]:
        return ["--store", self.db] if str(self.db).startswith("postgresql:") else ["--db", str(self.db)]

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def token(self, credentials=DEMO, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        answer = httpx.post(self.origin + "/oauth2/token", data=form, auth=credentials, timeout=10)
        answer.raise_for_status()
        return answer.json()["access_token"]


@contextmanager
def live_server(db: Path | str, *extra: str):
    server = LiveServer(db, *extra).start()
    try:
        yield server
    finally:
        server.stop()
