"""The kit's checks: one registry, `KIT_CHECKS`, run on every answer the kit judges, whether
Schemathesis generated the request (test_properties.py) or a test wrote it (api.py).

A kit check is `check(run, response, case)`: the run, whose state it reads and keeps (passed in,
never looked up), the answer, and the Schemathesis `Case` of the request. It raises
AssertionError saying what is wrong. `for_schemathesis(run)` hands the registry to Schemathesis as
check functions bound to the run (its `additional_checks=`); nothing is registered process-wide,
so the kit's checks never run on another schema. Adding a check: write it here with `@kit_check`.
"""

from __future__ import annotations

import re
from typing import Callable

from .model import Model, Query
from .oracle import APPOINTMENT, APPOINTMENTS, SLOT, TOKEN_PATH

KitCheck = Callable[..., None]  # (run, response, case), raises AssertionError

KIT_CHECKS: list[KitCheck] = []


def kit_check(check: KitCheck) -> KitCheck:
    """Add `check` to the registry: every generated and hand-written request of a run goes through it."""
    KIT_CHECKS.append(check)
    return check


def for_schemathesis(run, *, without: tuple[str, ...] = ()) -> list:
    """The registry as Schemathesis check functions `(ctx, response, case)` bound to `run`, by name
    (a failure reads `Custom check failed: `<name>``); `without`: names left out."""
    bound = []
    for check in KIT_CHECKS:
        if check.__name__ in without:
            continue

        def bound_check(ctx, response, case, _check=check):
            return _check(run, response, case)

        bound_check.__name__ = bound_check.__qualname__ = check.__name__
        bound_check.__doc__ = check.__doc__
        bound.append(bound_check)
    return bound


@kit_check
def deleted_slot_is_gone(run, response, case):
    """After DELETE /schedule/slots/{id} succeeded, that id is unknown everywhere: 404 (or a 4xx
    about the request itself), never an answer as if the slot were still there."""
    value = str((case.path_parameters or {}).get("pd_appointment_uuid", "")).lower()
    if value not in run.deleted_slots or run.deleted_slots[value] == case.id:
        return None
    if case.operation.path not in (SLOT, APPOINTMENT):
        return None
    if 200 <= response.status_code < 300 or response.status_code == 409:  # answers as if it still existed
        raise AssertionError(f"slot {value} was deleted (DELETE /schedule/slots/{value} answered 2xx), so "
                             f"{case.method.upper()} {case.formatted_path} must answer 404, not {response.status_code}")
    return None


@kit_check
def search_results_match_the_query(run, response, case):
    """Every result of a search satisfies every filter given (patient, open or booked, type, date
    window; provider and radius for the run's own records), and every record of the run's model
    that satisfies the filters is listed, as the model holds it."""
    if case.operation.label != f"GET {APPOINTMENTS}" or response.status_code != 200:
        return None
    query = Query.from_params(case.query)
    if query is None:
        return None
    try:
        items = run.wire.payload(response)
    except ValueError:
        return None  # not JSON: the conformance checks say so
    model = run.model if run.model is not None else Model()
    problems = model.check_search(query, items, complete=complete_answer(run, response, case.query))
    if problems:
        raise AssertionError("the search answer does not match its query "
                             f"({query.describe()}):\n" + "\n".join(problems[:12]))
    return None


@kit_check
def a_body_not_sent_as_json_is_415(run, response, case):
    """A body sent with another Content-Type to an operation that takes JSON is refused with 415
    (openapi.yaml: "The body is not JSON (send Content-Type application/json)"): the server cannot
    have read it, so neither a record it refers to (404, 409) nor its fields (422) can be its answer.
    A record named in the path may be unknown all the same (404, or 409 for its state): the
    contract does not order those refusals. A body without Content-Type is read as JSON."""
    declared = _request_media_types(case)
    sent = str(_header(getattr(response, "request", None), "content-type") or "").split(";")[0].strip().lower()
    if not declared or not all(_is_json(media) for media in declared) or not sent or _is_json(sent):
        return None
    allowed = {413, 415} | ({404, 409} if "{" in case.operation.path else set())
    if response.status_code not in allowed:
        raise AssertionError(f"a body sent as {sent!r} is refused with 415 (the operation takes "
                             f"{', '.join(declared)}), not answered {response.status_code}")
    return None


def _request_media_types(case) -> list[str]:
    operation = case.operation
    definition = operation.schema.raw_schema.get("paths", {}).get(operation.path, {}).get(operation.method.lower(), {})
    body = definition.get("requestBody") if isinstance(definition, dict) else None
    return list((body or {}).get("content", {})) if isinstance(body, dict) else []


def _is_json(media_type: str) -> bool:
    return re.fullmatch(r"application/([a-z0-9.+-]*\+)?json", media_type.lower()) is not None


def complete_answer(run, response, params) -> bool:
    """Whether a search answer lists every match (so a missing record is a violation)."""
    if not run.wire.paged:
        return True
    meta = run.wire.meta(response)
    try:
        items = run.wire.payload(response)
        offset = int((params or {}).get("offset") or 0)
    except (ValueError, TypeError):
        return False
    return offset == 0 and isinstance(items, list) and meta.get("count") == len(items)


COLLECTIONS = {"GET /schedule/schedulers/", "GET /schedule/appointmenttypes/", f"GET {APPOINTMENTS}"}
DEFAULT_LIMIT = 100


@kit_check
def wire_format_conformance(run, response, case):
    """The platform's wire format (docs/wire-format.md) on every answer under the API base:
    success is 200 with {meta, data}; 401 is the bare {"message": "Unauthorized"}; a missing scope is
    a 403 in the envelope with data.errors.scope in the platform's recorded words (other 403s, such as
    a rate limit, may be the bare {"message": "Forbidden"}); every other error is in the envelope with
    data.errors (422 with data.errors.validation); no 400; collections and searches page with
    meta.count/limit/offset/next/previous; date-times have six fractional digits; a slot's status
    agrees with booked."""
    if not run.wire.enveloped or case.operation.path == TOKEN_PATH:
        return None
    problems = wire_problems(response, case.operation.label, case.query or {}, probe=_is_probe(response, case))
    problems += activity_id_problems(run, response)
    if problems:
        raise AssertionError("; ".join(problems))
    return None


def activity_id_problems(run, response) -> list[str]:
    """meta.activity_id is this request's id: an id answered twice in a run is a replayed (cached) answer."""
    try:
        meta = run.wire.meta(response)
    except ValueError:
        return []
    activity_id = meta.get("activity_id")
    if not isinstance(activity_id, str):
        return []
    request = getattr(response, "request", None) or response
    if run.activity_ids.setdefault(activity_id, request) is not request:
        return [f"meta.activity_id {activity_id!r} was answered before in this run: each request has its own id "
                "(a cached answer replayed?)"]
    return []


def _body_bytes(response) -> bytes:
    content = getattr(response, "content", b"")
    return content if isinstance(content, bytes) else str(content or "").encode()


def _is_probe(response, case) -> bool:
    """A request sent with a method its operation does not declare (Schemathesis' probe for 405):
    its 405 may come from the framework before the envelope; a 400 is held against it all the same."""
    request = getattr(response, "request", None)
    method = getattr(request, "method", None)
    return isinstance(method, str) and method.upper() != str(case.operation.method).upper()


def wire_problems(response, label: str, query: dict, probe: bool = False) -> list[str]:
    status = response.status_code
    problems = []
    if status == 400:
        problems.append("a 400 under the API base (no answer is a 400: the official Node client takes a 400 "
                        "for an expired token); a request breaking the contract is 422")
    if 200 <= status < 300 and status != 200:
        problems.append(f"success is 200, not {status}")
    if status == 304:  # Not Modified (the catalogue lists' If-None-Match): no body by definition (RFC 9110)
        return problems + ([] if not _body_bytes(response) else ["a 304 carries no body"])
    problems += charset_problems(response)
    try:
        body = response.json()
    except ValueError:
        return problems + [f"{status} without a JSON body"]
    if status == 401 and not str(_header(response, "www-authenticate") or "").lower().startswith("bearer"):
        problems.append("a 401 carries WWW-Authenticate: Bearer realm=... (RFC 6750), not "
                        f"{_header(response, 'www-authenticate')!r}")
    if status == 401:
        if not isinstance(body, dict) or body.get("message") != "Unauthorized":
            problems.append("a 401 is the bare {\"message\": \"Unauthorized\"} (with error, error_description)")
        elif "data" in body or "meta" in body:
            problems.append("a 401 is bare, not in the envelope")
        return problems
    if status == 403:
        return problems + forbidden_problems(body)
    if status >= 500 or status == 405 and probe:
        return problems
    if not isinstance(body, dict) or not isinstance(body.get("meta"), dict) or "data" not in body:
        return problems + [f"a {status} answer is {{\"meta\": ..., \"data\": ...}}"]
    meta, data = body["meta"], body["data"]
    if not isinstance(meta.get("activity_id"), str) or meta.get("application_mode") != "test" \
            or not isinstance(meta.get("processing_time"), int) or isinstance(meta.get("processing_time"), bool):
        problems.append("meta has activity_id (a string), application_mode \"test\" and processing_time (an integer)")
    header = _header(response, "x-activity-id")
    if header is not None and header != meta.get("activity_id"):
        problems.append(f"X-Activity-Id {header!r} is not meta.activity_id {meta.get('activity_id')!r}")
    if status >= 400:
        errors = data.get("errors") if isinstance(data, dict) else None
        if not isinstance(errors, dict) or errors.get("status") != status or not isinstance(errors.get("message"), str):
            problems.append(f"a {status} has data.errors with status {status}, error, message and field")
        elif status == 422 and not (isinstance(errors.get("validation"), dict) and errors["validation"] and all(
                isinstance(v, list) and v for v in errors["validation"].values())):
            problems.append("a 422 has data.errors.validation: each field at fault -> a list of messages")
        elif status == 422 and errors.get("field") and errors["field"] not in errors["validation"] \
                and not {"request", "body"} & set(errors["validation"]):  # the whole request or body at fault
            problems.append(f"data.errors.field {errors['field']!r} is one of the fields data.errors.validation "
                            f"names ({', '.join(map(repr, errors['validation']))})")
        return problems
    problems += record_format_problems(data)
    if label in COLLECTIONS:
        problems += paging_problems(meta, data, query)
    return problems


# The platform's words for a missing scope, as its recordings have them.
SCOPE_WORDS = re.compile(r"'[a-z_]+'( and '[a-z_]+')* scopes? required to access this API")


def forbidden_problems(body) -> list[str]:
    """A 403: for a missing scope, the envelope with data.errors.scope as recorded
    (`'user_schedule' scope required to access this API`); another refusal (a rate limit) may be the
    platform's bare {"message": "Forbidden"}."""
    if isinstance(body, dict) and "data" not in body and "meta" not in body:
        if body.get("message") != "Forbidden":
            return ["a bare 403 is {\"message\": \"Forbidden\"}"]
        if body.get("error") == "insufficient_scope":
            return ["a missing scope is a 403 in the envelope, data.errors.scope "
                    "(\"'user_schedule' scope required to access this API\"), as the platform answered it"]
        return []
    data = body.get("data") if isinstance(body, dict) else None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(body, dict) or not isinstance(body.get("meta"), dict) or not isinstance(errors, dict):
        return ["a 403 is {\"meta\": ..., \"data\": {\"errors\": ...}} (a missing scope) or the bare "
                "{\"message\": \"Forbidden\"}"]
    scope = errors.get("scope")
    if not isinstance(scope, str) or not SCOPE_WORDS.fullmatch(scope):
        return [f"a 403 in the envelope has data.errors.scope in the platform's words (\"'user_schedule' scope "
                f"required to access this API\"), not {scope!r}"]
    return []


def paging_problems(meta: dict, data, query: dict) -> list[str]:
    from urllib.parse import parse_qs, urlsplit

    if not isinstance(data, list):
        return ["a collection's data is a list"]
    problems = []
    count, limit, offset = meta.get("count"), meta.get("limit"), meta.get("offset")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, limit, offset)):
        return ["meta.count, meta.limit and meta.offset are integers on a collection"]
    try:
        asked_limit = int(query["limit"]) if query.get("limit") not in (None, "") else DEFAULT_LIMIT
        asked_offset = int(query["offset"]) if query.get("offset") not in (None, "") else 0
    except (TypeError, ValueError):
        return problems
    if limit != asked_limit:
        problems.append(f"meta.limit {limit}, the request asked for {asked_limit}")
    if offset != asked_offset:
        problems.append(f"meta.offset {offset}, the request asked for {asked_offset}")
    expected_len = max(0, min(limit, count - offset))
    if len(data) != expected_len:
        problems.append(f"{len(data)} records on a page of limit {limit} at offset {offset} of {count} "
                        f"(expected {expected_len})")
    for key, wanted in (("next", offset + limit if offset + limit < count else None),
                        ("previous", max(offset - limit, 0) if offset > 0 else None)):
        link = meta.get(key)
        if wanted is None:
            if link is not None:
                problems.append(f"meta.{key} is null here (offset {offset}, limit {limit}, count {count}), not {link!r}")
            continue
        if not isinstance(link, str) or not urlsplit(link).scheme:
            problems.append(f"meta.{key} is the absolute URL of the page at offset {wanted}, not {link!r}")
            continue
        params = parse_qs(urlsplit(link).query)
        if params.get("offset") != [str(wanted)] or params.get("limit", [str(limit)]) != [str(limit)]:
            problems.append(f"meta.{key} {link!r} is not the page at offset {wanted} (limit {limit})")
    return problems


# Answers write date-times offset-less with six fractional digits (openapi.yaml, AnsweredDateTime: as
# documented, YYYY-MM-DDThh:mm:ss.ssssss, and as every recording of the platform has them, whatever
# precision the request sent); uuids are written in lower case (RFC 4122 section 3), whatever case
# the request used.
ANSWER_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}")
DATE_TIME_KEYS = ("start_date", "end_date", "record_dt", "created_date", "last_updated_date")
STATUSES = {"open": False, "booked": True, "completed": True}  # status -> the booked it goes with


def record_format_problems(data) -> list[str]:
    """What the schema lets through but the contract does not: offsets, a missing seconds field or
    fewer than six fractional digits in answered date-times, upper-case uuids, a slot whose status
    (open, booked, completed) disagrees with its booked. One problem per kind, for the first found."""
    found: dict[str, str] = {}
    stack, seen = [data], 0
    while stack and seen < 5000:  # a page of 1000 records holds a few thousand values at most
        node, seen = stack.pop(), seen + 1
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        if isinstance(node, dict) and "booked" in node and "status" not in found:
            status, booked = node.get("status"), node.get("booked")
            if status not in STATUSES:
                found["status"] = (f"status {status!r} beside booked {booked!r}: every slot and appointment has "
                                   "status open, booked or completed")
            elif STATUSES[status] is not booked:
                found["status"] = f"status {status!r} with booked {booked!r}: open goes with booked false, " \
                                  "booked and completed with booked true"
        for key, value in items:
            if isinstance(value, (dict, list)):
                stack.append(value)
            elif not isinstance(value, str) or not isinstance(key, str):
                continue
            elif key in DATE_TIME_KEYS and "date" not in found and not ANSWER_DATE_TIME.fullmatch(value):
                found["date"] = (f"{key} {value!r}: answers write date-times as YYYY-MM-DDThh:mm:ss.ssssss (six "
                                 "fractional digits), in UTC without an offset")
            elif key.endswith("uuid") and "uuid" not in found and value != value.lower():
                found["uuid"] = f"{key} {value!r}: uuids are answered in lower case"
    return list(found.values())


def charset_problems(response) -> list[str]:
    """JSON is UTF-8 (RFC 8259 section 8.1): a charset, if the Content-Type names one, is utf-8."""
    content_type = str(_header(response, "content-type") or "")
    match = re.search(r";\s*charset=\"?([^\";\s]+)", content_type, re.I)
    if match and match[1].lower().replace("_", "-") not in ("utf-8", "utf8"):
        return [f"Content-Type {content_type!r}: JSON is sent as UTF-8"]
    return []


def _header(response, name: str):
    headers = getattr(response, "headers", {}) or {}
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None
