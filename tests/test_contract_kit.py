"""The contract kit catches breakage: it runs (in-process, few examples) against deliberately
broken variants of the sandbox and must report each one, and passes clean on the real sandbox.
A broken variant runs the part of the kit that meets its bug (`keyword`); the clean runs run it all.

Variants are built here, around an unchanged sandbox: an ASGI middleware rewriting answers, or
a monkeypatched rule. Each kit run works in its own tenant of a fresh in-memory sandbox.
"""

from __future__ import annotations

import json
import re

import pytest

from pokitdok_sandbox.contract_tests.options import KitOptions
from pokitdok_sandbox.contract_tests.partitions import RULES, every_partition
from pokitdok_sandbox.contract_tests.runner import KitResult, run
from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.auth import ALL_SCOPES, Authority
from pokitdok_sandbox.errors import SandboxError
from pokitdok_sandbox.scheduling import Scheduling

from .conftest import make_settings

SEED = 20240611
EXAMPLES = 5


def run_kit(app, keyword: str | None = None, **options) -> KitResult:
    return run(KitOptions(app=app, max_examples=EXAMPLES, seed=SEED, **options), keyword=keyword, quiet=True)


def sandbox():
    """A fresh sandbox on the running test's backend (in memory unless the test asks for `backend`)."""
    return create_app(make_settings(validate_responses=False))


class Rewrite:
    """ASGI middleware: `rewrite(method, path, status, headers, body) -> (status, headers, body)`
    for every HTTP answer of the wrapped application."""

    def __init__(self, app, rewrite):
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                started.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = {k.decode().lower(): v.decode() for k, v in started.get("headers", [])}
            status, headers, body = self.rewrite(scope["method"], scope["path"], started["status"], headers,
                                                 b"".join(chunks))
            headers["content-length"] = str(len(body))
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.encode(), v.encode()) for k, v in headers.items()]})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)


def findings(result: KitResult, check: str | None = None, operation: str | None = None) -> list:
    return [f for f in result.findings
            if (check is None or check in f.check) and (operation is None or f.operation == operation)]


def assert_reported(result: KitResult, check: str, operation: str) -> None:
    """The run failed, and the summary names the operation, the check, the request and both sides."""
    assert not result.passed, result.summary
    found = findings(result, check, operation)
    assert found, f"no {check!r} finding for {operation}:\n{result.summary}"
    finding = found[-1]
    # one request as curl, or the model-based suite's shortest failing sequence as a script
    assert finding.curl.startswith(("curl -X ", "#!/bin/sh")), finding
    assert finding.expected and finding.actual, finding
    assert operation in result.summary and check in result.summary
    assert any(all(line in result.summary for line in f.curl.splitlines()) for f in found), result.summary


# -- the real sandbox ----------------------------------------------------------------------

def test_the_kit_passes_clean_against_the_sandbox(backend):
    result = run_kit(sandbox())
    assert result.passed, result.summary
    assert not result.failed and not result.findings
    assert "No contract violations found." in result.summary
    # every partition of every rule was exercised, and the summary names each
    assert result.partitions == every_partition(), every_partition() - result.partitions
    assert f"partitions exercised: {len(every_partition())} of {len(every_partition())}" in result.summary
    for rule, parts in RULES.items():
        line = next(line for line in result.summary.splitlines() if line.startswith(f"  {rule} "))
        assert all(name in line for name in parts) and "NOT EXERCISED" not in line, line


def test_the_kit_passes_against_the_sandbox_as_a_shared_tenant(backend):
    result = run_kit(sandbox(), isolation="shared")
    assert result.passed, result.summary
    assert "isolation: shared" in result.summary


# -- broken variants --------------------------------------------------------------------------

def test_a_200_on_double_booking_is_reported(monkeypatch):
    book = Scheduling.update_appointment

    def book_over_anyone(self, tenant_id, pd_appointment_uuid, patient=None, description=None, mark_completed=None):
        if patient is not None:  # the bug: the current holder silently loses the slot
            try:
                self.cancel_appointment(tenant_id, pd_appointment_uuid)
            except SandboxError:
                pass
        return book(self, tenant_id, pd_appointment_uuid, patient, description, mark_completed)

    monkeypatch.setattr(Scheduling, "update_appointment", book_over_anyone)
    result = run_kit(sandbox(), keyword="rules")
    assert_reported(result, "double booking is refused", "PUT /schedule/appointments/{pd_appointment_uuid}")
    finding = findings(result, "double booking is refused")[0]
    assert finding.expected.startswith("409") and finding.actual.startswith("200")


def test_a_missing_required_field_in_a_response_is_reported():
    def drop_appointment_id(method, path, status, headers, body):
        if method == "GET" and path.startswith("/api/v4/schedule/appointments/") and status == 200:
            document = json.loads(body)
            records = document["data"]
            for record in records if isinstance(records, list) else [records]:
                record.pop("appointment_id", None)
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), drop_appointment_id), keyword="rules")
    assert_reported(result, "response_schema_conformance", "GET /schedule/appointments/{pd_appointment_uuid}")
    assert "appointment_id" in findings(result, "response_schema_conformance")[0].expected


def test_a_wrong_status_code_is_reported():
    def ok_as_created(method, path, status, headers, body):  # the bug: REST habits, not the platform's 200
        return (201 if (method, path, status) == ("POST", "/api/v4/schedule/slots/", 200) else status), headers, body

    result = run_kit(Rewrite(sandbox(), ok_as_created), keyword="rules")
    assert_reported(result, "status_code_conformance", "POST /schedule/slots/")
    assert findings(result, "create an open slot", "POST /schedule/slots/"), result.summary


def test_a_400_is_reported():
    def bad_request(method, path, status, headers, body):  # the bug: validation errors as 400
        return (400 if status == 422 else status), headers, body

    result = run_kit(Rewrite(sandbox(), bad_request), keyword="properties and slots")
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "a 400 under the API base" in result.summary
    # one cause, one entry: the same check and rule for every value that ran into it
    causes = [(f.operation, f.check, f.cause()) for f in findings(result, "wire_format_conformance")]
    assert len(causes) == len(set(causes)), result.summary


def test_a_malformed_query_refused_with_another_status_than_422_is_reported():
    def forbidden(method, path, status, headers, body):  # the bug: a broken query counted as abuse (a bare 403)
        if (method, path, status) != ("GET", "/api/v4/schedule/schedulers/", 422):
            return status, headers, body
        return 403, headers, json.dumps({"message": "Forbidden", "error": "rate_limit_exceeded",
                                         "error_description": "too many bad requests"}).encode()

    result = run_kit(Rewrite(sandbox(), forbidden), keyword="properties")
    # a 403 is declared and in a shape the contract allows: only the status the contract gives
    # invalid data (422) tells it from a correct answer
    assert_reported(result, "negative_data_rejection", "GET /schedule/schedulers/")


def test_a_body_in_another_media_type_read_as_json_is_reported():
    app = sandbox()

    async def content_type_ignored(scope, receive, send):  # the bug: every API body read as JSON
        if scope["type"] == "http" and scope["path"].startswith("/api/v4/"):
            scope = {**scope, "headers": [(key, b"application/json" if key == b"content-type" else value)
                                          for key, value in scope["headers"]]}
        return await app(scope, receive, send)

    result = run_kit(content_type_ignored, keyword="properties")
    assert_reported(result, "a_body_not_sent_as_json_is_415", "POST /schedule/slots/")


def test_an_answer_outside_the_envelope_is_reported():
    def bare(method, path, status, headers, body):  # the bug: the documented payload without {meta, data}
        if path == "/api/v4/schedule/schedulers/" and status == 200:
            body = json.dumps(json.loads(body)["data"]).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), bare), keyword="properties and schedulers")
    assert_reported(result, "conformance", "GET /schedule/schedulers/")


def test_a_limit_not_honoured_is_reported():
    class IgnoreLimit:
        def __init__(self, app):
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and scope["path"] == "/api/v4/schedule/appointmenttypes/":
                query = [p for p in scope["query_string"].decode().split("&") if not p.startswith("limit=")]
                scope = {**scope, "query_string": "&".join(query).encode()}
            await self.app(scope, receive, send)

    result = run_kit(IgnoreLimit(sandbox()), keyword="properties and appointmenttypes/]")
    assert_reported(result, "wire_format_conformance", "GET /schedule/appointmenttypes/")
    assert "meta.limit" in result.summary


def test_a_500_on_some_input_is_reported(monkeypatch):
    register = Scheduling.register_patient

    def crash_without_location(self, tenant_id, pd_patient_uuid, pd_provider_uuid, location=None):
        if location is None:  # the bug: the optional field is assumed present
            raise TypeError("'NoneType' object is not subscriptable")
        return register(self, tenant_id, pd_patient_uuid, pd_provider_uuid, location)

    monkeypatch.setattr(Scheduling, "register_patient", crash_without_location)
    result = run_kit(sandbox(), keyword="properties and patient")
    assert_reported(result, "not_a_server_error", "POST /schedule/patient/")
    assert "500" in findings(result, "not_a_server_error")[0].actual


def test_a_wrong_content_type_is_reported():
    def as_text(method, path, status, headers, body):
        if path == "/api/v4/schedule/schedulers/" and status == 200:
            headers["content-type"] = "text/plain"
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), as_text), keyword="properties and schedulers")
    assert_reported(result, "content_type_conformance", "GET /schedule/schedulers/")


def test_an_unenforced_scope_is_reported(monkeypatch):
    check_token = Authority.check_token

    def every_scope(self, access_token):  # the bug: a narrowed token is treated as a full one
        info = check_token(self, access_token)
        return {**info, "scope": list(ALL_SCOPES)} if info else info

    monkeypatch.setattr(Authority, "check_token", every_scope)
    result = run_kit(sandbox(), keyword="auth")
    assert_reported(result, "a user_schedule-only token is refused", "POST /schedule/slots/")
    refused = findings(result, "-only token is refused")
    assert {f.operation for f in refused} >= {"POST /schedule/slots/",
                                              "PUT /schedule/appointments/{pd_appointment_uuid}"}
    assert all(f.expected.startswith("403") for f in refused)


class RewriteRequest:
    """ASGI middleware: `rewrite(method, path, query, headers) -> (query, headers)` for every HTTP
    request before the wrapped application sees it (query: a list of pairs; headers: a dict)."""

    def __init__(self, app, rewrite):
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            from urllib.parse import parse_qsl, urlencode

            query = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            query, headers = self.rewrite(scope["method"], scope["path"], query, headers)
            scope = {**scope, "query_string": urlencode(query).encode(),
                     "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
        await self.app(scope, receive, send)


def _records(body: bytes, change) -> bytes:
    """`change(record)` for every record of a successful answer's data."""
    document = json.loads(body)
    data = document.get("data")
    for record in data if isinstance(data, list) else [data]:
        if isinstance(record, dict):
            change(record)
    return json.dumps(document).encode()


def _is_appointment_answer(method, path, status) -> bool:
    return status == 200 and path.startswith(("/api/v4/schedule/appointments/", "/api/v4/schedule/slots/"))


def test_date_times_answered_with_an_offset_are_reported():
    def with_z(method, path, status, headers, body):  # the bug: a serializer's default, "...Z"
        if _is_appointment_answer(method, path, status):
            body = _records(body, lambda r: r.update({k: r[k] + "Z" for k in ("start_date", "end_date") if k in r}))
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), with_z), keyword="workflow")
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "without an offset" in result.summary


def test_upper_case_uuids_are_reported():
    def upper(method, path, status, headers, body):  # the bug: ids formatted with %X
        if _is_appointment_answer(method, path, status):
            body = _records(body, lambda r: r.update(pd_appointment_uuid=r["pd_appointment_uuid"].upper())
                            if "pd_appointment_uuid" in r else None)
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), upper), keyword="workflow")
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "uuids are answered in lower case" in result.summary


def test_a_charset_other_than_utf8_is_reported():
    def latin1(method, path, status, headers, body):
        if path.startswith("/api/v4/schedule/"):
            headers["content-type"] = "application/json; charset=iso-8859-1"
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), latin1), keyword="workflow")
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "JSON is sent as UTF-8" in result.summary


def test_a_401_without_www_authenticate_is_reported():
    def no_challenge(method, path, status, headers, body):
        if status == 401:
            headers.pop("www-authenticate", None)
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), no_challenge), keyword="without_a_valid_token and schedulers")
    assert_reported(result, "wire_format_conformance", "GET /schedule/schedulers/")
    assert "WWW-Authenticate" in result.summary


def test_a_case_sensitive_bearer_scheme_is_reported():
    def exact_scheme(method, path, query, headers):  # the bug: only "Bearer" is recognised
        if headers.get("authorization", "").split(" ")[0] in ("bearer", "BEARER"):
            headers["authorization"] = "Unknown " + headers["authorization"].split(" ", 1)[1]
        return query, headers

    result = run_kit(RewriteRequest(sandbox(), exact_scheme), keyword="bearer_scheme")
    assert_reported(result, "'Authorization: bearer <token>' header is accepted", "GET /schedule/schedulers/")


def test_a_search_with_end_before_start_accepted_is_reported():
    def swap(method, path, query, headers):  # the bug: the window is normalised instead of refused
        values = dict(query)
        if path == "/api/v4/schedule/appointments/" and values.get("end_date", "~") < values.get("start_date", ""):
            query = [(k, values["end_date"] if k == "start_date" else values["start_date"] if k == "end_date" else v)
                     for k, v in query]
        return query, headers

    result = run_kit(RewriteRequest(sandbox(), swap), keyword="refused_search")
    assert_reported(result, "end_date must be after start_date", "GET /schedule/appointments/")
    assert findings(result, "end_date must be after start_date")[0].actual.startswith("200")


def test_a_422_naming_the_wrong_field_is_reported():
    def blame_the_body(method, path, status, headers, body):  # the bug: every refusal blames "body"
        if status == 422:
            document = json.loads(body)
            errors = document["data"]["errors"]
            errors["validation"] = {"body": [m for ms in errors["validation"].values() for m in ms]}
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), blame_the_body), keyword="refused_slot")
    assert_reported(result, "end_date must be after start_date", "POST /schedule/slots/")
    assert "data.errors.validation names start_date or end_date" in result.summary


def test_errors_field_outside_the_validation_is_reported():
    def rename(method, path, status, headers, body):  # the bug: validation keyed by another name
        if status == 422:
            document = json.loads(body)
            errors = document["data"]["errors"]
            errors["validation"] = {f"params.{k}": v for k, v in errors["validation"].items()}
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), rename), keyword="invalid_slots")
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "is one of the fields data.errors.validation names" in result.summary


def _paged(path: str) -> bool:
    return path.rstrip("/") in ("/api/v4/schedule/schedulers", "/api/v4/schedule/appointmenttypes",
                                "/api/v4/schedule/appointments")


def test_an_offset_off_by_one_is_reported():
    """The server skips one record more than asked and says it did not: each page is well-formed
    on its own (meta as asked, the right length), only the walk through the pages shows it."""
    def skip_one_more(method, path, query, headers):
        if _paged(path):
            query = [(k, str(int(v) + 1) if k == "offset" and v.isdigit() and int(v) > 0 else v) for k, v in query]
        return query, headers

    def hide_it(method, path, status, headers, body):
        document = json.loads(body) if status == 200 and _paged(path) else None
        if document and document["meta"].get("offset"):
            meta = document["meta"]
            meta["offset"] -= 1
            for key in ("next", "previous"):
                if meta.get(key):
                    meta[key] = re.sub(r"offset=(\d+)", lambda m: f"offset={max(0, int(m[1]) - 1)}", meta[key])
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(RewriteRequest(sandbox(), skip_one_more), hide_it), keyword="pages_of_a_collection")
    assert_reported(result, "the pages of a collection are the collection", "GET /schedule/appointmenttypes/")


def test_a_count_of_the_page_rather_than_the_collection_is_reported():
    def count_the_page(method, path, status, headers, body):  # the bug: len(page), links made to agree
        if status == 200 and _paged(path):
            document = json.loads(body)
            meta = document["meta"]
            meta["count"] = meta["offset"] + len(document["data"])
            if meta["offset"] + meta["limit"] >= meta["count"]:
                meta["next"] = None
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), count_the_page), keyword="pages_of_a_collection")
    assert_reported(result, "the pages of a collection are the collection", "GET /schedule/schedulers/")


def test_a_list_record_differing_from_its_uuid_read_is_reported():
    def one_field_wrong(method, path, status, headers, body):  # the bug: the list's view drops a join
        if status == 200 and path == "/api/v4/schedule/appointmenttypes/":
            document = json.loads(body)
            for record in document["data"][1:2]:
                record["duration"] += 15
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), one_field_wrong), keyword="reads_the_same_by_its_uuid")
    assert_reported(result, "a record in a list is the record its uuid reads",
                    "GET /schedule/appointmenttypes/{appointment_type_uuid}")


class CatalogueCache:
    """ASGI wrapper: GET of the schedulers list answered from a cache keyed by URL (the whole answer)."""

    def __init__(self, app):
        self.app = app
        self.cache: dict = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] != "/api/v4/schedule/schedulers/":
            return await self.app(scope, receive, send)
        key = scope["query_string"]
        if key not in self.cache:
            messages: list = []

            async def keep(message):
                messages.append(message)

            await self.app(scope, receive, keep)
            if messages[0]["status"] != 200:
                for message in messages:
                    await send(message)
                return
            self.cache[key] = messages
        for message in self.cache[key]:
            await send(message)


def test_a_cached_answer_replayed_is_reported():
    """A caching layer that keys on the URL only: every answer well-formed, only the activity id repeats."""
    result = run_kit(CatalogueCache(sandbox()), keyword="catalogue_reads")
    assert_reported(result, "wire_format_conformance", "GET /schedule/schedulers/")
    assert "was answered before in this run" in result.summary


def test_a_token_expiry_in_milliseconds_is_reported():
    def milliseconds(method, path, status, headers, body):  # the bug: expires_in in ms, expires in s
        if path == "/oauth2/token" and status == 200:
            document = json.loads(body)
            document["expires_in"] *= 1000
            body = json.dumps(document).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), milliseconds), keyword="issues_bearer_tokens")
    assert_reported(result, "a token's expires is now + expires_in", "POST /oauth2/token")


class FormCredentialsCrash:
    """ASGI wrapper: the token endpoint fails with a 500 on credentials sent in the form body."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] != "/oauth2/token":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b"client_secret=" in body:
            payload = b'{"error": "server_error"}'
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            return await send({"type": "http.response.body", "body": payload})
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def test_the_client_secret_never_appears_in_a_report():
    secret = "s3cr3t-never-shown"
    result = run_kit(FormCredentialsCrash(sandbox()), keyword="properties and oauth2",
                     client_id="kit-secret-check", client_secret=secret)
    assert_reported(result, "not_a_server_error", "POST /oauth2/token")
    assert secret not in result.summary
    assert all(secret not in f.curl and secret not in f.actual for f in result.findings)
    assert any("$CLIENT_SECRET" in f.curl for f in result.findings), result.summary


def test_form_bodies_are_masked_in_curl_lines():
    import requests

    from pokitdok_sandbox.contract_tests.report import curl_command

    prepared = requests.Request("POST", "http://x/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "me", "client_secret": "hunter2"}).prepare()
    line = curl_command(prepared)
    assert "hunter2" not in line and "client_secret=$CLIENT_SECRET" in line and "client_id=$CLIENT_ID" in line


def test_a_wrong_base_url_ends_the_run_with_one_message(capsys):
    result = run(KitOptions(app=sandbox(), base_url="http://testserver/v4", max_examples=EXAMPLES), quiet=True)
    assert result.exit_code == 3 and not result.findings
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("is --base-url the API base") == 1, text
    assert "answered 404" in text


def test_an_unreachable_target_is_reported_once(capsys):
    result = run(KitOptions(base_url="http://127.0.0.1:9/api/v4", max_examples=EXAMPLES, timeout=2), quiet=True)
    assert result.exit_code == 3
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("cannot reach") == 1, text


@pytest.mark.parametrize("options, message", [
    ({"isolation": "sideways"}, "isolation must be one of"),
    ({"max_examples": 0}, "max_examples must be at least 1"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        KitOptions(**options)


class _Answer:
    """Just enough of an HTTP answer for the wire check."""

    def __init__(self, status: int, content: bytes):
        self.status_code, self.content, self.headers = status, content, {}

    def json(self):
        return json.loads(self.content)


def test_a_304_is_held_to_carrying_no_body():
    # The catalogue lists answer If-None-Match with 304 (openapi.yaml); Schemathesis sends such headers.
    from pokitdok_sandbox.contract_tests.checks import wire_problems

    assert wire_problems(_Answer(304, b""), "GET /schedule/schedulers/", {}) == []
    assert wire_problems(_Answer(304, b'{"meta": {}, "data": []}'), "GET /schedule/schedulers/", {}) \
        == ["a 304 carries no body"]
