"""POST /schedule/patient/: register an existing PokitDok user with a provider."""

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.fixtures import generate_dataset

from .helpers import PATIENT, PEG, PROVIDER, UNKNOWN_UUID, assert_error, data_of

PEG_RECORD = next(p for p in doc.PATIENTS if p["uuid"] == PEG)


def _register(client, headers, **body):
    return client.post(PATIENT, headers=headers, json=body)


def test_registration_answers_the_patient_record(client, auth):
    record = data_of(_register(client, auth, pd_patient_uuid=PEG, pd_provider_uuid=PROVIDER,
                               location=[32.78811, -79.932364]))
    assert record == PEG_RECORD
    assert "_uuid" not in record


def test_registration_without_location(client, auth):
    assert data_of(_register(client, auth, pd_patient_uuid=PEG, pd_provider_uuid=PROVIDER)) == PEG_RECORD


def test_registration_is_idempotent(client, auth):
    first = data_of(_register(client, auth, pd_patient_uuid=PEG, pd_provider_uuid=PROVIDER))
    second = data_of(_register(client, auth, pd_patient_uuid=PEG.upper(), pd_provider_uuid=PROVIDER.upper()))
    assert first == second == PEG_RECORD


def test_a_generated_patient_with_a_generated_provider(client, auth):
    data = generate_dataset()
    patient, provider = data["patients"][-1], data["providers"][-1]
    answer = _register(client, auth, pd_patient_uuid=patient["uuid"], pd_provider_uuid=provider["pd_provider_uuid"])
    assert data_of(answer) == patient


def test_unknown_patient_is_404(client, auth):
    assert_error(_register(client, auth, pd_patient_uuid=UNKNOWN_UUID, pd_provider_uuid=PROVIDER), 404,
                 "pd_patient_uuid")


def test_unknown_provider_is_404(client, auth):
    assert_error(_register(client, auth, pd_patient_uuid=PEG, pd_provider_uuid=UNKNOWN_UUID), 404,
                 "pd_provider_uuid")


def test_a_provider_uuid_is_not_a_patient_uuid(client, auth):
    assert_error(_register(client, auth, pd_patient_uuid=PROVIDER, pd_provider_uuid=PROVIDER), 404,
                 "pd_patient_uuid")


@pytest.mark.parametrize("body, field", [
    ({"pd_provider_uuid": PROVIDER}, "pd_patient_uuid"),
    ({"pd_patient_uuid": PEG}, "pd_provider_uuid"),
    ({"pd_patient_uuid": "peg", "pd_provider_uuid": PROVIDER}, "pd_patient_uuid"),
    ({"pd_patient_uuid": PEG + "\n", "pd_provider_uuid": PROVIDER}, "pd_patient_uuid"),
    ({"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER + "\n"}, "pd_provider_uuid"),
    ({"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER, "location": [91, 0]}, "location"),
    ({"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER, "location": [0]}, "location"),
    ({"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER, "nickname": "Peggy"}, "nickname"),
])
def test_malformed_registration_is_422(client, auth, body, field):
    errors = assert_error(client.post(PATIENT, headers=auth, json=body), 422, field)
    assert field in errors["validation"]


def test_registration_takes_json_only(client, auth):
    answer = client.post(PATIENT, headers=auth, data={"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER})
    assert "application/json" in assert_error(answer, 415, "Content-Type")["message"]
