"""openapi.yaml, the contract: valid OpenAPI, complete, and honest about errors and links."""

from pathlib import Path

import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
SPEC, _ = read_from_filename(str(SPEC_PATH))


def _operations():
    for path, item in SPEC["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


OPERATIONS = list(_operations())


def _ids(operations):
    return [f"{method.upper()} {path}" for path, method, _ in operations]


def _security(operation):
    return operation.get("security", SPEC.get("security", []))


def _scopes(operation):
    return [scope for requirement in _security(operation) for scopes in requirement.values() for scope in scopes]


def test_the_contract_is_valid_openapi():
    validate(SPEC)


def test_it_has_the_eleven_scheduling_operations_and_the_token_endpoint():
    scheduling = {(method, path) for path, method, _ in OPERATIONS if path.startswith("/schedule/")}
    assert scheduling == {
        ("get", "/schedule/schedulers/"), ("get", "/schedule/schedulers/{scheduler_uuid}"),
        ("get", "/schedule/appointmenttypes/"), ("get", "/schedule/appointmenttypes/{appointment_type_uuid}"),
        ("post", "/schedule/patient/"), ("post", "/schedule/slots/"),
        ("delete", "/schedule/slots/{pd_appointment_uuid}"), ("get", "/schedule/appointments/"),
        ("get", "/schedule/appointments/{pd_appointment_uuid}"),
        ("put", "/schedule/appointments/{pd_appointment_uuid}"),
        ("delete", "/schedule/appointments/{pd_appointment_uuid}"),
    }
    assert "post" in SPEC["paths"]["/oauth2/token"]
    assert SPEC["servers"][0]["url"] == "/api/v4"


def test_operation_ids_are_unique():
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path, method, operation",
                         [o for o in OPERATIONS if "requestBody" in o[2]],
                         ids=_ids([o for o in OPERATIONS if "requestBody" in o[2]]))
def test_operations_with_a_body_declare_400_and_415(path, method, operation):
    assert {"400", "415"} <= set(map(str, operation["responses"]))


@pytest.mark.parametrize("path, method, operation", [o for o in OPERATIONS if _security(o[2])],
                         ids=_ids([o for o in OPERATIONS if _security(o[2])]))
def test_secured_operations_declare_401(path, method, operation):
    assert "401" in map(str, operation["responses"])


@pytest.mark.parametrize("path, method, operation", [o for o in OPERATIONS if _scopes(o[2])],
                         ids=_ids([o for o in OPERATIONS if _scopes(o[2])]))
def test_operations_with_scopes_declare_403(path, method, operation):
    assert "403" in map(str, operation["responses"])


def test_scopes_follow_the_design():
    by_id = {(method, path): _scopes(operation) for path, method, operation in OPERATIONS}
    assert by_id[("post", "/schedule/slots/")] == ["business_schedule"]
    assert by_id[("delete", "/schedule/slots/{pd_appointment_uuid}")] == ["business_schedule"]
    for key in [("post", "/schedule/patient/"), ("get", "/schedule/appointments/"),
                ("get", "/schedule/appointments/{pd_appointment_uuid}"),
                ("put", "/schedule/appointments/{pd_appointment_uuid}"),
                ("delete", "/schedule/appointments/{pd_appointment_uuid}")]:
        assert by_id[key] == ["user_schedule"], key
    for key in [("get", "/schedule/schedulers/"), ("get", "/schedule/appointmenttypes/")]:
        assert by_id[key] == [], key
    declared = set(SPEC["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]["scopes"])
    assert {s for scopes in by_id.values() for s in scopes} <= declared


def test_token_endpoint_is_unsecured_and_takes_a_form():
    operation = SPEC["paths"]["/oauth2/token"]["post"]
    assert operation["security"] == []
    assert list(operation["requestBody"]["content"]) == ["application/x-www-form-urlencoded"]


def test_every_error_response_is_the_error_schema():
    responses = SPEC["components"]["responses"]
    for path, method, operation in OPERATIONS:
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            if "$ref" in response:
                response = responses[response["$ref"].rsplit("/", 1)[-1]]
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


def test_slot_creation_links_to_get_book_cancel_and_delete():
    operation = SPEC["paths"]["/schedule/slots/"]["post"]
    links = operation["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    by_path = {(method, path): op["operationId"] for path, method, op in OPERATIONS}
    assert targets == {
        by_path[("get", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("put", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("delete", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("delete", "/schedule/slots/{pd_appointment_uuid}")],
    }
    for link in links.values():
        assert link["parameters"] == {"pd_appointment_uuid": "$response.body#/pd_appointment_uuid"}


def test_every_link_targets_an_existing_operation():
    ids = {operation["operationId"] for _, _, operation in OPERATIONS}
    for path, method, operation in OPERATIONS:
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in ids, f"{method} {path}"


def test_the_served_contract_is_this_file(client):
    answer = client.get("/api/v4/openapi.json")
    assert answer.status_code == 200
    served = answer.json()
    assert {(m, p) for p, item in served["paths"].items() for m in item if m in METHODS} == {
        (m, p) for p, m, _ in OPERATIONS}
