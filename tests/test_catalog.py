"""Schedulers and appointment types: list, get by uuid, and the error shape of refusals."""

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc

from .conftest import DEMO
from .helpers import APPOINTMENT_TYPES, SCHEDULERS, UNKNOWN_UUID, assert_error, data_of


def test_schedulers_list_holds_the_documented_schedulers(client, auth):
    listed = {s["scheduler_uuid"]: s for s in data_of(client.get(SCHEDULERS, headers=auth))}
    for scheduler in doc.SCHEDULERS:
        # The seed's fields as documented, and the final documentation's `methods_payloads` (none here).
        assert listed[scheduler["scheduler_uuid"]] == {**scheduler, "methods_payloads": {}}


def test_every_listed_scheduler_can_be_fetched_as_a_one_element_list(client, auth):
    for scheduler in data_of(client.get(SCHEDULERS, headers=auth)):
        assert data_of(client.get(f"{SCHEDULERS}{scheduler['scheduler_uuid']}", headers=auth)) == [scheduler]


def test_scheduler_uuid_lookup_ignores_case(client, auth):
    found = data_of(client.get(f"{SCHEDULERS}{doc.POKITDOK.upper()}", headers=auth))
    assert [s["scheduler_uuid"] for s in found] == [doc.POKITDOK]


def test_appointment_types_list_holds_the_documented_codes(client, auth):
    kinds = data_of(client.get(APPOINTMENT_TYPES, headers=auth))
    codes = {k["type"] for k in kinds}
    assert {"OV1", "PC1", "AT1", "SS1"} <= codes
    uuids = [k["appointment_type_uuid"] for k in kinds]
    assert len(uuids) == len(set(uuids)), "appointment type uuids must be unique"
    scheduler_uuids = {s["scheduler_uuid"] for s in data_of(client.get(SCHEDULERS, headers=auth))}
    for kind in kinds:
        assert kind["scheduler_uuid"] in scheduler_uuids, f"{kind} refers to an unknown scheduler"
        assert isinstance(kind["duration"], int) and kind["duration"] >= 1


def test_every_listed_appointment_type_can_be_fetched(client, auth):
    for kind in data_of(client.get(APPOINTMENT_TYPES, headers=auth)):
        assert data_of(client.get(f"{APPOINTMENT_TYPES}{kind['appointment_type_uuid']}", headers=auth)) == [kind]


def test_documented_appointment_type_by_uuid(client, auth):
    documented = next(t for t in doc.APPOINTMENT_TYPES
                      if t["appointment_type_uuid"] == "ef987693-0a19-447f-814d-f8f3abbf4860")
    answer = client.get(f"{APPOINTMENT_TYPES}{documented['appointment_type_uuid']}", headers=auth)
    # The documented record, with the final documentation's `category_id` (none) and `owner_id` (the caller).
    assert data_of(answer) == [{**documented, "category_id": None, "owner_id": DEMO[0]}]


@pytest.mark.parametrize("collection, field", [(SCHEDULERS, "scheduler_uuid"),
                                               (APPOINTMENT_TYPES, "appointment_type_uuid")])
def test_unknown_uuid_is_404_naming_the_field(client, auth, collection, field):
    assert_error(client.get(f"{collection}{UNKNOWN_UUID}", headers=auth), 404, field)


@pytest.mark.parametrize("collection, field", [(SCHEDULERS, "scheduler_uuid"),
                                               (APPOINTMENT_TYPES, "appointment_type_uuid")])
@pytest.mark.parametrize("bad", ["not-a-uuid", "967d207f-b024-41cc-8cac-89575a1f6fe", "967d207f_b024_41cc_8cac_89575a1f6fef",
                                 "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"])
def test_malformed_uuid_is_422_naming_the_field(client, auth, collection, field, bad):
    errors = assert_error(client.get(f"{collection}{bad}", headers=auth), 422, field)
    assert list(errors["validation"]) == [field]


@pytest.mark.parametrize("path", [SCHEDULERS, APPOINTMENT_TYPES, f"{SCHEDULERS}{doc.POKITDOK}"])
def test_catalog_needs_a_token(client, path):
    answer = client.get(path)
    assert_error(answer, 401, "token_missing")
    assert answer.headers.get("www-authenticate", "").lower().startswith("bearer")


def test_catalog_refuses_unknown_query_parameters(client, auth):
    assert_error(client.get(SCHEDULERS, headers=auth, params={"name": "PokitDok"}), 422, "name")


def test_unknown_path_and_wrong_method_use_the_error_shape(client, auth):
    errors = assert_error(client.get("/api/v4/schedule/nothing-here", headers=auth), 404)
    assert errors["message"].startswith("no such path: /api/v4/schedule/nothing-here")
    refused = client.delete(SCHEDULERS, headers=auth)
    assert_error(refused, 405)
    assert refused.headers["allow"] == "GET"
