"""Requests to an ASGI application in this process, through a `requests.Session`.

An in-process run sends every request (generated, model-based and hand-written) through one such
session, so the kit's code is the same whether the target is a URL or an application object. The
application runs on one event loop in a thread of its own (anyio's blocking portal), which also
holds its lifespan, as a server would: started before the first request, ended by `close()`.
"""

from __future__ import annotations

import io
from contextlib import ExitStack
from urllib.parse import unquote, urlsplit

import anyio
import requests
from anyio.from_thread import start_blocking_portal
from requests.adapters import HTTPAdapter
from urllib3 import HTTPResponse

HOST = "testserver"


class InProcessSession(requests.Session):
    def __init__(self, app):
        super().__init__()
        self._resources = ExitStack()
        portal = self._resources.enter_context(start_blocking_portal())
        lifespan = _Lifespan(app, portal)
        lifespan.start()
        self._resources.callback(lifespan.stop)
        adapter = _ASGIAdapter(app, portal)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def close(self) -> None:
        super().close()
        self._resources.close()


class _Lifespan:
    """The application's lifespan protocol: startup before the first request, shutdown at the end."""

    def __init__(self, app, portal):
        self.app, self.portal = app, portal
        self.to_app = anyio.create_memory_object_stream(16)
        self.from_app = anyio.create_memory_object_stream(16)
        self.task = None

    def start(self) -> None:
        self.task = self.portal.start_task_soon(self._run)
        self.portal.call(self._exchange, "lifespan.startup")

    def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.portal.call(self._exchange, "lifespan.shutdown")

    async def _run(self) -> None:
        send_to_app, receive_in_app = self.to_app
        send_from_app, _ = self.from_app
        try:
            await self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                           receive_in_app.receive, send_from_app.send)
        finally:
            await send_from_app.send({"type": "lifespan.ended"})  # an app without lifespan support ends at once

    async def _exchange(self, message_type: str) -> None:
        await self.to_app[0].send({"type": message_type})
        answer = await self.from_app[1].receive()
        if answer["type"].endswith(".failed"):
            raise RuntimeError(answer.get("message") or f"the application failed at {message_type}")


class _ASGIAdapter(HTTPAdapter):
    def __init__(self, app, portal):
        super().__init__()
        self.app, self.portal = app, portal

    def send(self, request: requests.PreparedRequest, stream=False, timeout=None, verify=True, cert=None,
             proxies=None) -> requests.Response:
        status, headers, body = self.portal.call(self._answer, request)
        raw = HTTPResponse(body=io.BytesIO(body), headers=headers, status=status, preload_content=False,
                           decode_content=False, request_method=request.method, version=11)
        return self.build_response(request, raw)

    async def _answer(self, request: requests.PreparedRequest):
        parts = urlsplit(request.url)
        host = parts.hostname or HOST
        port = parts.port or (443 if parts.scheme == "https" else 80)
        headers = [] if "host" in request.headers else [(b"host", (parts.netloc or HOST).encode("latin-1"))]
        # Headers travel as latin-1, so the application gets the octets a real server would give it.
        headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()]
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):  # a generator of chunks
            body = b"".join(chunk.encode("utf-8") if isinstance(chunk, str) else chunk for chunk in body)
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
            "scheme": parts.scheme, "path": unquote(parts.path), "raw_path": parts.path.encode("latin-1"),
            "root_path": "", "query_string": parts.query.encode("latin-1"), "headers": headers,
            "client": ("127.0.0.1", 50000), "server": (host, port), "state": {},
        }
        sent = False
        answered = anyio.Event()
        status, answer_headers, chunks = 500, [], []

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            nonlocal status, answer_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                answer_headers = [(name.decode("latin-1"), value.decode("latin-1"))
                                  for name, value in message.get("headers", [])]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        try:
            await self.app(scope, receive, send)
        finally:
            answered.set()
        return status, answer_headers, b"".join(chunks)
