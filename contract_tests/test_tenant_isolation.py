"""Tenants: another client sees none of the run's records and can change none of them.

The run works in a fresh tenant when the target registers unknown clients (each client id its
own data set). Then a second fresh client, `contract-<run id>-other`, must find nothing of the
run's: its reads by uuid are 404, its searches (by the kit's provider, by place, by the booking
patient, in the run's window) list none of the run's records, and its writes (book, describe,
cancel, delete) are 404 and change nothing the run's client reads back; and a slot it opens at the
place and times of one of the run's is no overlap (its data set holds none there). Against a shared target
(one that refuses unknown clients) there is no second tenant to ask: the test is skipped.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from pokitdok_sandbox.contract_tests.api import expect_that
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, parse_datetime
from pokitdok_sandbox.contract_tests.report import response_line
from pokitdok_sandbox.contract_tests.target import KitError
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body, patient_of

RULE = "another client's records are invisible and unchangeable"


def test_another_client_can_neither_see_nor_change_the_runs_records(api, target, patients):
    if not target.main.fresh:
        pytest.skip("the target does not register unknown clients, so the run shares one tenant: tenant "
                    "isolation cannot be checked (it needs a second client id the target accepts)")
    ours = Steps(api)
    open_body = target.slot_body()
    open_slot = ours.create_slot(open_body)["pd_appointment_uuid"].lower()
    booked_body = target.slot_body()
    booked_slot = ours.create_slot(booked_body)["pd_appointment_uuid"].lower()
    description = "the run's own booking"
    answer = ours.update(booked_slot, {**patient_body(patients[0]), "description": description})
    expect_that(answer.status_code == 200, api, answer, "book an open slot", "200 (the booked appointment)", "PUT",
                APPOINTMENT)
    try:
        other = target.tenant("other")
    except KitError as exc:
        pytest.skip(f"the target registered the run's client but not a second one: {exc}")
    if not other.fresh:
        pytest.skip("the target did not give the second client a data set of its own")
    theirs = Steps(api, tenant=other)
    who = f"client {other.client_id} (another tenant)"

    for slot in (open_slot, booked_slot):
        seen = theirs.get(slot, conform=False)
        expect_that(seen.status_code == 404, api, seen, RULE, f"404: {slot} is a record of client "
                    f"{target.main.client_id}, unknown to {who}", "GET", APPOINTMENT)

    start = min(parse_datetime(open_body["start_date"]), parse_datetime(booked_body["start_date"]))
    end = max(parse_datetime(open_body["end_date"]), parse_datetime(booked_body["end_date"]))
    window = {"start_date": (start - timedelta(hours=1)).isoformat(), "end_date": (end + timedelta(hours=1)).isoformat()}
    ours_uuids = {open_slot, booked_slot}
    for query in ({"pd_provider_uuid": open_body["pd_provider_uuid"], **window},
                  {"location": [repr(x) for x in open_body["location"]], **window},
                  {"patient_uuid": patients[0], **window}):
        listing = theirs.search(query, conform=False)
        items = answer_json(listing, api, "GET", APPOINTMENTS) if listing.status_code == 200 else []
        leaked = sorted({str(i.get("pd_appointment_uuid", "")).lower() for i in items or [] if isinstance(i, dict)}
                        & ours_uuids)
        expect_that(not leaked, api, listing, RULE, f"none of the run's records ({sorted(ours_uuids)}) in a search "
                    f"by {who}", "GET", APPOINTMENTS, actual=f"listed {leaked}: {response_line(listing)[:300]}")

    attempts = [("PUT", APPOINTMENT, open_slot, patient_body(patients[1]), "book the run's open slot"),
                ("PUT", APPOINTMENT, booked_slot, {"description": "changed by another tenant"},
                 "describe the run's booking"),
                ("DELETE", APPOINTMENT, booked_slot, None, "cancel the run's booking"),
                ("DELETE", SLOT, open_slot, None, "delete the run's open slot")]
    for method, path, slot, body, what in attempts:
        answer = api.call(method, path, params={"pd_appointment_uuid": slot}, json=body, tenant=other, conform=False)
        expect_that(answer.status_code == 404, api, answer, RULE, f"404: {who} tries to {what}, a record it cannot "
                    "know", method, path)

    # its own data set: a slot at the same place and times as the run's is no overlap there
    answer = theirs.create_slot_answer(open_body)
    expect_that(answer.status_code == api.wire.created, api, answer, RULE, f"{api.wire.created}: {who} opens a slot "
                f"at the place and times of the run's {open_slot}, which is not in its data set", "POST", SLOTS)

    record = ours.get_record(open_slot, RULE)
    expect_that(record.get("booked") is False and not record.get("patient"), api, None, RULE,
                f"{open_slot} still open for its own client after another client's attempts", "GET", APPOINTMENT,
                actual=f"booked {record.get('booked')!r}, patient {patient_of(record)}")
    record = ours.get_record(booked_slot, RULE)
    expect_that(record.get("booked") is True and patient_of(record) == patients[0].lower()
                and record.get("description") == description, api, None, RULE,
                f"{booked_slot} still booked by {patients[0]} with description {description!r}", "GET", APPOINTMENT,
                actual=f"booked {record.get('booked')!r}, patient {patient_of(record)}, "
                       f"description {record.get('description')!r}")
