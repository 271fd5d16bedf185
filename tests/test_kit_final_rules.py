"""The contract kit holds any target to the final documentation's rules and the platform's recorded
answers (contract_tests/test_final_documentation.py, the wire check in contract_tests/checks.py):
the sandbox passes, and a sandbox broken in each way is reported."""

from __future__ import annotations

import json

from pokitdok_sandbox.contract_tests.checks import wire_problems
from pokitdok_sandbox.scheduling import Scheduling

from .test_contract_kit import Rewrite, assert_reported, findings, run_kit, sandbox

KEYWORD = "final_documentation"


def test_the_sandbox_passes_the_final_documentations_rules():
    result = run_kit(sandbox(), keyword=f"{KEYWORD} or auth")
    assert result.passed, result.summary
    assert not findings(result)


def test_a_bare_scope_403_is_reported():
    def bare(method, path, status, headers, body):  # the bug: the 403 of a missing scope without the envelope
        if status == 403 and b'"scope"' in body:
            body = json.dumps({"message": "Forbidden", "error": "insufficient_scope", "error_description": "no"})
            return status, headers, body.encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), bare), keyword=KEYWORD)
    assert_reported(result, "wire_format_conformance", "GET /schedule/appointments/{pd_appointment_uuid}")
    assert "a missing scope is a 403 in the envelope" in result.summary


def test_date_times_echoing_the_request_precision_are_reported():
    def echoed(method, path, status, headers, body):  # the bug: whole seconds answered as sent
        return status, headers, body.replace(b'.000000"', b'"')

    result = run_kit(Rewrite(sandbox(), echoed), keyword=KEYWORD)
    assert_reported(result, "wire_format_conformance", "POST /schedule/slots/")
    assert "(six fractional digits)" in result.summary


def test_a_completed_appointment_that_can_be_cancelled_is_reported(monkeypatch):
    cancel = Scheduling.cancel_appointment

    def forgetful(self, tenant_id, pd_appointment_uuid):  # the bug: completion is not a rule for cancel
        with self._transaction(tenant_id) as tenant:
            slot = tenant.get("slots", pd_appointment_uuid.lower(), for_update=True)
            if slot is not None and slot.get("completed"):
                slot["completed"] = False
                tenant.replace("slots", slot)
        return cancel(self, tenant_id, pd_appointment_uuid)

    monkeypatch.setattr(Scheduling, "cancel_appointment", forgetful)
    result = run_kit(sandbox(), keyword=KEYWORD)
    assert_reported(result, "6. a completed appointment cannot be cancelled",
                    "DELETE /schedule/appointments/{pd_appointment_uuid}")


def test_activities_that_do_not_read_back_are_reported():
    def forgotten(method, path, status, headers, body):  # the bug: activity ids lead nowhere
        if path.startswith("/api/v4/activities/") and path != "/api/v4/activities/":
            return 404, headers, json.dumps({"meta": {"activity_id": headers.get("x-activity-id"),
                                                      "application_mode": "test",
                                                      "processing_time": 0},
                                             "data": {"errors": {"status": 404, "error": "not_found",
                                                                 "message": "no such activity",
                                                                 "field": "activity_id"}}}).encode()
        return status, headers, body

    result = run_kit(Rewrite(sandbox(), forgotten), keyword=KEYWORD)
    assert_reported(result, "the activity of a success reads back", "GET /activities/{activity_id}")


class _Answer:
    def __init__(self, status: int, body):
        self.status_code, self.content = status, json.dumps(body).encode()
        self.headers = {"content-type": "application/json"}

    def json(self):
        return json.loads(self.content)


META = {"activity_id": "a", "application_mode": "test", "processing_time": 1}


def test_the_wire_check_reads_403s_and_statuses_as_the_platform_had_them():
    label = "GET /schedule/appointments/{pd_appointment_uuid}"
    recorded = {"meta": META, "data": {"errors": {"scope": "'user_schedule' scope required to access this API",
                                                  "status": 403, "error": "insufficient_scope",
                                                  "message": "get a token with user_schedule", "field": "scope"}}}
    assert wire_problems(_Answer(403, recorded), label, {}) == []
    assert wire_problems(_Answer(403, {"message": "Forbidden", "error": "rate_limit_exceeded"}), label, {}) == []
    [bare] = wire_problems(_Answer(403, {"message": "Forbidden", "error": "insufficient_scope"}), label, {})
    assert "in the envelope" in bare
    reworded = {"meta": META, "data": {"errors": {"scope": "no scope", "status": 403}}}
    assert "platform's words" in wire_problems(_Answer(403, reworded), label, {})[0]
    slot = {"appointment_id": "X", "appointment_type": "AT1", "provider_scheduler_uuid": "u",
            "start_date": "2031-01-01T10:00:00.000000", "end_date": "2031-01-01T11:00:00.000000"}
    assert wire_problems(_Answer(200, {"meta": META, "data": [{**slot, "booked": True, "status": "completed"}]}),
                         label, {}) == []
    [mismatch] = wire_problems(_Answer(200, {"meta": META, "data": [{**slot, "booked": False, "status": "booked"}]}),
                               label, {})
    assert "status 'booked' with booked False" in mismatch
    [digits] = wire_problems(_Answer(200, {"meta": META, "data": [{**slot, "booked": False, "status": "open",
                                                                   "start_date": "2031-01-01T10:00:00.5"}]}), label, {})
    assert "six fractional digits" in digits
