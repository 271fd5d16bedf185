"""Every curl example of the seed document, replayed against a fresh sandbox (hosts swapped)."""

import pytest

from pokitdok_sandbox.contract_tests.doc_examples import load_examples

from .conftest import bearer, get_token
from .helpers import data_of

EXAMPLES = load_examples()


def test_the_document_has_all_twelve_curl_examples():
    assert len(EXAMPLES) == 12
    assert {e.method for e in EXAMPLES} == {"GET", "POST", "PUT", "DELETE"}


def _same_shape(actual, documented, where="response"):
    """Every documented key is there with a value of the same JSON type, recursively."""
    if isinstance(documented, list):
        assert isinstance(actual, list) and actual, f"{where}: expected a non-empty list, got {actual!r}"
        for item in actual:
            _same_shape(item, documented[0], f"{where}[]")
    elif isinstance(documented, dict):
        assert isinstance(actual, dict), f"{where}: expected an object, got {actual!r}"
        for key, value in documented.items():
            assert key in actual, f"{where}: missing documented field {key!r}"
            _same_shape(actual[key], value, f"{where}.{key}")
    else:
        assert type(actual) is type(documented), f"{where}: {actual!r} is not like {documented!r}"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_documented_example_answers_as_documented(app, example):
    with app.test_client() as client:
        headers = bearer(get_token(client))
        answer = client.request(example.method, example.path, headers=headers, json=example.body)
        payload = data_of(answer)  # 200 and the envelope; the documented Response block is its `data`
        if example.documented_response is not None:
            _same_shape(payload, example.documented_response)


def test_documented_single_record_lookups_return_the_documented_records(client, auth):
    scheduler = client.get("/api/v4/schedule/schedulers/967d207f-b024-41cc-8cac-89575a1f6fef", headers=auth)
    assert data_of(scheduler) == [{"description": "The PokitDok scheduling system",
                                 "scheduler_uuid": "967d207f-b024-41cc-8cac-89575a1f6fef", "name": "PokitDok",
                                 "methods_payloads": {}}]  # the final documentation's field
    kind = client.get("/api/v4/schedule/appointmenttypes/ef987693-0a19-447f-814d-f8f3abbf4860", headers=auth)
    [documented_kind] = data_of(kind)
    assert documented_kind["duration"] == 35
    patient = client.post("/api/v4/schedule/patient/", headers=auth, json={
        "pd_patient_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7",
        "pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8",
        "location": [32.788110, -79.932364]})
    assert data_of(patient) == {"uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7", "email": "peg@emailprovider.com",
                              "phone": "5553331122", "birth_date": "1990-01-13", "first_name": "Peg",
                              "last_name": "Patient", "member_id": "PD20150001"}


def test_documented_slot_creation_answers_the_documented_slot(client, auth):
    created = client.post("/api/v4/schedule/slots/", headers=auth, json={
        "pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8", "location": [32.788110, -79.932364],
        "appointment_type": "AT1", "start_date": "2014-12-16T15:09:34.197709",
        "end_date": "2014-12-16T16:09:34.197717"})
    slot = data_of(created)
    assert slot["booked"] is False and "patient" not in slot
    assert (slot["appointment_type"], slot["start_date"], slot["end_date"]) == (
        "AT1", "2014-12-16T15:09:34.197709", "2014-12-16T16:09:34.197717")
    assert slot["provider_scheduler_uuid"] == "8b21efa4-8535-11e4-a6cb-0800272e8da1"
