"""What the entrance (`entrance.py`) does first: `start` (the request's facts begin, repeated
slashes merged), then `RequestGuard.admit`, which refuses what must never reach Connexion, in
the error shape, and puts what it accepts in the form Connexion expects:

* control characters in the path (a 422 naming the path, where the router
  would answer a bare "Not Found");
* query strings and bodies over their limits (414 and 413), checked before
  anything is read into memory (a chunked body is read up to the limit, then
  passed on with a Content-Length, which Connexion needs to see a body at all);
* indexed list parameters (`location[0]=..&location[1]=..`, as the official Node
  client sends a list) become repeated keys, the form the contract declares;
* a body sent without Content-Type is read as JSON (the only body the API takes);
* and it puts the app's context (`sandbox.context`) in the scope, for the
  token check and the handlers.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

from .. import contract
from ..context import SCOPE_KEY
from ..errors import send_error
from ..request_facts import begin

MAX_QUERY_BYTES = 16 * 1024
_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")
_INDEXED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>[0-9]{1,3})\]$")


def start(scope) -> dict:
    """The request's facts begin (activity id, clock); repeated slashes in the path count as one, and
    a documented collection path without its trailing slash, or an item path with one, is answered
    as the documented one.

    A client given its base URL with a trailing slash (`http://127.0.0.1:8000/`) asks
    for `//api/v4/...`, which Connexion's router does not match (every call a 404).
    Merged here, the request is routed, checked and journaled like any other.
    """
    if "//" in scope.get("path", ""):
        raw = scope.get("raw_path")
        scope = dict(scope, path=_SLASHES.sub("/", scope["path"]),
                     raw_path=_RAW_SLASHES.sub(b"/", raw) if raw is not None else None)
    if scope["path"] in contract.slashless_paths():
        # `/api/v4/schedule/schedulers` is answered as `/schedule/schedulers/`, not redirected.
        scope = dict(scope, path=scope["path"] + "/", raw_path=None)
    elif contract.is_item_path_with_slash(scope["path"]):
        # `/schedule/appointments/<uuid>/` as `/schedule/appointments/<uuid>`: a redirect has no body to read.
        scope = dict(scope, path=scope["path"][:-1], raw_path=None)
    begin(scope)
    return scope


class RequestGuard:
    def __init__(self, context, max_body_bytes: int):
        self.context = context
        self.max_body_bytes = max_body_bytes

    async def admit(self, scope, receive, send):
        """(scope, receive) as Connexion expects them, or None when the request was refused (answered)."""
        scope[SCOPE_KEY] = self.context
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope.get("path", "")):
            await send_error(scope, send, 422, "the path contains control characters; send the record's uuid as it "
                             "was answered", "path")
            return None
        query = scope.get("query_string", b"")
        if len(query) > MAX_QUERY_BYTES:
            await send_error(scope, send, 414, f"the query string is longer than {MAX_QUERY_BYTES} bytes", "query")
            return None
        if b"%5B" in query or b"[" in query:
            query, refused = _unindexed(query)
            if refused is not None:
                await send_error(scope, send, 422, refused[1], refused[0])
                return None
            scope = dict(scope, query_string=query)
        headers = dict(scope.get("headers", ()))
        if b"content-type" not in headers and (headers.get(b"content-length", b"0") != b"0"
                                               or b"transfer-encoding" in headers):
            scope = dict(scope, headers=[*scope["headers"], (b"content-type", b"application/json")])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body_bytes:
                await send_error(scope, send, 413, f"the body is larger than {self.max_body_bytes} bytes", "body")
                return None
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            # Connexion reads a body without Content-Length as no body: buffer it here, within the limit.
            body = await self._read_chunked(receive)
            if body is None:
                await send_error(scope, send, 413, f"the body is larger than {self.max_body_bytes} bytes", "body")
                return None
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"transfer-encoding"]
                         + [(b"content-length", str(len(body)).encode())])
            receive = _replay(body, receive)
        return scope, receive

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


def _unindexed(query: bytes) -> tuple[bytes, tuple[str, str] | None]:
    """`location[0]=a&location[1]=b` -> `location=a&location=b` (in index order); other keys unchanged.

    Refused (the field and why) when a list mixes both forms or its indexes are not 0, 1, ... each
    once: merged, `location[0]=lat&location=lon` would silently search at (lon, lat).
    """
    try:
        pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return query, None
    plain, indexed = [], []
    for key, value in pairs:
        match = _INDEXED.match(key)
        if match:
            indexed.append((match["name"], int(match["index"]), value))
        else:
            plain.append((key, value))
    if not indexed:
        return query, None
    indexed.sort(key=lambda item: (item[0], item[1]))
    for name in sorted({name for name, _index, _value in indexed}):
        indexes = [index for other, index, _value in indexed if other == name]
        how = f"send {name}[0]=..&{name}[1]=.. (indexes 0, 1, ... each once) or repeated {name}=.. keys"
        if any(key == name for key, _value in plain):
            return query, (name, f"{name} is sent both indexed and as {name}=; {how}, not both")
        if indexes != list(range(len(indexes))):
            return query, (name, f"{name} has the indexes {indexes}; {how}")
    return urlencode(plain + [(name, value) for name, _index, value in indexed]).encode("latin-1"), None


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
