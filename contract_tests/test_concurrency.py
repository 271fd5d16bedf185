"""Concurrent writes: a few requests sent at once, and the state they must leave.

A correct server applies the writes to one slot one after the other, in some order. The kit
does not care which order; it checks that the answers are ones some order could give and that
the state read back afterwards agrees with every acknowledged answer:

* concurrent bookings of one open slot by two patients: one patient wins (all of that patient's
  requests 200, rebooking being idempotent), every request of the other is 409, and the slot
  reads back booked by the winner;
* a booking and a description update of one slot, or a cancel and a description update, sent
  together: both 200, and the slot reads back with both (neither write lost);
* concurrent cancels of one booking: exactly one 200, the others 409;
* a slot deleted while it is being booked: either the delete wins (the booking 404, the slot
  gone) or the booking does (the delete 409, the slot booked), never both 200;
* concurrent creations of pairwise overlapping slots: exactly one 200, and exactly that one listed;
* concurrent writes to different slots (creations, then bookings by one patient): all 200, all kept.

Nothing is timed. A failure is reported as a shell script that sends the same requests at once.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

import pytest

from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, parse_datetime
from pokitdok_sandbox.contract_tests.api import expect_status, expect_that
from pokitdok_sandbox.contract_tests.report import ContractViolation, response_line
from pokitdok_sandbox.contract_tests.stateful import Script
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body, patient_of

# Bursts per scenario: each is a fresh slot, so a race the first burst misses may show in another.
ROUNDS = 2


@dataclass
class Call:
    note: str
    method: str
    path: str  # the contract's template
    slot: str | None = None
    body: dict | None = None

    @property
    def url_path(self) -> str:
        return self.path.format(pd_appointment_uuid=self.slot) if self.slot else self.path


class Burst:
    """Requests sent at once (threads released together), the steps before them, and the script
    that replays both (stateful.Script: the run's client id, the secret as a variable, the slots
    opened held in shell variables; the concurrent requests end in `&`, then `wait`)."""

    def __init__(self, steps: Steps):
        self.steps = steps
        self.api = steps.api
        self.target = steps.target
        self.script = Script(steps.api.run)

    def open_slot(self, minutes: int = 30) -> str:
        body = self.target.slot_body(minutes=minutes)
        answer = self.steps.create_slot_answer(body)
        self.script.add("open a slot", "POST", SLOTS, None, body, answer, opens=True)
        expect_status(self.api, answer, self.api.wire.created, "create an open slot", "POST", SLOTS, "the open slot")
        slot = answer_json(answer, self.api, "POST", SLOTS)
        expect_that(isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str), self.api, answer,
                    "create an open slot", "the open slot, with its pd_appointment_uuid", "POST", SLOTS)
        return slot["pd_appointment_uuid"].lower()

    def book(self, slot: str, patient: str) -> None:
        answer = self.steps.update(slot, patient_body(patient))
        self.script.add(f"book it for {patient}", "PUT", APPOINTMENT.format(pd_appointment_uuid=slot), None,
                        patient_body(patient), answer)
        expect_status(self.api, answer, 200, "book an open slot", "PUT", APPOINTMENT, "the booked appointment")

    def send(self, calls: list[Call]) -> list:
        self.target.token(self.steps.tenant)  # one token for all, fetched before the threads start
        barrier = threading.Barrier(len(calls))

        def one(call: Call):
            barrier.wait()
            return self.target.request(call.method, call.url_path, tenant=self.steps.tenant, json=call.body)

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            answers = list(pool.map(one, calls))
        for call, answer in zip(calls, answers):
            self.script.add(f"{call.note} (at once with the others up to `wait`)", call.method, call.url_path, None,
                            call.body, answer)
            note, line, *rest = self.script.steps[-1].split("\n")
            self.script.steps[-1] = "\n".join([note, line + " &", *rest])
        self.script.steps.append("wait")
        for call, answer in zip(calls, answers):  # each answer still honours the contract on its own
            self.api.conforms(call.method, call.path, answer,
                              params={"pd_appointment_uuid": call.slot} if call.slot else None, body=call.body)
        return answers

    def read(self, slot: str):
        answer = self.steps.get(slot, conform=False)
        self.script.add("read it back", "GET", APPOINTMENT.format(pd_appointment_uuid=slot), None, None, answer)
        records = answer_json(answer, self.api, "GET", APPOINTMENT) if answer.status_code == 200 else None
        record = records[0] if isinstance(records, list) and len(records) == 1 and isinstance(records[0], dict) \
            else None
        return answer, record

    def search(self, note: str, query: dict):
        answer = self.steps.search(query, conform=False)
        self.script.add(note, "GET", APPOINTMENTS, query, None, answer)
        items = answer_json(answer, self.api, "GET", APPOINTMENTS) if answer.status_code == 200 else None
        return answer, {str(i.get("pd_appointment_uuid", "")).lower() for i in items or [] if isinstance(i, dict)}

    def fail(self, check: str, expected: str, actual: str, operation: str):
        script = self.script.render(check).split("\n")
        script[1] = ("# Concurrent requests: the lines ending in & are sent at once; a correct server gives an "
                     f"outcome some order of them gives. Fails: {check}")
        raise ContractViolation(f"concurrency: {check}", expected, None, operation=operation, actual=actual,
                                curl="\n".join(script), rule=check)


def _slots_created(steps, answers) -> list[str]:
    """The uuids (lower case) of the slots the creations answered 200 made, each noted for clean-up."""
    made = []
    for answer in answers:
        slot = answer_json(answer, steps.api, "POST", SLOTS) if answer.status_code == 200 else None
        if isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
            steps.target.record_slot(steps.tenant, slot["pd_appointment_uuid"])
            made.append(slot["pd_appointment_uuid"].lower())
    return made


def _statuses(calls, answers) -> str:
    return "; ".join(f"{c.note}: {a.status_code}" for c, a in zip(calls, answers))


@pytest.fixture
def steps(api) -> Steps:
    return Steps(api)


def test_concurrent_bookings_by_two_patients_have_one_winner(steps, patients):
    for _round in range(ROUNDS):
        burst = Burst(steps)
        slot = burst.open_slot()
        calls = [Call(f"book for patient {patients[n % 2]}", "PUT", APPOINTMENT, slot, patient_body(patients[n % 2]))
                 for n in range(6)]
        answers = burst.send(calls)
        operation = f"PUT {APPOINTMENT}"
        won = {patient_of(answer_json(a, steps.api, "PUT", APPOINTMENT)) for a in answers if a.status_code == 200}
        winner = next(iter(won)) if len(won) == 1 else None
        expected = ("one patient wins: every request of that patient 200 (rebooking is idempotent), every request "
                    "of the other patient 409")
        right = winner is not None and all(
            a.status_code == (200 if c.body["patient"]["_uuid"].lower() == winner else 409)
            for c, a in zip(calls, answers))
        if not right:
            burst.fail("one booking wins", expected, f"{_statuses(calls, answers)}; 200 answers name {sorted(won)}",
                       operation)
        answer, record = burst.read(slot)
        if answer.status_code != 200 or record is None or record.get("booked") is not True \
                or patient_of(record) != winner:
            burst.fail("the winner's booking is the one kept", f"the slot reads back booked by {winner}",
                       f"{response_line(answer)[:300]}", operation)


def test_a_booking_and_a_description_sent_together_both_stay(steps, patients):
    burst = Burst(steps)
    slots = [burst.open_slot() for _ in range(ROUNDS + 1)]
    texts = {slot: f"concurrent {n} {steps.target.unknown_uuid()[:6]}" for n, slot in enumerate(slots)}
    calls = []
    for slot in slots:
        calls += [Call(f"book {slot[:8]} for {patients[0]}", "PUT", APPOINTMENT, slot, patient_body(patients[0])),
                  Call(f"describe {slot[:8]}", "PUT", APPOINTMENT, slot, {"description": texts[slot]})]
    answers = burst.send(calls)
    operation = f"PUT {APPOINTMENT}"
    if any(a.status_code != 200 for a in answers):
        burst.fail("writes to different fields both succeed", "200 for the booking and for the description update "
                   "(a description can be set on a slot, booked or not)", _statuses(calls, answers), operation)
    for slot in slots:
        answer, record = burst.read(slot)
        if record is None or record.get("booked") is not True or patient_of(record) != patients[0].lower() \
                or record.get("description") != texts[slot]:
            burst.fail("no acknowledged write is lost", f"{slot} reads back booked by {patients[0]} with description "
                       f"{texts[slot]!r} (both writes were answered 200)", response_line(answer)[:400], operation)


def test_a_cancel_and_a_description_sent_together_both_stay(steps, patients):
    burst = Burst(steps)
    slots = [burst.open_slot() for _ in range(ROUNDS + 1)]
    for slot in slots:
        burst.book(slot, patients[1])
    texts = {slot: f"after cancel {n} {steps.target.unknown_uuid()[:6]}" for n, slot in enumerate(slots)}
    calls = []
    for slot in slots:
        calls += [Call(f"cancel {slot[:8]}", "DELETE", APPOINTMENT, slot),
                  Call(f"describe {slot[:8]}", "PUT", APPOINTMENT, slot, {"description": texts[slot]})]
    answers = burst.send(calls)
    if any(a.status_code != 200 for a in answers):
        burst.fail("writes to different fields both succeed", "200 for the cancel and for the description update",
                   _statuses(calls, answers), f"DELETE {APPOINTMENT}")
    for slot in slots:
        answer, record = burst.read(slot)
        if record is None or record.get("booked") is not False or record.get("patient") not in (None, {}) \
                or record.get("description") != texts[slot]:
            burst.fail("no acknowledged write is lost", f"{slot} reads back open (cancelled, no patient) with "
                       f"description {texts[slot]!r} (both writes were answered 200)", response_line(answer)[:400],
                       f"DELETE {APPOINTMENT}")


def test_concurrent_cancels_of_one_booking_have_one_winner(steps, patients):
    for _round in range(ROUNDS):
        burst = Burst(steps)
        slot = burst.open_slot()
        burst.book(slot, patients[0])
        calls = [Call(f"cancel (request {n + 1})", "DELETE", APPOINTMENT, slot) for n in range(4)]
        answers = burst.send(calls)
        statuses = sorted(a.status_code for a in answers)
        if statuses != [200, 409, 409, 409]:
            burst.fail("one cancel wins", "exactly one 200; the others 409 (the slot is open by then)",
                       _statuses(calls, answers), f"DELETE {APPOINTMENT}")
        answer, record = burst.read(slot)
        if record is None or record.get("booked") is not False:
            burst.fail("the cancel is kept", "the slot reads back open", response_line(answer)[:300],
                       f"DELETE {APPOINTMENT}")


def test_a_slot_deleted_while_it_is_booked_is_one_or_the_other(steps, patients):
    for _round in range(ROUNDS):
        burst = Burst(steps)
        slot = burst.open_slot()
        calls = [Call("delete the slot", "DELETE", SLOT, slot),
                 Call(f"book it for {patients[0]}", "PUT", APPOINTMENT, slot, patient_body(patients[0]))]
        deleted, booked = burst.send(calls)
        outcome = (deleted.status_code, booked.status_code)
        expected = "either the delete wins (delete 200, booking 404) or the booking does (booking 200, delete 409)"
        if outcome not in ((200, 404), (409, 200)):
            burst.fail("a delete and a booking: one wins", expected, _statuses(calls, [deleted, booked]), f"DELETE {SLOT}")
        answer, record = burst.read(slot)
        if outcome == (200, 404):
            if answer.status_code != 404:
                burst.fail("the winner's write is kept", "the slot is gone (404): its delete was answered 200",
                           response_line(answer)[:300], f"DELETE {SLOT}")
            steps.target.main.created_slots.pop(slot.lower(), None)
        elif record is None or record.get("booked") is not True or patient_of(record) != patients[0].lower():
            burst.fail("the winner's write is kept", f"the slot reads back booked by {patients[0]}: the booking was "
                       "answered 200 and the delete refused", response_line(answer)[:300], f"PUT {APPOINTMENT}")


def test_concurrent_overlapping_creations_have_one_winner(steps):
    for _round in range(ROUNDS):
        burst = Burst(steps)
        first = steps.target.slot_body(minutes=30)
        start = parse_datetime(first["start_date"])
        # 30-minute slots starting 0, 5, 10 and 15 minutes apart: every two of them overlap
        bodies = [{**first, "start_date": (start + timedelta(minutes=5 * n)).isoformat(),
                   "end_date": (start + timedelta(minutes=5 * n + 30)).isoformat()} for n in range(4)]
        calls = [Call(f"open a slot at +{5 * n} min", "POST", SLOTS, body=body) for n, body in enumerate(bodies)]
        answers = burst.send(calls)
        made = _slots_created(steps, answers)
        statuses = sorted(a.status_code for a in answers)
        if statuses != [200, 409, 409, 409]:
            burst.fail("one of overlapping slots is created", "exactly one 200; the others 409 (each overlaps it)",
                       _statuses(calls, answers), f"POST {SLOTS}")
        query = {"pd_provider_uuid": first["pd_provider_uuid"],
                 "start_date": (start - timedelta(hours=1)).isoformat(),
                 "end_date": (start + timedelta(hours=2)).isoformat()}
        _listing, listed = burst.search("list the provider's open slots there", query)
        listed = sorted(listed)
        made = sorted(made)
        if listed != made:
            burst.fail("what was created is what is listed", f"the provider's open slots there are exactly the one "
                       f"created: {made}", f"listed: {listed}", f"POST {SLOTS}")


def test_concurrent_writes_to_different_slots_are_all_kept(steps, patients):
    """Writes to different records never conflict: each is answered 200 and each stays (a server
    keeping a provider's calendar or a patient's bookings as one document, read then written back
    whole, loses all but one)."""
    burst = Burst(steps)
    bodies = [steps.target.slot_body(minutes=30) for _ in range(4)]  # the kit's clock: never overlapping
    calls = [Call(f"open a slot at {body['start_date']}", "POST", SLOTS, body=body) for body in bodies]
    answers = burst.send(calls)
    made = _slots_created(steps, answers)
    if any(a.status_code != 200 for a in answers) or len(made) != len(calls):
        burst.fail("writes to different slots all succeed", "200 for every slot (none overlaps another)",
                   _statuses(calls, answers), f"POST {SLOTS}")
    window = {"start_date": min(b["start_date"] for b in bodies), "end_date": max(b["end_date"] for b in bodies)}
    _listing, listed = burst.search("list the provider's open slots there",
                                    {"pd_provider_uuid": bodies[0]["pd_provider_uuid"], **window})
    if not set(made) <= listed:
        burst.fail("no acknowledged write is lost", f"every slot created is listed by its provider: {sorted(made)}",
                   f"missing: {sorted(set(made) - listed)}", f"POST {SLOTS}")

    calls = [Call(f"book {slot[:8]} for {patients[0]}", "PUT", APPOINTMENT, slot, patient_body(patients[0]))
             for slot in made]
    answers = burst.send(calls)
    if any(a.status_code != 200 for a in answers):
        burst.fail("writes to different slots all succeed", "200 for every booking (each slot was open)",
                   _statuses(calls, answers), f"PUT {APPOINTMENT}")
    _listing, listed = burst.search("list the patient's bookings there", {"patient_uuid": patients[0], **window})
    if set(made) != listed:
        burst.fail("no acknowledged write is lost", f"the patient's bookings there are exactly the slots booked: "
                   f"{sorted(made)}", f"listed: {sorted(listed)}", f"PUT {APPOINTMENT}")
