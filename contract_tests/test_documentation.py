"""Every curl example of the documentation, replayed in document order: the documented status
(201 for slot creation, 200 otherwise), a JSON answer conforming to the contract, and the
documented shape (every documented field, with the same JSON type).

In a tenant of its own (targets that register new clients) the examples run verbatim against
the documented records (slot ef987691-... booked, slot ab21e95b-... open, ...). On a shared
target the examples that change data use the kit's own slots instead (far-future times, the
kit's provider), so the documented records other users rely on are never touched; the
read-only examples still run verbatim.
"""

from __future__ import annotations

import pytest

from pokitdok_sandbox.contract_tests.api import expect_status, expect_that
from pokitdok_sandbox.contract_tests.oracle import SLOTS
from pokitdok_sandbox.contract_tests.doc_examples import load_examples, same_shape
from pokitdok_sandbox.contract_tests.report import ContractViolation

EXAMPLES = load_examples()
DOC_SLOT_DELETED = "ab21e95b-8fa6-41d4-98b9-9a1f6fcff0d2"


class Replay:
    """The tenant the examples run in, and the kit's stand-ins for documented records if shared."""

    def __init__(self, target, tenant):
        self.target = target
        self.tenant = tenant
        self.adapted = not tenant.fresh
        self.created_by_example: str | None = None
        self.booking_slot: str | None = None

    def request_for(self, example) -> tuple[str, str, dict | None]:
        method, path, body = example.method, example.path, example.body
        if not self.adapted or not example.changes_state:
            return method, path, body
        prefix = "/api/v4"
        if method == "POST" and path == prefix + SLOTS:
            return method, path, {**body, **self.target.slot_body()}
        if path.startswith(prefix + "/schedule/slots/"):
            stand_in = self.created_by_example or self.target.create_slot(self.tenant)["pd_appointment_uuid"]
            self.created_by_example = None
            return method, f"{prefix}/schedule/slots/{stand_in}", body
        if path.startswith(prefix + "/schedule/appointments/"):
            if self.booking_slot is None:
                self.booking_slot = self.target.create_slot(self.tenant)["pd_appointment_uuid"]
            return method, f"{prefix}/schedule/appointments/{self.booking_slot}", body
        return method, path, body


@pytest.fixture(scope="module")
def replay(target):
    return Replay(target, target.tenant("docs"))


def test_the_documentation_has_twelve_examples():
    assert len(EXAMPLES) == 12, [example.id for example in EXAMPLES]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda example: example.id)
def test_documented_example(example, replay, api, target):
    method, path, body = replay.request_for(example)
    api_path = path.removeprefix("/api/v4")
    template, answer = api.call_path(method, api_path, json=body, tenant=replay.tenant, conform=False)
    created = template == SLOTS and method == "POST"
    payload = _payload(api, answer)
    if created and isinstance(payload, dict) and payload.get("pd_appointment_uuid"):
        target.record_slot(replay.tenant, payload["pd_appointment_uuid"])
        replay.created_by_example = payload["pd_appointment_uuid"]
    rule = f"documented example: {example.title.removeprefix('Example ')}"
    expect_status(api, answer, api.wire.created if created else 200, rule, method, template)
    api.conforms(method, template, answer, params=api.template_for(method, api_path.split("?")[0])[1],
                 body=body)
    if example.documented_response is not None:
        problems = same_shape(payload, example.documented_response)
        expect_that(not problems, api, answer, rule, "the documented shape", method, template,
                    actual="; ".join(problems[:5]) if problems else None)


def _payload(api, answer):
    try:
        return api.wire.payload(answer)
    except ValueError:
        raise ContractViolation("answers are JSON", "a JSON body", answer) from None
