"""OAuth2 as the contract states it: the token endpoint (client credentials), 401 without a
token or with a bad one on every operation, 403 with a valid token lacking the operation's
scope (tokens requested with scope=user_schedule only and business_schedule only), and each
scope alone enough for its own operations."""

from __future__ import annotations

import time

import pytest
import yaml

from pokitdok_sandbox.contract_tests.api import expect_status, expect_that
from pokitdok_sandbox.contract_tests.oracle import APPOINTMENT, APPOINTMENTS, SLOT, SLOTS, TOKEN_PATH
from pokitdok_sandbox.contract_tests.run import current
from pokitdok_sandbox.contract_tests.options import DOC_PATIENTS
from pokitdok_sandbox.contract_tests.workflow import Steps, answer_json, patient_body

USER, BUSINESS = "user_schedule", "business_schedule"
SKIPPED_TAGS = {"sandbox", "oauth2"}


def _operations() -> list[tuple[str, str, list[str]]]:
    """(METHOD, path, required scopes) of every API operation of the contract."""
    spec = yaml.safe_load(current().options.spec.read_text(encoding="utf-8"))
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            if SKIPPED_TAGS & set(operation.get("tags", [])):
                continue
            security = operation.get("security", spec.get("security", []))
            scopes = sorted({scope for requirement in security for scopes in requirement.values()
                             for scope in scopes})
            if len(security) > 1:  # alternatives (a search by user_schedule or business_schedule)
                EITHER.add((method.upper(), path))
            found.append((method.upper(), path, scopes))
    return found


# Operations any one of several scopes opens: no token of one scope is refused them (checked where their
# rules are, e.g. test_final_documentation.py for the business_schedule search).
EITHER: set[tuple[str, str]] = set()
OPERATIONS = _operations()
SCOPED = [(method, path, scopes) for method, path, scopes in OPERATIONS if scopes and (method, path) not in EITHER]
# Reads any valid token may make (an activity by id or its transition needs a real activity: see
# test_final_documentation.py).
UNSCOPED = [(method, path) for method, path, scopes in OPERATIONS
            if not scopes and (method, path) not in EITHER and "{activity_id}" not in path]


def _valid_request(method: str, path: str, target, slot_uuid: str | None = None) -> dict:
    """A request that would succeed with the right token (so only the token can be the problem)."""
    params = {}
    if "{pd_appointment_uuid}" in path:
        params["pd_appointment_uuid"] = slot_uuid or target.unknown_uuid()
    elif "{scheduler_uuid}" in path:
        params["scheduler_uuid"] = "967d207f-b024-41cc-8cac-89575a1f6fef"
    elif "{appointment_type_uuid}" in path:
        params["appointment_type_uuid"] = "ef987693-0a19-447f-814d-f8f3abbf4860"
    elif "{activity_id}" in path:
        params["activity_id"] = target.unknown_uuid()
    request: dict = {"params": params}
    if (method, path) == ("POST", SLOTS):
        request["json"] = target.slot_body()
    elif (method, path) == ("POST", "/schedule/patient/"):
        request["json"] = {"pd_patient_uuid": DOC_PATIENTS[1], "pd_provider_uuid": target.options.provider_uuid,
                           "location": list(target.options.location)}
    elif (method, path) == ("PUT", APPOINTMENT):
        request["json"] = patient_body(current().options.patients[0])
    elif (method, path) == ("GET", APPOINTMENTS):
        request["query"] = {"pd_provider_uuid": target.options.provider_uuid}
    elif method == "PUT" and "{activity_id}" in path:
        request["json"] = {"transition": "cancel"}
    return request


def _remember_if_created(target, method, path, answer) -> None:
    if (method, path) == ("POST", SLOTS) and answer.status_code < 300:
        try:
            target.record_slot(target.main, target.wire.payload(answer)["pd_appointment_uuid"])
        except (ValueError, KeyError, TypeError):
            pass


# -- the token endpoint ---------------------------------------------------------------

def _token_answer(api, target, form: dict, credentials=None):
    tenant = target.main
    answer = target.token_request({"grant_type": "client_credentials", **form},
                                  auth=credentials or (tenant.client_id, tenant.client_secret))
    api.conforms("POST", TOKEN_PATH, answer)
    return answer


def test_the_token_endpoint_issues_bearer_tokens_with_every_scope(api, target):
    answer = _token_answer(api, target, {})
    expect_status(api, answer, 200, "client credentials give a token", "POST", TOKEN_PATH)
    token = answer_json(answer, api, "POST", TOKEN_PATH)
    expect_that(str(token.get("token_type", "")).lower() == "bearer" and
                set(str(token.get("scope", "")).split()) >= {USER, BUSINESS}, api, answer,
                "without scope, a token carries every scope", "token_type bearer, scope with both scopes",
                "POST", TOKEN_PATH)
    # `expires` is a Unix time, `expires_in` seconds from now: the two must agree (a few minutes of clock
    # skew between the kit and the target allowed), or clients refresh at the wrong time.
    expires, expires_in = token.get("expires"), token.get("expires_in")
    expect_that(isinstance(expires, int) and isinstance(expires_in, int) and expires_in > 0
                and abs(expires - (time.time() + expires_in)) < 600, api, answer,
                "a token's expires is now + expires_in", f"expires near {int(time.time())} + expires_in",
                "POST", TOKEN_PATH, actual=f"expires {expires!r}, expires_in {expires_in!r}")


@pytest.mark.parametrize("scope", [USER, BUSINESS])
def test_a_token_can_be_narrowed_to_one_scope(api, target, scope):
    answer = _token_answer(api, target, {"scope": scope})
    expect_status(api, answer, 200, "a token can be requested for one scope", "POST", TOKEN_PATH)
    granted = str(answer_json(answer, api, "POST", TOKEN_PATH).get("scope", "")).split()
    expect_that(granted == [scope], api, answer, "a token can be requested for one scope", f"scope {scope!r}",
                "POST", TOKEN_PATH)


@pytest.mark.parametrize("form, status, rule", [
    ({"scope": "no_such_scope"}, 400, "an unknown scope is refused (invalid_scope)"),
    ({"grant_type": "password"}, 400, "only client_credentials is supported (unsupported_grant_type)"),
], ids=["unknown-scope", "wrong-grant"])
def test_the_token_endpoint_refuses_bad_requests(api, target, form, status, rule):
    expect_status(api, _token_answer(api, target, form), status, rule, "POST", TOKEN_PATH)


def test_the_token_endpoint_refuses_a_wrong_secret(api, target):
    tenant = target.main
    answer = _token_answer(api, target, {}, credentials=(tenant.client_id, tenant.client_secret + "-wrong"))
    expect_status(api, answer, 401, "a wrong client secret is refused (invalid_client)", "POST", TOKEN_PATH)


# -- 401 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["no-token", "bad-token"])
@pytest.mark.parametrize("method, path", [(m, p) for m, p, _s in OPERATIONS],
                         ids=[f"{m} {p}" for m, p, _s in OPERATIONS])
def test_requests_without_a_valid_token_are_401(api, target, method, path, how):
    request = _valid_request(method, path, target)
    if how == "no-token":
        answer = api.call(method, path, auth=False, **request)
    else:
        answer = api.call(method, path, token="not-a-valid-token", **request)
    _remember_if_created(target, method, path, answer)
    expect_status(api, answer, 401, f"{'no' if how == 'no-token' else 'an invalid'} token is refused", method, path)


# -- 403 and scopes --------------------------------------------------------------------------

@pytest.mark.parametrize("method, path, scopes", SCOPED, ids=[f"{m} {p}" for m, p, _s in SCOPED])
def test_a_token_without_the_operations_scope_is_403(api, target, method, path, scopes):
    other = BUSINESS if USER in scopes else USER
    slot = None
    if "{pd_appointment_uuid}" in path:  # an existing record: 403 is the only right answer
        slot = Steps(api).create_slot()["pd_appointment_uuid"]
        if (method, path) == ("DELETE", APPOINTMENT):
            Steps(api).book(slot, current().options.patients[0])
    answer = api.call(method, path, scope=other, **_valid_request(method, path, target, slot))
    _remember_if_created(target, method, path, answer)
    expect_status(api, answer, 403, f"{' '.join(scopes)} is required; a {other}-only token is refused", method,
                  path)


@pytest.mark.parametrize("scope", [USER, BUSINESS])
@pytest.mark.parametrize("method, path", UNSCOPED, ids=[f"{m} {p}" for m, p in UNSCOPED])
def test_catalogue_reads_take_any_valid_token(api, target, method, path, scope):
    answer = api.call(method, path, scope=scope, **_valid_request(method, path, target))
    expect_status(api, answer, 200, "schedulers and appointment types need any valid token", method, path)


def test_each_scope_alone_is_enough_for_its_operations(api, patients):
    steps = Steps(api)
    body = steps.target.slot_body()
    created = api.call("POST", SLOTS, json=body, scope=BUSINESS)
    _remember_if_created(steps.target, "POST", SLOTS, created)
    expect_status(api, created, api.wire.created, "business_schedule alone creates slots", "POST", SLOTS)
    slot = answer_json(created, api, "POST", SLOTS)["pd_appointment_uuid"]
    params = {"pd_appointment_uuid": slot}
    for method, path, json, status, rule in [
        ("GET", APPOINTMENT, None, 200, "user_schedule alone reads appointments"),
        ("PUT", APPOINTMENT, patient_body(patients[0]), 200, "user_schedule alone books"),
        ("DELETE", APPOINTMENT, None, 200, "user_schedule alone cancels"),
    ]:
        expect_status(api, api.call(method, path, params=params, json=json, scope=USER), status, rule, method, path)
    expect_status(api, api.call("DELETE", SLOT, params=params, scope=BUSINESS), 200,
                  "business_schedule alone deletes slots", "DELETE", SLOT)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(api, target, scheme):
    """RFC 7235 section 2.1: the auth scheme is case-insensitive (some clients send `bearer`)."""
    answer = api.call("GET", "/schedule/schedulers/", auth=False,
                      headers={"Authorization": f"{scheme} {target.token()}"})
    expect_status(api, answer, 200, f"an 'Authorization: {scheme} <token>' header is accepted", "GET",
                  "/schedule/schedulers/")
