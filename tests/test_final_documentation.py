"""The final documentation (pokitdok/apidocs-v4, `_scheduling.md` before its removal, `_activities.md`,
`_common.md`) as a superset of the seed: `status` and `mark_completed`, searches with a
`business_schedule` token, the patient's `uuid`, the Activities API, the common parameters
`application_data` and `async`; and date-times answered with six fractional digits, as recorded."""

from __future__ import annotations

import re

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc

from .conftest import bearer, get_token
from .helpers import (APPOINTMENTS, PEG, PROVIDER, SLOTS, assert_error, book, create_slot, data_of, get_one,
                      search)

ACTIVITIES = "/api/v4/activities/"
SIX_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


def _complete(client, headers, uuid, value=True):
    return client.put(f"{APPOINTMENTS}{uuid}", headers=headers, json={"mark_completed": value})


# -- status beside booked ----------------------------------------------------------------------

def test_status_follows_a_slot_from_open_to_booked_to_completed(client, auth):
    slot = create_slot(client, auth)
    uuid = slot["pd_appointment_uuid"]
    assert (slot["booked"], slot["status"]) == (False, "open")
    booked = data_of(book(client, auth, uuid, PEG))
    assert (booked["booked"], booked["status"]) == (True, "booked")
    completed = data_of(_complete(client, auth, uuid))
    assert (completed["booked"], completed["status"], completed["patient"]["_uuid"]) == (True, "completed", PEG)
    assert get_one(client, auth, uuid) == completed
    assert data_of(_complete(client, auth, uuid, "true")) == completed  # idempotent; the docs' {string} too


def test_a_completed_appointment_takes_a_description_but_is_never_cancelled_deleted_or_rebooked(client, auth):
    uuid = create_slot(client, auth)["pd_appointment_uuid"]
    data_of(book(client, auth, uuid, PEG))
    completed = data_of(_complete(client, auth, uuid))
    assert "completed" in assert_error(client.delete(f"{APPOINTMENTS}{uuid}", headers=auth), 409,
                                       "pd_appointment_uuid")["message"]
    assert "completed" in assert_error(client.delete(f"{SLOTS}{uuid}", headers=auth), 409,
                                       "pd_appointment_uuid")["message"]
    assert_error(book(client, auth, uuid, doc.QUERY_PATIENT), 409, "patient")
    assert get_one(client, auth, uuid) == completed  # the refusals changed nothing
    noted = data_of(client.put(f"{APPOINTMENTS}{uuid}", headers=auth, json={"description": "seen"}))
    assert (noted["status"], noted["description"]) == ("completed", "seen")


def test_only_a_booked_appointment_can_be_marked_completed(client, auth):
    uuid = create_slot(client, auth)["pd_appointment_uuid"]
    assert "book it first" in assert_error(_complete(client, auth, uuid), 409, "mark_completed")["message"]
    assert_error(_complete(client, auth, uuid, False), 422, "patient")  # false asks for nothing
    assert_error(_complete(client, auth, uuid, "yes"), 422, "mark_completed")
    assert get_one(client, auth, uuid)["status"] == "open"


@pytest.mark.parametrize("sent", ["yes", 1, None, "TRUE", [], {}])
def test_a_mark_completed_of_another_value_is_refused_saying_what_to_send(client, auth, sent):
    uuid = create_slot(client, auth)["pd_appointment_uuid"]
    book(client, auth, uuid, PEG)
    refused = assert_error(_complete(client, auth, uuid, sent), 422, "mark_completed")
    assert 'true (or "true")' in refused["message"], refused["message"]
    assert get_one(client, auth, uuid)["status"] == "booked"


def test_a_patients_search_lists_its_completed_appointments(client, auth):
    uuid = create_slot(client, auth)["pd_appointment_uuid"]
    data_of(book(client, auth, uuid, doc.QUERY_PATIENT))
    data_of(_complete(client, auth, uuid))
    found = {s["pd_appointment_uuid"]: s["status"] for s in search(client, auth, {"patient_uuid": doc.QUERY_PATIENT})}
    assert found[uuid] == "completed"


# -- the patient's uuid beside _uuid, six-digit date-times -------------------------------------

@pytest.mark.parametrize("sent", ["2031-05-05T10:00:00", "2031-05-05T10:00:00.5", "2031-05-05T10:00:00.123456Z"])
def test_every_answered_date_time_has_six_fractional_digits(client, auth, sent):
    created = data_of(client.post(SLOTS, headers=auth, json={
        "pd_provider_uuid": PROVIDER, "location": list(doc.PROVIDER_MAIN_OFFICE), "appointment_type": "AT1",
        "start_date": sent, "end_date": "2031-05-05T11:00:00"}))
    assert created["start_date"] == sent.rstrip("Z").split(".")[0] + "." + (sent.rstrip("Z").split(".") + [""])[1].ljust(6, "0")
    assert created["end_date"] == "2031-05-05T11:00:00.000000"
    every = search(client, auth, {"pd_provider_uuid": PROVIDER}) + search(client, auth, {"patient_uuid": doc.QUERY_PATIENT})
    assert every and all(SIX_DIGITS.match(s["start_date"]) and SIX_DIGITS.match(s["end_date"]) for s in every)


def test_the_patient_inside_an_appointment_has_uuid_beside_uuid(client, auth):
    for found in search(client, auth, {"patient_uuid": doc.QUERY_PATIENT}):
        assert found["patient"]["uuid"] == found["patient"]["_uuid"] == doc.QUERY_PATIENT


# -- business_schedule searches ----------------------------------------------------------------

def test_a_business_schedule_token_searches_its_providers_calendar(client, auth):
    business = bearer(get_token(client, scope="business_schedule"))
    open_slot = create_slot(client, business)["pd_appointment_uuid"]
    booked = create_slot(client, business)["pd_appointment_uuid"]
    data_of(book(client, auth, booked, PEG))
    calendar = {s["pd_appointment_uuid"]: s["status"]
                for s in search(client, business, {"pd_provider_uuid": PROVIDER, "start_date": "2031-01-01T00:00:00"})}
    assert calendar[open_slot] == "open" and calendar[booked] == "booked"
    # A user_schedule token's search by provider is the seed's: open slots only.
    users = {s["pd_appointment_uuid"] for s in search(client, auth, {"pd_provider_uuid": PROVIDER,
                                                                   "start_date": "2031-01-01T00:00:00"})}
    assert open_slot in users and booked not in users
    near = {s["pd_appointment_uuid"] for s in search(client, business, {
        "location": ",".join(map(str, doc.PROVIDER_MAIN_OFFICE)), "start_date": "2031-01-01T00:00:00"})}
    assert {open_slot, booked} <= near


@pytest.mark.parametrize("params", [{}, {"appointment_type": "AT1"}, {"patient_uuid": PEG},
                                    {"patient_uuid": PEG, "pd_provider_uuid": PROVIDER}])
def test_a_business_schedule_search_without_provider_or_location_or_with_a_patient_is_the_scope_403(client, params):
    """As the Python client's cassette recorded `GET /schedule/appointments/` with a token lacking user_schedule."""
    business = bearer(get_token(client, scope="business_schedule"))
    errors = assert_error(client.get(APPOINTMENTS, headers=business, params=params), 403)
    assert errors["scope"] == "'user_schedule' scope required to access this API"
    assert "pd_provider_uuid" in errors["message"]


# -- the catalogue's fields of the final documentation -----------------------------------------

def test_schedulers_and_appointment_types_have_the_final_documentations_fields(client, auth):
    assert all(s["methods_payloads"] == {} for s in data_of(client.get("/api/v4/schedule/schedulers/", headers=auth)))
    kinds = data_of(client.get("/api/v4/schedule/appointmenttypes/", headers=auth))
    assert kinds and all(k["owner_id"] == "sandbox-demo" and k["category_id"] is None for k in kinds)


# -- activities and the common parameters ------------------------------------------------------

def test_every_activity_id_handed_out_reads_back(client, auth):
    narrow = bearer(get_token(client, scope="user_schedule"))
    answers = [client.get("/api/v4/schedule/schedulers/", headers=auth),
               client.post(SLOTS, headers=auth, json={"location": [1, 2]}),  # 422
               client.post(SLOTS, headers=narrow, json={}),  # the scope 403
               client.get(f"{APPOINTMENTS}{doc.BOOKED_SLOT}", headers=auth)]
    for answer in answers:
        activity_id = answer.json()["meta"]["activity_id"]
        activity = data_of(client.get(f"{ACTIVITIES}{activity_id}", headers=auth))
        assert activity["id"] == activity_id
        assert activity["result"]["status"] == answer.status_code
        assert activity["state"]["name"] == ("completed" if answer.status_code == 200 else "failed")
        assert [h["name"] for h in activity["history"]][0] == "init"
        assert all(SIX_DIGITS.match(h["record_dt"]) for h in activity["history"])


def test_activities_are_the_callers_own_and_paged(client, auth):
    other = bearer(get_token(client, ("another-client", "its-secret")))
    mine = client.get("/api/v4/schedule/schedulers/", headers=auth).json()["meta"]["activity_id"]
    assert_error(client.get(f"{ACTIVITIES}{mine}", headers=other), 404, "activity_id")
    for _ in range(3):
        client.get("/api/v4/schedule/schedulers/", headers=auth)
    answer = client.get(ACTIVITIES, headers=auth, params={"limit": 2})
    page = data_of(answer)
    meta = answer.json()["meta"]
    assert len(page) == 2 and meta["count"] >= 4 and meta["next"] is not None
    assert data_of(client.get(ACTIVITIES, headers=auth, params={"parent_id": mine})) == []


def test_a_cancel_transition_is_refused_saying_scheduling_is_real_time(client, auth):
    activity_id = client.get("/api/v4/schedule/schedulers/", headers=auth).json()["meta"]["activity_id"]
    refused = assert_error(client.put(f"{ACTIVITIES}{activity_id}", headers=auth, json={"transition": "cancel"}),
                           409, "transition")
    assert "real-time" in refused["message"]
    assert_error(client.put(f"{ACTIVITIES}{activity_id}", headers=auth, json={"transition": "pause"}), 422,
                 "transition")


@pytest.mark.parametrize("where", ["query", "keyed query", "body"])
def test_application_data_is_accepted_everywhere_and_kept_on_the_activity(client, auth, where):
    kept = {"order": "A-17", "lines": [1, 2]}
    if where == "body":
        body = {"pd_provider_uuid": PROVIDER, "location": list(doc.PROVIDER_MAIN_OFFICE), "appointment_type": "AT1",
                "start_date": "2032-07-07T10:00:00", "end_date": "2032-07-07T10:30:00", "application_data": kept}
        answer = client.post(SLOTS, headers=auth, json=body)
        assert "application_data" not in data_of(answer)
    elif where == "query":
        answer = client.get("/api/v4/schedule/schedulers/", headers=auth,
                            params={"application_data": '{"order": "A-17", "lines": [1, 2]}'})
    else:
        kept = {"order": "A-17"}
        answer = client.get("/api/v4/schedule/schedulers/?application_data%5Border%5D=A-17", headers=auth)
    activity_id = answer.json()["meta"]["activity_id"]
    assert data_of(answer) is not None
    assert data_of(client.get(f"{ACTIVITIES}{activity_id}", headers=auth))["application_data"] == kept


@pytest.mark.parametrize("where", ["query", "body"])
def test_application_data_nested_too_deeply_or_unstorable_is_refused_and_the_activities_stay_readable(
        client, auth, where):
    too_deep = "[" * 900 + "]" * 900
    for sent, named in ((too_deep, "nested"), ('["\\ud800"]', "surrogate"), ("[NaN]", "NaN")):
        if where == "query":
            answer = client.get("/api/v4/schedule/schedulers/", headers=auth, params={"application_data": sent})
        else:
            answer = client.post("/api/v4/schedule/patient/", headers={**auth, "Content-Type": "application/json"},
                                 content='{"application_data": %s}' % sent)
        refused = assert_error(answer, 422, "application_data")
        assert named in refused["message"], refused["message"]
        activity_id = answer.json()["meta"]["activity_id"]
        assert client.get(f"{ACTIVITIES}{activity_id}", headers=auth).status_code == 200
    assert client.get(ACTIVITIES, headers=auth).status_code == 200


def test_async_is_accepted_and_answered_at_once_with_a_note(client, auth):
    asked = client.get("/api/v4/schedule/schedulers/", headers=auth, params={"async": "true"})
    data_of(asked)
    assert "real-time only" in asked.json()["meta"]["message"]
    plain = client.get("/api/v4/schedule/schedulers/", headers=auth, params={"async": "false"})
    assert "message" not in plain.json()["meta"]
    assert_error(client.post(SLOTS, headers=auth, json={"async": "soon"}), 422, "async")
