"""What the entrance (`entrance.py`) does first: `start` (the request's facts begin, repeated
slashes merged), then `RequestGuard.admit`, which refuses what must never reach the pipeline, in
the error shape, and puts what it accepts in the form the pipeline expects:

* control characters in the path (a 422 naming the path, where the router
  would answer a bare "Not Found");
* query strings and bodies over their limits (414 and 413), checked before
  anything is read into memory (a chunked body is read up to the limit, then
  passed on with a Content-Length, as every body after the guard has one);
* list parameters as each official client encodes them become repeated keys, the form the
  contract declares: indexed (`location[0]=..&location[1]=..`, Node; PHP's `http_build_query`),
  appended (`location[]=..&location[]=..`, Ruby's Faraday) or bracketed (`location=[lat, lon]`,
  what C# code passes as a string);
* the platform's common parameters `application_data` and `async` are taken out of the query
  string and of JSON bodies and noted in the request's facts (`common_parameters.py`);
* a body sent without Content-Type is read as JSON (the only body the API takes);
* and it puts the app's context in the scope (`context.SCOPE_KEY`), for the handlers.
"""

from __future__ import annotations

import re

from .. import contract
from ..context import SCOPE_KEY
from .. import answers
from ..errors import SandboxError, TooLarge
from ..request_facts import begin, facts_of
from . import common_parameters
from .common_parameters import Refused

MAX_QUERY_BYTES = 16 * 1024
_ADMINISTRATION = contract.API_BASE + "/sandbox/"
_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")
_INDEXED = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>[0-9]{0,3})\]$")
# What makes a query string worth parsing here: brackets (raw or percent-encoded) or a common parameter.
_REWRITTEN = re.compile(rb"\[|%5[bB]|application_data|async")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def start(scope) -> dict:
    """The request's facts begin (activity id, clock); repeated slashes in the path count as one, and
    a documented collection path without its trailing slash, or an item path with one, is answered
    as the documented one.

    A client given its base URL with a trailing slash (`http://127.0.0.1:8000/`) asks
    for `//api/v4/...`, which no route matches (every call a 404).
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
        """(scope, receive) as the pipeline expects them, or None when the request was refused (answered)."""
        scope[SCOPE_KEY] = self.context
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in scope.get("path", "")):
            await _refuse(scope, send, 422, "the path contains control characters; send the record's uuid as it "
                             "was answered", "path")
            return None
        query = scope.get("query_string", b"")
        if len(query) > MAX_QUERY_BYTES:
            await answers.send(scope, send, TooLarge(414, "query string", MAX_QUERY_BYTES, "query"))
            return None
        common = self._takes_common_parameters(scope)
        if _REWRITTEN.search(query):
            try:
                query = _rewritten_query(query, common, facts_of(scope))
            except Refused as refused:
                await _refuse(scope, send, 422, refused.message, refused.field)
                return None
            scope = dict(scope, query_string=query)
        headers = dict(scope.get("headers", ()))
        if b"content-type" not in headers and (headers.get(b"content-length", b"0") != b"0"
                                               or b"transfer-encoding" in headers):
            scope = dict(scope, headers=[*scope["headers"], (b"content-type", b"application/json")])
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_body_bytes:
                await answers.send(scope, send, TooLarge(413, "body", self.max_body_bytes, "body"))
                return None
        elif b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            # Buffered here, within the limit, and passed on with its Content-Length.
            body = await self._read_chunked(receive)
            if body is None:
                await answers.send(scope, send, TooLarge(413, "body", self.max_body_bytes, "body"))
                return None
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"transfer-encoding"]
                         + [(b"content-length", str(len(body)).encode())])
            receive = _replay(body, receive)
        if common and scope["method"] in _BODY_METHODS and b"json" in dict(scope["headers"]).get(b"content-type", b""):
            try:
                scope, receive = await _without_common_parameters(scope, receive)
            except Refused as refused:
                await _refuse(scope, send, 422, refused.message, refused.field)
                return None
        return scope, receive

    @staticmethod
    def _takes_common_parameters(scope) -> bool:
        """The platform's operations (and unknown paths) under the API base; not sandbox administration,
        not the token endpoint (a form, read by OAuth2 rules)."""
        path = scope.get("path", "")
        return (path.startswith(contract.API_BASE + "/") and not path.startswith(_ADMINISTRATION)
                and not path.endswith(contract.TOKEN_PATH))

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


def _rewritten_query(query: bytes, common: bool, facts) -> bytes:
    """The query string with lists as repeated keys and (when `common`) without the common parameters,
    which are noted in the request's facts. Refused (`Refused`: the field and why) when a list is
    ambiguous or a common parameter malformed."""
    pairs = common_parameters.parse_query(query)
    if pairs is None:
        return query
    if common and common_parameters.mentioned(query):
        pairs, found = common_parameters.from_query(pairs)
        _note(facts, found)
    return common_parameters.encode_query(_unindexed(pairs))


def _unindexed(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """`location[0]=a&location[1]=b`, `location[]=a&location[]=b` and `location=[a, b]` ->
    `location=a&location=b` (in index order, or in the order sent); other keys unchanged.

    Refused when a list mixes forms or its indexes are not 0, 1, ... each once: merged,
    `location[0]=lat&location=lon` would silently search at (lon, lat).
    """
    plain, indexed, appended = [], [], {}
    lists = contract.list_parameters()
    for key, value in pairs:
        match = _INDEXED.match(key)
        if match and match["index"] == "":
            name = match["name"]
            appended[name] = appended.get(name, 0) + 1
            indexed.append((name, appended[name] - 1, value, "[]"))
        elif match:
            indexed.append((match["name"], int(match["index"]), value, "[i]"))
        elif key in lists and value.strip()[:1] == "[" and value.strip()[-1:] == "]":
            plain.extend((key, item.strip()) for item in value.strip()[1:-1].split(","))
        else:
            plain.append((key, value))
    if not indexed:
        return plain
    indexed.sort(key=lambda item: (item[0], item[1]))
    for name in sorted({item[0] for item in indexed}):
        mine = [item for item in indexed if item[0] == name]
        indexes = [index for _name, index, _value, _form in mine]
        how = (f"send {name}[0]=..&{name}[1]=.. (indexes 0, 1, ... each once), {name}[]=..&{name}[]=.., "
               f"or repeated {name}=.. keys")
        if any(key == name for key, _value in plain):
            raise Refused(name, f"{name} is sent both with brackets and as {name}=; {how}, not two of them")
        if len({form for *_rest, form in mine}) > 1:
            raise Refused(name, f"{name} is sent both as {name}[]= and as {name}[0]=; {how}")
        if indexes != list(range(len(indexes))):
            raise Refused(name, f"{name} has the indexes {indexes}; {how}")
    return plain + [(name, value) for name, _index, value, _form in indexed]


async def _without_common_parameters(scope, receive):
    """A JSON body without `application_data` and `async` (noted in the request's facts)."""
    body = await read_all(receive)
    if common_parameters.mentioned(body):
        body, found = common_parameters.from_body(body)
        if found:
            _note(facts_of(scope), found)
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k != b"content-length"]
                         + [(b"content-length", str(len(body)).encode())])
    return scope, _replay(body, receive)


async def read_all(receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _note(facts, found: dict) -> None:
    if facts is None:
        return
    if common_parameters.APPLICATION_DATA in found:
        facts.application_data = found[common_parameters.APPLICATION_DATA]
    if common_parameters.ASYNC in found:
        facts.asked_async = found[common_parameters.ASYNC]


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(scope, send, status: int, message: str, field: str | None = None) -> None:
    await answers.send(scope, send, SandboxError(status, message, field))
