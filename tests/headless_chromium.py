"""Debian's Chromium, headless, driven over the DevTools protocol on a pipe (no extra packages).

`--remote-debugging-pipe` makes Chromium read commands from fd 3 and write answers and
events to fd 4, each message a JSON text ended by a NUL byte.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet on a closed network (no update, sync or metrics traffic).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-pipe"]


class Chromium:
    def __init__(self, timeout: float = 15):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="sandbox-console-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # The child's ends, moved above fd 9 so that putting them on 3 and 4 cannot clobber each other.
        child_read = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_browser_read)
        os.close(from_browser_write)

        def wire_fds():  # in the child: commands come in on fd 3, answers go out on fd 4
            os.dup2(child_read, 3)  # dup2 leaves the copy inheritable; every other fd closes on exec
            os.dup2(child_write, 4)

        try:
            self.process = subprocess.Popen(
                [str(CHROMIUM), *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                preexec_fn=wire_fds, close_fds=False)
        finally:
            os.close(child_read)
            os.close(child_write)
        self._next_id = 0
        self._answers: "queue.Queue[dict]" = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self) -> None:
        buffer = b""
        with os.fdopen(self._from_browser, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                buffer += chunk
                while b"\0" in buffer:
                    message, buffer = buffer.split(b"\0", 1)
                    decoded = json.loads(message)
                    if "id" in decoded:  # answers only; events are not needed here
                        self._answers.put(decoded)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_browser, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                answer = self._answers.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"Chromium did not answer {method} in {self.timeout} s") from None
            if answer["id"] == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def open(self, url: str) -> None:
        """Open `url` in a new tab and attach to it (later commands act on that page)."""
        target = self.send("Target.createTarget", {"url": url})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, self.session)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15, interval: float = 0.1):
        """Poll until the expression is truthy; its value, or TimeoutError with the last one.

        An expression that throws (the page is still loading) counts as not yet true.
        """
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except RuntimeError as error:
                value = error
            else:
                if value:
                    return value
            time.sleep(interval)
        raise TimeoutError(f"still {value!r} after {timeout} s: {expression}")

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (OSError, TimeoutError, RuntimeError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
