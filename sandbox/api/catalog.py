"""Schedulers and appointment types: read-only, any valid token.

The two lists carry an `ETag` (weak: the envelope's `meta` differs from answer to answer,
its records do not), and answer `If-None-Match` with a 304 and no body while the page is
unchanged: a client polling the catalogue gets its answer without the records again.
"""

import hashlib

import orjson

from ..context import request
from ..envelope import DEFAULT_LIMIT
from . import call, one, page, rules


async def list_schedulers(user, limit=None, offset=None):
    return _validated_page([scheduler_view(s) for s in await call(rules().list_schedulers, user)], limit, offset)


async def get_scheduler(user, scheduler_uuid):
    return one([scheduler_view(await call(rules().get_scheduler, user, scheduler_uuid))])


async def list_appointment_types(user, limit=None, offset=None):
    return _validated_page([type_view(t, user) for t in await call(rules().list_appointment_types, user)],
                           limit, offset)


async def get_appointment_type(user, appointment_type_uuid):
    return one([type_view(await call(rules().get_appointment_type, user, appointment_type_uuid), user)])


def scheduler_view(scheduler: dict) -> dict:
    """A scheduler with the final documentation's `methods_payloads` (the sandbox's schedulers exchange
    no messages with a practice management system: an empty object)."""
    return {**scheduler, "methods_payloads": scheduler.get("methods_payloads") or {}}


def type_view(appointment_type: dict, owner: str) -> dict:
    """An appointment type with the final documentation's `category_id` (the sandbox has no categories:
    null) and `owner_id` (the platform application it belongs to: the caller's client id, whose data set
    holds it)."""
    return {**appointment_type, "category_id": appointment_type.get("category_id"), "owner_id": owner}


def _validated_page(items: list, limit: int | None, offset: int | None):
    """The page with its ETag, or a 304 when the request's If-None-Match names it."""
    tag = etag(items, limit, offset)
    if _matches(request.headers.get("if-none-match"), tag):
        return None, 304, {"ETag": tag}
    return page(items, limit, offset), 200, {"ETag": tag}


def etag(items: list, limit: int | None, offset: int | None) -> str:
    """A weak validator of one page of records: the records themselves (all of them, for the
    count), the limit and the offset; the same in every worker and after a restart."""
    limit = DEFAULT_LIMIT if limit is None else limit
    content = orjson.dumps([items, limit, offset or 0], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return f'W/"{hashlib.blake2b(content, digest_size=12).hexdigest()}"'


def _matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110's weak comparison of If-None-Match (a list of tags, or `*`) with the page's tag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    opaque = tag.removeprefix("W/")
    return any(candidate.strip().removeprefix("W/") == opaque for candidate in if_none_match.split(","))
