"""The outermost ASGI layers: paths with repeated slashes merged (`MergeSlashes`), then
`RequestGuard`, which refuses what must never reach Connexion, in the error shape:

* control characters in the path (a 400 naming the path, where the router
  would answer a bare "Not Found");
* query strings and bodies over their limits (400 and 413), checked before
  anything is read into memory (a chunked body is read up to the limit, then
  passed on with a Content-Length, which Connexion needs to see a body at all);
* and it puts the app's context (`sandbox.context`) in the scope, for the
  token check and the handlers.
"""

from __future__ import annotations

import re

from .context import SCOPE_KEY
from .errors import send_error

MAX_QUERY_BYTES = 16 * 1024
_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")


class MergeSlashes:
    """Repeated slashes in the path count as one, ahead of everything else.

    A client given its base URL with a trailing slash (`http://127.0.0.1:8000/`) asks
    for `//api/v4/...`, which Connexion's router does not match (every call a 404).
    Merged here, the request is routed, checked and journaled like any other.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "//" in scope.get("path", ""):
            raw = scope.get("raw_path")
            scope = dict(scope, path=_SLASHES.sub("/", scope["path"]),
                         raw_path=_RAW_SLASHES.sub(b"/", raw) if raw is not None else None)
        await self.app(scope, receive, send)


class RequestGuard:
    def __init__(self, app, context, max_body_bytes: int):
        self.app = app
        self.context = context
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        scope[SCOPE_KEY] = self.context
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope.get("path", "")):
            await send_error(send, 400, "the path contains control characters", "path")
            return
        if len(scope.get("query_string", b"")) > MAX_QUERY_BYTES:
            await send_error(send, 400, f"the query string is longer than {MAX_QUERY_BYTES} bytes", "query")
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body_bytes:
                await send_error(send, 413, f"the body is larger than {self.max_body_bytes} bytes", "body")
                return
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            # Connexion reads a body without Content-Length as no body: buffer it here, within the limit.
            body = await self._read_chunked(receive)
            if body is None:
                await send_error(send, 413, f"the body is larger than {self.max_body_bytes} bytes", "body")
                return
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"transfer-encoding"]
                         + [(b"content-length", str(len(body)).encode())])
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    async def _read_chunked(self, receive) -> bytes | None:
        """The whole chunked body, or None once it passes the limit."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
