"""Scheduling steps over HTTP for the hand-written tests: each checks the answer against the
contract and the status the contract gives the step, and reports the rule it stands for."""

from __future__ import annotations

from .api import Api, expect_status, expect_that
from .model import patient_id as patient_of
from .oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, TOKEN_PATH
from .report import ContractViolation
from .wire import NotJson


def answer_json(answer, api: Api, method: str, path: str):
    """The payload of an answer (the token endpoint's answer as it is: it has no envelope)."""
    try:
        return answer.json() if path == TOKEN_PATH else api.wire.payload(answer)
    except (ValueError, NotJson):
        raise ContractViolation("answers are JSON", "a JSON body", answer,
                                operation=api.label(method, path)) from None


def patient_body(patient_uuid: str, **extra) -> dict:
    return {"patient": {"_uuid": patient_uuid, "first_name": "Contract", "last_name": "Kit", **extra}}


class Steps:
    def __init__(self, api: Api, tenant=None):
        self.api = api
        self.target = api.target
        self.tenant = tenant or api.target.main

    # -- slots -------------------------------------------------------------------------
    def create_slot(self, body: dict | None = None, rule: str = "create an open slot") -> dict:
        body = body or self.target.slot_body()
        answer = self.api.call("POST", SLOTS, json=body, tenant=self.tenant, conform=False)
        slot = answer_json(answer, self.api, "POST", SLOTS)
        if isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
            self.target.record_slot(self.tenant, slot["pd_appointment_uuid"])
        if answer.status_code in (404, 422):  # the target does not know the kit's provider or type
            option = "--provider-uuid" if answer.status_code == 404 else "--appointment-type"
            raise ContractViolation(rule, f"{self.api.wire.created} (the open slot)", answer, operation=self.api.label("POST", SLOTS),
                                    detail=f"does the target know {body.get('pd_provider_uuid')} / "
                                           f"{body.get('appointment_type')}? Pass one it knows with {option}")
        conformance = None
        try:  # every failing check is reported: the contract's checks (recorded) and the rule's
            self.api.conforms("POST", SLOTS, answer, body=body)
        except ContractViolation as violation:
            conformance = violation
        expect_status(self.api, answer, self.api.wire.created, rule, "POST", SLOTS, "the open slot")
        expect_that(slot.get("booked") is False and not slot.get("patient"), self.api, answer, rule,
                    "an open slot: booked false, no patient", "POST", SLOTS)
        if conformance is not None:
            raise conformance
        return slot

    def create_slot_answer(self, body: dict):
        """POST a slot whatever the outcome (for rules that expect a refusal)."""
        answer = self.api.call("POST", SLOTS, json=body, tenant=self.tenant)
        slot = _maybe_payload(self.api, answer)
        if answer.status_code < 300 and isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
            self.target.record_slot(self.tenant, slot["pd_appointment_uuid"])
        return answer

    def delete_slot(self, slot_uuid: str, **kwargs):
        return self.api.call("DELETE", SLOT, params={"pd_appointment_uuid": slot_uuid}, tenant=self.tenant,
                             **kwargs)

    # -- appointments ------------------------------------------------------------------
    def get(self, slot_uuid: str, **kwargs):
        return self.api.call("GET", APPOINTMENT, params={"pd_appointment_uuid": slot_uuid}, tenant=self.tenant,
                             **kwargs)

    def get_record(self, slot_uuid: str, rule: str) -> dict:
        answer = self.get(slot_uuid)
        expect_status(self.api, answer, 200, rule, "GET", APPOINTMENT)
        records = answer_json(answer, self.api, "GET", APPOINTMENT)
        expect_that(isinstance(records, list) and len(records) == 1 and isinstance(records[0], dict)
                    and str(records[0].get("pd_appointment_uuid", slot_uuid)).lower() == slot_uuid.lower(),
                    self.api, answer, rule, f"a one-element list holding {slot_uuid}", "GET", APPOINTMENT)
        return records[0]

    def update(self, slot_uuid: str, body: dict, **kwargs):
        return self.api.call("PUT", APPOINTMENT, params={"pd_appointment_uuid": slot_uuid}, json=body,
                             tenant=self.tenant, **kwargs)

    def book(self, slot_uuid: str, patient_uuid: str, rule: str = "book an open slot") -> dict:
        answer = self.update(slot_uuid, patient_body(patient_uuid))
        expect_status(self.api, answer, 200, rule, "PUT", APPOINTMENT, "the booked appointment")
        booked = answer_json(answer, self.api, "PUT", APPOINTMENT)
        expect_that(booked.get("booked") is True and patient_of(booked) == patient_uuid.lower(), self.api,
                    answer, rule, f"booked true, patient._uuid {patient_uuid}", "PUT", APPOINTMENT)
        return booked

    def cancel(self, slot_uuid: str, **kwargs):
        return self.api.call("DELETE", APPOINTMENT, params={"pd_appointment_uuid": slot_uuid}, tenant=self.tenant,
                             **kwargs)

    def search(self, query: dict, **kwargs):
        return self.api.call("GET", APPOINTMENTS, query=query, tenant=self.tenant, **kwargs)


def _maybe_payload(api: Api, answer):
    try:
        return api.wire.payload(answer)
    except ValueError:
        return None
