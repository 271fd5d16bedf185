"""The platform's common parameters (`_common.md` of the final documentation): `application_data`
and `async`, accepted on every operation of the platform, in the query string or in a JSON body.

They are taken out of the request by the entrance's guard, before the pipeline sees it (so no
operation's schema has to declare them) and noted in the request's facts:

* `application_data`: any JSON value the client wants kept with the request's activity
  (`GET /activities/{activity_id}` answers it). In a query string: `application_data=<JSON or
  text>`, or `application_data[key]=value` as PHP's `http_build_query` and Ruby's Faraday
  encode a map.
* `async`: `true` or `false`. Scheduling is real-time only: the request is always answered at
  once; `async=true` is noted in the answer's `meta.message` (the platform's field for "additional
  API response message"), never refused.

A malformed value is refused (422 naming the parameter and what to send).
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, urlencode

from ..validation import nested_deeper_than, unstorable

APPLICATION_DATA = "application_data"
ASYNC = "async"
_KEYED = re.compile(r"^application_data\[(?P<key>[^\]]*)\]$")
_TRUE, _FALSE = ("true", "1"), ("false", "0")
# How deep application_data may nest (its activity's answer must still be writable).
MAX_DEPTH = 100


class Refused(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def mentioned(raw: bytes) -> bool:
    """Whether a query string or body may carry one of them (a cheap test before parsing)."""
    return b"application_data" in raw or b"async" in raw


def from_query(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict]:
    """The pairs without the common parameters, and what they said (`{"application_data": .., "async": ..}`)."""
    kept, found, keyed = [], {}, {}
    for key, value in pairs:
        if key == ASYNC:
            if ASYNC in found:
                raise Refused(ASYNC, "async is sent twice; send it once, true or false")
            found[ASYNC] = _boolean(value)
        elif key == APPLICATION_DATA:
            if APPLICATION_DATA in found:
                raise Refused(APPLICATION_DATA, "application_data is sent twice; send it once")
            found[APPLICATION_DATA] = _json_or_text(value)
        elif (match := _KEYED.match(key)) is not None:
            keyed[match["key"]] = value
        else:
            kept.append((key, value))
    if keyed:
        if APPLICATION_DATA in found:
            raise Refused(APPLICATION_DATA, "application_data is sent both as application_data= and as "
                                            "application_data[key]=; send one form")
        found[APPLICATION_DATA] = keyed
    if APPLICATION_DATA in found:
        _storable(found[APPLICATION_DATA])
    return kept, found


def from_body(body: bytes) -> tuple[bytes, dict]:
    """A JSON object body without the common parameters, and what they said. A body that is not a
    JSON object is left as it is (the contract's checks refuse it with their own words)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return body, {}
    if not isinstance(document, dict) or not (APPLICATION_DATA in document or ASYNC in document):
        return body, {}
    found = {}
    if ASYNC in document:
        value = document.pop(ASYNC)
        if not isinstance(value, bool):
            raise Refused(ASYNC, f"async must be true or false, not {json.dumps(value)[:40]}")
        found[ASYNC] = value
    if APPLICATION_DATA in document:
        found[APPLICATION_DATA] = _storable(document.pop(APPLICATION_DATA))
    return json.dumps(document).encode(), found


def encode_query(pairs: list[tuple[str, str]]) -> bytes:
    return urlencode(pairs).encode("latin-1")


def parse_query(query: bytes) -> list[tuple[str, str]] | None:
    try:
        return parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return None


def _boolean(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Refused(ASYNC, f"async must be true or false, not {value[:40]!r}")


def _storable(value):
    """`value`, or `Refused` when its activity could not be answered: nested deeper than
    `MAX_DEPTH`, or holding what no JSON answer carries (a lone surrogate, NaN)."""
    if nested_deeper_than(value, MAX_DEPTH):
        raise Refused(APPLICATION_DATA, f"application_data is nested more than {MAX_DEPTH} levels deep; "
                                        f"send at most {MAX_DEPTH} levels of objects and lists")
    problem = unstorable(value, APPLICATION_DATA)
    if problem is not None:
        raise Refused(APPLICATION_DATA, problem[1])
    return value


def _json_or_text(value: str):
    """`application_data={"ref": "A1"}` is kept as the object it spells; any other text as text."""
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
    return value
