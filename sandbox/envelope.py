"""The platform's wire format (docs/wire-format.md): every answer is `{"meta": ..., "data": ...}`.

`meta` is built here and only here: the request's activity (its id and when it started, put in
the ASGI scope by the outermost layer), the rate-limit window when rate limits are on, and the
paging links of collection answers. Handlers answer `one(data)` or `page(items, limit, offset)`;
error answers are built by `errors.py` on top of `document()`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from starlette.datastructures import URL

ACTIVITY_KEY = "pokitdok_sandbox.activity"
APPLICATION_MODE = "test"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass
class RateWindow:
    amount: int
    cap: int
    reset: int  # Unix time the window ends


@dataclass
class Activity:
    """One request, from the moment the server took it."""

    id: str
    started: float
    rate: RateWindow | None = None


def begin(scope) -> Activity:
    activity = Activity(id=str(uuid.uuid4()), started=time.perf_counter())
    scope[ACTIVITY_KEY] = activity
    return activity


def activity_of(scope) -> Activity | None:
    return scope.get(ACTIVITY_KEY) if scope is not None else None


def meta(scope) -> dict:
    activity = activity_of(scope)
    if activity is None:  # a scope the outermost layer never saw (an app mounted elsewhere)
        activity = begin(scope) if scope is not None else Activity(str(uuid.uuid4()), time.perf_counter())
    result = {
        "activity_id": activity.id,
        "application_mode": APPLICATION_MODE,
        "processing_time": int((time.perf_counter() - activity.started) * 1000),
    }
    if activity.rate is not None:
        result["rate_limit_amount"] = activity.rate.amount
        result["rate_limit_cap"] = activity.rate.cap
        result["rate_limit_reset"] = activity.rate.reset
    return result


def document(scope, data) -> dict:
    return {"meta": meta(scope), "data": data}


def paged_document(scope, items: list, limit: int | None, offset: int | None) -> dict:
    """One page of a collection: `limit` records from `offset`, and links to the neighbouring pages."""
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = offset or 0
    count = len(items)
    body = {"meta": meta(scope), "data": items[offset:offset + limit]}
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
    if scope is None or scope.get("type") != "http":
        return None
    return URL(scope=scope)


def _with_offset(url: URL | None, offset: int, limit: int) -> str | None:
    if url is None:
        return None
    return str(url.include_query_params(offset=offset, limit=limit))
