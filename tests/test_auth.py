"""OAuth2 client credentials at /oauth2/token, bearer checks and scope enforcement."""

import base64

import pytest

from pokitdok_sandbox.app import create_app

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (
    APPOINTMENT_TYPES, APPOINTMENTS, PATIENT, PEG, PROVIDER, SCHEDULERS, SLOTS, assert_error, assert_oauth_error,
    create_slot, data_of, open_slots_of, slot_body,
)

TOKEN_URLS = ["/oauth2/token", "/api/v4/oauth2/token"]
GRANT = {"grant_type": "client_credentials"}


def _check_token(answer, scopes):
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert "no-store" in answer.headers.get("cache-control", "")
    token = answer.json()
    assert set(token) == {"access_token", "token_type", "expires", "expires_in", "scope"}, token
    assert isinstance(token["access_token"], str) and len(token["access_token"]) >= 20
    assert token["token_type"] == "bearer"
    assert isinstance(token["expires_in"], int) and token["expires_in"] > 0
    assert isinstance(token["expires"], int)
    assert isinstance(token["scope"], str)
    assert set(token["scope"].split()) == set(scopes)
    return token


# -- the token endpoint -------------------------------------------------------

@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_by_http_basic(client, url):
    token = _check_token(client.post(url, data=GRANT, auth=DEMO), {"user_schedule", "business_schedule"})
    assert data_of(client.get(SCHEDULERS, headers=bearer(token["access_token"])))


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_by_form_body(client, url):
    form = {**GRANT, "client_id": DEMO[0], "client_secret": DEMO[1]}
    token = _check_token(client.post(url, data=form), {"user_schedule", "business_schedule"})
    assert data_of(client.get(SCHEDULERS, headers=bearer(token["access_token"])))


def test_token_expires_in_follows_the_settings(backend):
    app = create_app(make_settings(token_ttl_seconds=123))
    with app.test_client() as client:
        answer = client.post("/oauth2/token", data=GRANT, auth=DEMO)
        assert _check_token(answer, {"user_schedule", "business_schedule"})["expires_in"] == 123


def test_each_request_gets_a_new_token(client):
    assert get_token(client) != get_token(client)


@pytest.mark.parametrize("scope", ["user_schedule", "business_schedule", "user_schedule business_schedule"])
def test_requested_scope_is_granted(client, scope):
    _check_token(client.post("/oauth2/token", data={**GRANT, "scope": scope}, auth=DEMO), scope.split())


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_wrong_secret_is_401_invalid_client(client, url):
    answer = client.post(url, data=GRANT, auth=(DEMO[0], "not-the-secret"))
    assert_oauth_error(answer, 401, "invalid_client")
    assert answer.headers["www-authenticate"].startswith("Basic ")
    form = {**GRANT, "client_id": DEMO[0], "client_secret": "not-the-secret"}
    assert_oauth_error(client.post(url, data=form), 401, "invalid_client")


def test_no_client_credentials_is_401(client):
    body = assert_oauth_error(client.post("/oauth2/token", data=GRANT), 401, "invalid_client")
    assert "client_id" in body["error_description"]


def test_malformed_basic_credentials_are_401(client):
    headers = {"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()}
    assert_oauth_error(client.post("/oauth2/token", data=GRANT, headers=headers), 401, "invalid_client")
    assert_oauth_error(client.post("/oauth2/token", data=GRANT, headers={"Authorization": "Basic %%%"}), 401,
                       "invalid_client")


@pytest.mark.parametrize("url", TOKEN_URLS)
@pytest.mark.parametrize("grant", ["password", "authorization_code", ""])
def test_unsupported_grant_type_is_400(client, url, grant):
    body = assert_oauth_error(client.post(url, data={"grant_type": grant}, auth=DEMO), 400, "unsupported_grant_type")
    assert "client_credentials" in body["error_description"]


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_unknown_scope_is_400_invalid_scope(client, url):
    for scope in ("admin", "user_schedule admin"):
        body = assert_oauth_error(client.post(url, data={**GRANT, "scope": scope}, auth=DEMO), 400, "invalid_scope")
        assert "admin" in body["error_description"]


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_endpoint_takes_a_form_only(client, url):
    for answer in (client.post(url, json=GRANT, auth=DEMO),
                   client.post(url, content=b"grant_type=client_credentials", auth=DEMO,
                               headers={"Content-Type": "text/plain"})):
        body = assert_oauth_error(answer, 400, "invalid_request")
        assert "application/x-www-form-urlencoded" in body["error_description"]


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_endpoint_is_post_only(client, url):
    answer = client.get(url)
    assert_error(answer, 405)
    assert answer.headers["allow"] == "POST"


# -- bearer tokens ---------------------------------------------------------------

@pytest.mark.parametrize("headers, code", [
    ({}, "token_missing"),
    ({"Authorization": "Bearer not-a-real-token"}, "invalid_token"),
    ({"Authorization": "Bearer "}, "invalid_token"),
    ({"Authorization": "Basic " + base64.b64encode(b"sandbox-demo:sandbox-demo-secret").decode()}, "token_missing"),
    ({"Authorization": "Token abc"}, "token_missing"),
    ({"Authorization": "Basic"}, "token_missing"),
])
@pytest.mark.parametrize("method, path", [("GET", SCHEDULERS), ("GET", f"{APPOINTMENTS}?pd_provider_uuid={PROVIDER}"),
                                          ("POST", SLOTS), ("POST", "/api/v4/sandbox/reset")])
def test_no_valid_token_is_401(client, headers, code, method, path):
    answer = client.request(method, path, headers=headers, json=slot_body() if method == "POST" else None)
    assert_error(answer, 401, code)
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="pokitdok-sandbox"')
    assert ('error="invalid_token"' in challenge) == (code == "invalid_token")


def test_a_refused_creation_without_token_changes_nothing(client, auth):
    before = open_slots_of(client, auth)
    assert_error(client.post(SLOTS, json=slot_body()), 401, "token_missing")
    assert open_slots_of(client, auth) == before


def test_expired_token_is_401_by_ttl(backend):
    app = create_app(make_settings(token_ttl_seconds=60))
    authority = app.sandbox.authority
    now = [1_000_000.0]
    authority.clock = lambda: now[0]
    with app.test_client() as client:
        headers = bearer(get_token(client))
        assert data_of(client.get(SCHEDULERS, headers=headers))
        now[0] += 59
        assert data_of(client.get(SCHEDULERS, headers=headers))
        now[0] += 1
        expired = client.get(SCHEDULERS, headers=headers)
        assert_error(expired, 401, "token_expired")
        assert 'error="invalid_token"' in expired.headers["www-authenticate"]
        # A new token works again.
        assert data_of(client.get(SCHEDULERS, headers=bearer(get_token(client))))


def test_expired_token_is_401_with_the_real_clock(backend):
    app = create_app(make_settings(token_ttl_seconds=0))
    with app.test_client() as client:
        assert_error(client.get(SCHEDULERS, headers=bearer(get_token(client))), 401, "token_expired")


# -- scopes --------------------------------------------------------------------------

def test_user_schedule_token_cannot_manage_slots(client, auth):
    user = bearer(get_token(client, scope="user_schedule"))
    before = open_slots_of(client, auth)
    refused = client.post(SLOTS, headers=user, json=slot_body())
    assert assert_error(refused, 403, "insufficient_scope")["scope"] == \
        "'business_schedule' scope required to access this API"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    slot = before[0]["pd_appointment_uuid"]
    assert_error(client.delete(f"{SLOTS}{slot}", headers=user), 403, "insufficient_scope")
    assert open_slots_of(client, auth) == before


def test_business_schedule_token_cannot_touch_appointments_or_patients(client, auth):
    business = bearer(get_token(client, scope="business_schedule"))
    slot = create_slot(client, business)  # business_schedule can create...
    uuid = slot["pd_appointment_uuid"]
    for answer in (
        client.get(f"{APPOINTMENTS}{uuid}", headers=business),
        client.get(APPOINTMENTS, headers=business, params={"patient_uuid": PEG}),  # by provider: its calendar
        client.put(f"{APPOINTMENTS}{uuid}", headers=business, json={"patient": {"_uuid": PEG}}),
        client.delete(f"{APPOINTMENTS}{uuid}", headers=business),
        client.post(PATIENT, headers=business, json={"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER}),
    ):
        errors = assert_error(answer, 403, "insufficient_scope")
        assert errors["scope"] == "'user_schedule' scope required to access this API"
        assert "user_schedule" in errors["message"]
        assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    # ...and nothing was booked by the refused PUT.
    [fetched] = data_of(client.get(f"{APPOINTMENTS}{uuid}", headers=auth))
    assert fetched["booked"] is False
    assert data_of(client.delete(f"{SLOTS}{uuid}", headers=business))["pd_appointment_uuid"] == uuid


@pytest.mark.parametrize("scope", ["user_schedule", "business_schedule"])
def test_either_scope_reads_the_catalogue(client, scope):
    headers = bearer(get_token(client, scope=scope))
    assert data_of(client.get(SCHEDULERS, headers=headers))
    assert data_of(client.get(APPOINTMENT_TYPES, headers=headers))


def test_user_schedule_token_books(client, auth):
    user = bearer(get_token(client, scope="user_schedule"))
    slot = create_slot(client, auth)
    answer = client.put(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=user, json={"patient": {"_uuid": PEG}})
    assert data_of(answer)["patient"]["_uuid"] == PEG
