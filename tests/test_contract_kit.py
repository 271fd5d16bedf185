"""The contract kit catches breakage: it runs (in-process, few examples) against deliberately
broken variants of the sandbox and must report each one, and passes clean on the real sandbox.

Variants are built here, around an unchanged sandbox: an ASGI middleware rewriting answers, or
a monkeypatched rule. Each kit run works in its own tenant of a fresh in-memory sandbox.
"""

from __future__ import annotations

import json

import pytest

from contract_tests.options import KitOptions
from contract_tests.runner import KitResult, run
from sandbox.app import create_app
from sandbox.auth import ALL_SCOPES, Authority
from sandbox.errors import SandboxError
from sandbox.scheduling import Scheduling

from .conftest import make_settings

SEED = 20240611
EXAMPLES = 5


def run_kit(app, **options) -> KitResult:
    return run(KitOptions(app=app, max_examples=EXAMPLES, seed=SEED, **options), quiet=True)


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
    assert finding.curl.startswith("curl -X "), finding
    assert finding.expected and finding.actual, finding
    assert operation in result.summary and check in result.summary
    assert any(f.curl in result.summary for f in found), result.summary


# -- the real sandbox ----------------------------------------------------------------------

def test_the_kit_passes_clean_against_the_sandbox(backend):
    result = run_kit(sandbox())
    assert result.passed, result.summary
    assert not result.failed and not result.findings
    assert "No contract violations found." in result.summary


def test_the_kit_passes_against_the_sandbox_as_a_shared_tenant(backend):
    result = run_kit(sandbox(), isolation="shared")
    assert result.passed, result.summary
    assert "isolation: shared" in result.summary


# -- broken variants --------------------------------------------------------------------------

def test_a_200_on_double_booking_is_reported(monkeypatch):
    book = Scheduling.update_appointment

    def book_over_anyone(self, tenant_id, pd_appointment_uuid, patient=None, description=None):
        if patient is not None:  # the bug: the current holder silently loses the slot
            try:
                self.cancel_appointment(tenant_id, pd_appointment_uuid)
            except SandboxError:
                pass
        return book(self, tenant_id, pd_appointment_uuid, patient, description)

    monkeypatch.setattr(Scheduling, "update_appointment", book_over_anyone)
    result = run_kit(sandbox())
    assert_reported(result, "double booking is refused", "PUT /schedule/appointments/{pd_appointment_uuid}")
    finding = findings(result, "double booking is refused")[0]
    assert finding.expected.startswith("409") and finding.actual.startswith("200")


def test_a_missing_required_field_in_a_response_is_reported():
    def drop_appointment_id(method, path, status, headers, body):
        if method == "GET" and path.startswith("/api/v4/schedule/appointments/") and status == 200:
            records = json.loads(body)
            for record in records if isinstance(records, list) else [records]:
                record.pop("appointment_id", None)
            body = json.dumps(records).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), drop_appointment_id))
    assert_reported(result, "response_schema_conformance", "GET /schedule/appointments/{pd_appointment_uuid}")
    assert "appointment_id" in findings(result, "response_schema_conformance")[0].expected


def test_a_wrong_status_code_is_reported():
    def created_as_ok(method, path, status, headers, body):
        return (200 if (method, path, status) == ("POST", "/api/v4/schedule/slots/", 201) else status), headers, body

    result = run_kit(Rewrite(sandbox(), created_as_ok))
    assert_reported(result, "status_code_conformance", "POST /schedule/slots/")
    assert findings(result, "create an open slot", "POST /schedule/slots/"), result.summary


def test_a_500_on_some_input_is_reported(monkeypatch):
    register = Scheduling.register_patient

    def crash_without_location(self, tenant_id, pd_patient_uuid, pd_provider_uuid, location=None):
        if location is None:  # the bug: the optional field is assumed present
            raise TypeError("'NoneType' object is not subscriptable")
        return register(self, tenant_id, pd_patient_uuid, pd_provider_uuid, location)

    monkeypatch.setattr(Scheduling, "register_patient", crash_without_location)
    result = run_kit(sandbox())
    assert_reported(result, "not_a_server_error", "POST /schedule/patient/")
    assert "500" in findings(result, "not_a_server_error")[0].actual


def test_a_wrong_content_type_is_reported():
    def as_text(method, path, status, headers, body):
        if path == "/api/v4/schedule/schedulers/" and status == 200:
            headers["content-type"] = "text/plain"
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), as_text))
    assert_reported(result, "content_type_conformance", "GET /schedule/schedulers/")


def test_an_unenforced_scope_is_reported(monkeypatch):
    token_info = Authority.token_info

    def every_scope(self, access_token):  # the bug: a narrowed token is treated as a full one
        info = token_info(self, access_token)
        return {**info, "scope": list(ALL_SCOPES)} if info else info

    monkeypatch.setattr(Authority, "token_info", every_scope)
    result = run_kit(sandbox())
    assert_reported(result, "a user_schedule-only token is refused", "POST /schedule/slots/")
    refused = findings(result, "-only token is refused")
    assert {f.operation for f in refused} >= {"POST /schedule/slots/",
                                              "PUT /schedule/appointments/{pd_appointment_uuid}"}
    assert all(f.expected.startswith("403") for f in refused)


@pytest.mark.parametrize("options, message", [
    ({"isolation": "sideways"}, "isolation must be one of"),
    ({"max_examples": 0}, "max_examples must be at least 1"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        KitOptions(**options)
