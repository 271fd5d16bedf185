"""The platform's wire format (docs/wire-format.md): every answer is `{"meta": ..., "data": ...}`.

`meta` is built here and only here, from the request's facts (`request_facts.py`: its activity
id and when it started, the rate-limit window when rate limits are on) and, for collection
answers, the paging links. Handlers answer `one(data)` or `page(items, limit, offset)`;
error answers by `answers.py` (each error gives its own `data`, `errors.py`).
"""

from __future__ import annotations

import json
import re

import orjson
from starlette.datastructures import URL

from .context import of_scope
from .request_facts import begin, facts_of

APPLICATION_MODE = "test"
# `meta.message` of a request that asked for asynchronous processing (`async=true`, a common parameter).
ASYNC_NOTE = ("scheduling is real-time only: this request was answered synchronously; "
              "async=true is accepted and has no effect")
DEFAULT_LIMIT = 100


_LAYOUT = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def encode(data) -> bytes:
    """The bytes of every JSON answer the sandbox gives: keys sorted, indented by two spaces, UTF-8.

    orjson writes the same layout as `json.dumps(indent=2, sort_keys=True)` at C speed (the
    pure-Python encoder that those options force was about a tenth of a request's time); text
    outside ASCII comes as UTF-8 rather than `\\u` escapes, the same JSON values. What orjson
    refuses goes through the standard encoder: an integer beyond 64 bits, and a lone UTF-16
    surrogate, which no UTF-8 text can hold. Requests cannot store one (`validation.unstorable`),
    but a record an earlier version stored may hold one: it is answered with U+FFFD (the
    replacement character) in its place, so the record stays readable.
    """
    try:
        return orjson.dumps(data, option=_LAYOUT)
    except TypeError:
        return json.dumps(_without_surrogates(data), indent=2, sort_keys=True, ensure_ascii=False).encode()


# A lone UTF-16 surrogate: in a Python string from JSON, a pair is one character already.
LONE_SURROGATE = re.compile("[\\ud800-\\udfff]")


def _without_surrogates(value):
    """`value` with every lone surrogate in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_surrogates(item) for item in value]
    return value


def meta(scope) -> dict:
    facts = facts_of(scope) or begin(scope if scope is not None else {})  # (a scope the entrance never saw)
    result = {
        "activity_id": facts.activity_id,
        "application_mode": APPLICATION_MODE,
        "processing_time": int(facts.elapsed_ms()),
    }
    if facts.asked_async:
        result["message"] = ASYNC_NOTE
    if facts.rate is not None:
        result["rate_limit_amount"] = facts.rate.amount
        result["rate_limit_cap"] = facts.rate.cap
        result["rate_limit_reset"] = facts.rate.reset
    return result


def document(scope, data) -> dict:
    return {"meta": meta(scope), "data": data}


def paged_document(scope, items: list, limit: int | None, offset: int | None, count: int | None = None) -> dict:
    """One page of a collection: `limit` records from `offset`, and links to the neighbouring pages.
    With `count`, `items` is the page already (of `count` records in all); else the whole collection."""
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = offset or 0
    if count is None:
        count, items = len(items), items[offset:offset + limit]
    body = {"meta": meta(scope), "data": items}
    url = _request_url(scope)
    body["meta"].update({
        "count": count,
        "limit": limit,
        "offset": offset,
        "next": _with_offset(url, offset + limit, limit) if offset + limit < count else None,
        "previous": _with_offset(url, max(offset - limit, 0), limit) if offset > 0 and url else None,
    })
    return body


def _request_url(scope) -> URL | None:
    """The request's URL as paging links show it: on the server's public URL (`--public-url`), else on the
    address it was reached at (the listening socket's, never the client's `Host` header, which anyone
    can set to send the next page's link elsewhere)."""
    if scope is None or scope.get("type") != "http":
        return None
    context = of_scope(scope)
    base = context.settings.public_url if context is not None else None
    if not base:
        scheme = scope.get("scheme", "http")
        host, port = scope.get("server") or ("localhost", None)
        default = {"http": 80, "https": 443}.get(scheme)
        host = f"[{host}]" if ":" in str(host) else host
        base = f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")
    query = scope.get("query_string", b"").decode("latin-1")
    return URL(base.rstrip("/") + scope.get("root_path", "") + scope["path"] + (f"?{query}" if query else ""))


def _with_offset(url: URL | None, offset: int, limit: int) -> str | None:
    if url is None:
        return None
    return str(url.include_query_params(offset=offset, limit=limit))
