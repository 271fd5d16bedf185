"""openapi.yaml, the contract: valid OpenAPI, complete, and honest about errors and links."""

import re
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
TOKEN_PATH = "/oauth2/token"
# Every operation answering in the platform's envelope: all but the token endpoint.
ENVELOPED = [o for o in OPERATIONS if o[0] != TOKEN_PATH]
# The documented collections and searches, which page.
COLLECTIONS = [o for o in OPERATIONS if o[0] in ("/schedule/schedulers/", "/schedule/appointmenttypes/",
                                                  "/schedule/appointments/", "/activities/") and o[1] == "get"]


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


def test_operation_ids_are_plain_names_each_with_a_handler():
    """The contract names no code: its operationIds are plain names, mapped to handlers by the sandbox."""
    from pokitdok_sandbox.api.handlers import HANDLERS

    ids = {operation["operationId"] for _, _, operation in OPERATIONS}
    assert all(re.fullmatch(r"[a-z_]+", operation_id) for operation_id in ids), sorted(ids)
    assert set(HANDLERS) == ids
    schemes = SPEC["components"]["securitySchemes"].values()
    assert not any(key.startswith("x-") for scheme in schemes for key in scheme)


@pytest.mark.parametrize("path, method, operation",
                         [o for o in ENVELOPED if "requestBody" in o[2]],
                         ids=_ids([o for o in ENVELOPED if "requestBody" in o[2]]))
def test_operations_with_a_json_body_declare_413_415_and_422(path, method, operation):
    assert {"413", "415", "422"} <= set(map(str, operation["responses"]))


@pytest.mark.parametrize("path, method, operation", ENVELOPED, ids=_ids(ENVELOPED))
def test_no_operation_under_the_api_declares_a_400_and_every_one_a_422(path, method, operation):
    # The official Node client takes a 400 without `meta` for an expired token (docs/wire-format.md).
    statuses = set(map(str, operation["responses"]))
    assert "400" not in statuses
    assert "422" in statuses


def test_the_token_endpoint_declares_rfc_6749_errors():
    responses = SPEC["paths"][TOKEN_PATH]["post"]["responses"]
    assert {"200", "400", "401"} <= set(map(str, responses))
    assert "415" not in map(str, responses)  # a wrong Content-Type is 400 invalid_request there
    token = SPEC["components"]["schemas"]["Token"]
    assert {"access_token", "token_type", "expires", "expires_in", "scope"} <= set(token["required"])


@pytest.mark.parametrize("path, method, operation", ENVELOPED, ids=_ids(ENVELOPED))
def test_every_success_is_a_200_in_the_envelope(path, method, operation):
    successes = {str(status): response for status, response in operation["responses"].items() if int(status) < 400}
    # The catalogue lists may also answer 304 to If-None-Match (no body: nothing to wrap).
    cached = ["304"] if path in ("/schedule/schedulers/", "/schedule/appointmenttypes/") else []
    assert sorted(successes) == ["200", *cached], f"{method} {path}"
    assert all("content" not in successes[status] for status in cached)
    schema = successes["200"]["content"]["application/json"]["schema"]
    assert schema["type"] == "object" and schema["required"] == ["meta", "data"]
    expected_meta = "PageMeta" if (path, method, operation) in COLLECTIONS else "Meta"
    assert schema["properties"]["meta"] == {"$ref": f"#/components/schemas/{expected_meta}"}


@pytest.mark.parametrize("path, method, operation", COLLECTIONS, ids=_ids(COLLECTIONS))
def test_collections_and_searches_take_limit_and_offset(path, method, operation):
    assert {"$ref": "#/components/parameters/Limit"} in operation["parameters"]
    assert {"$ref": "#/components/parameters/Offset"} in operation["parameters"]
    parameters = SPEC["components"]["parameters"]
    assert (parameters["Limit"]["schema"]["default"], parameters["Limit"]["schema"]["maximum"]) == (100, 1000)
    assert parameters["Offset"]["schema"]["minimum"] == 0


@pytest.mark.parametrize("path, method, operation", [o for o in OPERATIONS if _security(o[2])],
                         ids=_ids([o for o in OPERATIONS if _security(o[2])]))
def test_secured_operations_declare_401(path, method, operation):
    assert "401" in map(str, operation["responses"])


@pytest.mark.parametrize("path, method, operation", [o for o in OPERATIONS if _scopes(o[2])],
                         ids=_ids([o for o in OPERATIONS if _scopes(o[2])]))
def test_operations_with_scopes_declare_403(path, method, operation):
    assert "403" in map(str, operation["responses"])


def test_operations_counted_by_rate_limits_declare_403():
    # Rate limits count every documented operation (sandbox/extras/rate_limits.py), scoped or not.
    documented = [o for o in OPERATIONS if o[0].startswith("/schedule/")]
    assert [f"{method.upper()} {path}" for path, method, operation in documented
            if "403" not in map(str, operation["responses"])] == []


def test_every_api_operation_declares_the_guards_refusals():
    # The request guard answers 414 (query string too long) before any operation is chosen.
    assert [f"{method.upper()} {path}" for path, method, operation in OPERATIONS
            if path != "/oauth2/token" and "414" not in map(str, operation["responses"])] == []


def test_scopes_are_as_decided():
    by_id = {(method, path): _scopes(operation) for path, method, operation in OPERATIONS}
    assert by_id[("post", "/schedule/slots/")] == ["business_schedule"]
    assert by_id[("delete", "/schedule/slots/{pd_appointment_uuid}")] == ["business_schedule"]
    # The search: user_schedule, or business_schedule alone (the final documentation's provider-side search).
    assert [list(r.values()) for r in _security(SPEC["paths"]["/schedule/appointments/"]["get"])] == \
        [[["user_schedule"]], [["business_schedule"]]]
    for key in [("post", "/schedule/patient/"),
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
    # URL-encoded, or multipart as the official PHP client sends it (curl given an array).
    assert list(operation["requestBody"]["content"]) == ["application/x-www-form-urlencoded", "multipart/form-data"]


def _error_schema(path: str, status: int) -> dict:
    """The error schema the wire format gives this status on this path (docs/wire-format.md): a 403 is
    the scope refusal in the envelope or a bare rate-limit or admin-token refusal."""
    def ref(name):
        return {"$ref": f"#/components/schemas/{name}"}
    if path == TOKEN_PATH and status in (400, 401):
        return ref("OAuthError")
    if status == 401:
        return ref("BareError")
    if status == 403:
        return {"oneOf": [ref("ErrorDocument"), ref("BareError")]}
    return ref("ErrorDocument")


def test_every_error_response_is_the_error_schema():
    responses = SPEC["components"]["responses"]
    for path, method, operation in OPERATIONS:
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            if "$ref" in response:
                response = responses[response["$ref"].rsplit("/", 1)[-1]]
            schema = response["content"]["application/json"]["schema"]
            assert schema == _error_schema(path, int(status)), f"{method} {path} {status}"


def test_the_error_document_wraps_the_error_in_the_envelope():
    schemas = SPEC["components"]["schemas"]
    document = schemas["ErrorDocument"]
    assert document["required"] == ["meta", "data"]
    assert document["properties"]["meta"] == {"$ref": "#/components/schemas/Meta"}
    errors = document["properties"]["data"]
    assert errors["required"] == ["errors"]
    assert errors["properties"]["errors"] == {"$ref": "#/components/schemas/Error"}
    assert schemas["Error"]["required"] == ["status", "error", "message", "field"]
    assert "validation" in schemas["Error"]["properties"]
    assert schemas["BareError"]["required"] == ["message", "error", "error_description"]
    assert schemas["BareError"]["properties"]["message"]["enum"] == ["Unauthorized", "Forbidden"]
    assert schemas["OAuthError"]["required"] == ["error", "error_description"]


def test_slot_creation_links_to_get_book_cancel_and_delete():
    operation = SPEC["paths"]["/schedule/slots/"]["post"]
    links = operation["responses"]["200"]["links"]
    targets = {link["operationId"] for link in links.values()}
    by_path = {(method, path): op["operationId"] for path, method, op in OPERATIONS}
    assert targets == {
        by_path[("get", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("put", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("delete", "/schedule/appointments/{pd_appointment_uuid}")],
        by_path[("delete", "/schedule/slots/{pd_appointment_uuid}")],
    }
    for link in links.values():
        assert link["parameters"] == {"pd_appointment_uuid": "$response.body#/data/pd_appointment_uuid"}


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
    assert "meta" not in served  # the contract itself is not an API answer
    assert {(m, p) for p, item in served["paths"].items() for m in item if m in METHODS} == {
        (m, p) for p, m, _ in OPERATIONS}
