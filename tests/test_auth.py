"""OAuth2 client credentials at /oauth2/token, bearer checks and scope enforcement."""

import base64

import pytest

from sandbox.app import create_app

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (
    APPOINTMENT_TYPES, APPOINTMENTS, PATIENT, PEG, PROVIDER, SCHEDULERS, SLOTS, assert_error, create_slot,
    open_slots_of, slot_body,
)

TOKEN_URLS = ["/oauth2/token", "/api/v4/oauth2/token"]
GRANT = {"grant_type": "client_credentials"}


def _check_token(answer, scopes):
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert "no-store" in answer.headers.get("cache-control", "")
    token = answer.json()
    assert isinstance(token["access_token"], str) and len(token["access_token"]) >= 20
    assert token["token_type"] == "bearer"
    assert isinstance(token["expires_in"], int) and token["expires_in"] > 0
    assert isinstance(token["scope"], str)
    assert set(token["scope"].split()) == set(scopes)
    return token


# -- the token endpoint -------------------------------------------------------

@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_by_http_basic(client, url):
    token = _check_token(client.post(url, data=GRANT, auth=DEMO), {"user_schedule", "business_schedule"})
    assert client.get(SCHEDULERS, headers=bearer(token["access_token"])).status_code == 200


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_by_form_body(client, url):
    form = {**GRANT, "client_id": DEMO[0], "client_secret": DEMO[1]}
    token = _check_token(client.post(url, data=form), {"user_schedule", "business_schedule"})
    assert client.get(SCHEDULERS, headers=bearer(token["access_token"])).status_code == 200


def test_token_expires_in_follows_the_settings(backend):
    app = create_app(make_settings(token_ttl_seconds=123))
    with app.test_client() as client:
        assert client.post("/oauth2/token", data=GRANT, auth=DEMO).json()["expires_in"] == 123


def test_each_request_gets_a_new_token(client):
    assert get_token(client) != get_token(client)


@pytest.mark.parametrize("scope", ["user_schedule", "business_schedule", "user_schedule business_schedule"])
def test_requested_scope_is_granted(client, scope):
    _check_token(client.post("/oauth2/token", data={**GRANT, "scope": scope}, auth=DEMO), scope.split())


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_wrong_secret_is_401_invalid_client(client, url):
    body = assert_error(client.post(url, data=GRANT, auth=(DEMO[0], "not-the-secret")), 401)
    assert body["error"] == "invalid_client"
    form = {**GRANT, "client_id": DEMO[0], "client_secret": "not-the-secret"}
    assert assert_error(client.post(url, data=form), 401)["error"] == "invalid_client"


def test_no_client_credentials_is_401(client):
    assert assert_error(client.post("/oauth2/token", data=GRANT), 401)["error"] == "invalid_client"


def test_malformed_basic_credentials_are_401(client):
    headers = {"Authorization": "Basic " + base64.b64encode(b"no-colon-here").decode()}
    assert_error(client.post("/oauth2/token", data=GRANT, headers=headers), 401)
    assert_error(client.post("/oauth2/token", data=GRANT, headers={"Authorization": "Basic %%%"}), 401)


@pytest.mark.parametrize("url", TOKEN_URLS)
@pytest.mark.parametrize("grant", ["password", "authorization_code", ""])
def test_unsupported_grant_type_is_400(client, url, grant):
    assert_error(client.post(url, data={"grant_type": grant}, auth=DEMO), 400, "grant_type")


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_unknown_scope_is_400_invalid_scope(client, url):
    for scope in ("admin", "user_schedule admin"):
        body = assert_error(client.post(url, data={**GRANT, "scope": scope}, auth=DEMO), 400, "scope")
        assert body["error"] == "invalid_scope"


@pytest.mark.parametrize("url", TOKEN_URLS)
def test_token_endpoint_takes_a_form_only(client, url):
    assert_error(client.post(url, json=GRANT, auth=DEMO), 415)
    assert_error(client.post(url, content=b"grant_type=client_credentials", auth=DEMO,
                             headers={"Content-Type": "text/plain"}), 415)


def test_token_endpoint_is_post_only(client):
    assert_error(client.get("/oauth2/token"), 405)


# -- bearer tokens ---------------------------------------------------------------

@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-a-real-token"},
    {"Authorization": "Bearer "},
    {"Authorization": "Basic " + base64.b64encode(b"sandbox-demo:sandbox-demo-secret").decode()},
    {"Authorization": "Token abc"},
])
@pytest.mark.parametrize("method, path", [("GET", SCHEDULERS), ("GET", f"{APPOINTMENTS}?pd_provider_uuid={PROVIDER}"),
                                          ("POST", SLOTS), ("POST", "/api/v4/sandbox/reset")])
def test_no_valid_token_is_401(client, headers, method, path):
    answer = client.request(method, path, headers=headers, json=slot_body() if method == "POST" else None)
    assert_error(answer, 401)


def test_a_refused_creation_without_token_changes_nothing(client, auth):
    before = open_slots_of(client, auth)
    assert_error(client.post(SLOTS, json=slot_body()), 401)
    assert open_slots_of(client, auth) == before


def test_expired_token_is_401_by_ttl(backend):
    app = create_app(make_settings(token_ttl_seconds=60))
    authority = app.sandbox.authority
    now = [1_000_000.0]
    authority.clock = lambda: now[0]
    with app.test_client() as client:
        headers = bearer(get_token(client))
        assert client.get(SCHEDULERS, headers=headers).status_code == 200
        now[0] += 59
        assert client.get(SCHEDULERS, headers=headers).status_code == 200
        now[0] += 1
        assert_error(client.get(SCHEDULERS, headers=headers), 401)
        # A new token works again.
        assert client.get(SCHEDULERS, headers=bearer(get_token(client))).status_code == 200


def test_expired_token_is_401_with_the_real_clock(backend):
    app = create_app(make_settings(token_ttl_seconds=0))
    with app.test_client() as client:
        assert_error(client.get(SCHEDULERS, headers=bearer(get_token(client))), 401)


# -- scopes --------------------------------------------------------------------------

def test_user_schedule_token_cannot_manage_slots(client, auth):
    user = bearer(get_token(client, scope="user_schedule"))
    before = open_slots_of(client, auth)
    assert_error(client.post(SLOTS, headers=user, json=slot_body()), 403)
    slot = before[0]["pd_appointment_uuid"]
    assert_error(client.delete(f"{SLOTS}{slot}", headers=user), 403)
    assert open_slots_of(client, auth) == before


def test_business_schedule_token_cannot_touch_appointments_or_patients(client, auth):
    business = bearer(get_token(client, scope="business_schedule"))
    slot = create_slot(client, business)  # business_schedule can create...
    uuid = slot["pd_appointment_uuid"]
    assert_error(client.get(f"{APPOINTMENTS}{uuid}", headers=business), 403)
    assert_error(client.get(APPOINTMENTS, headers=business, params={"pd_provider_uuid": PROVIDER}), 403)
    assert_error(client.put(f"{APPOINTMENTS}{uuid}", headers=business, json={"patient": {"_uuid": PEG}}), 403)
    assert_error(client.delete(f"{APPOINTMENTS}{uuid}", headers=business), 403)
    assert_error(client.post(PATIENT, headers=business, json={"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER}),
                 403)
    # ...and nothing was booked by the refused PUT.
    fetched = client.get(f"{APPOINTMENTS}{uuid}", headers=auth).json()[0]
    assert fetched["booked"] is False
    assert client.delete(f"{SLOTS}{uuid}", headers=business).status_code == 200


@pytest.mark.parametrize("scope", ["user_schedule", "business_schedule"])
def test_either_scope_reads_the_catalogue(client, scope):
    headers = bearer(get_token(client, scope=scope))
    assert client.get(SCHEDULERS, headers=headers).status_code == 200
    assert client.get(APPOINTMENT_TYPES, headers=headers).status_code == 200


def test_user_schedule_token_books(client, auth):
    user = bearer(get_token(client, scope="user_schedule"))
    slot = create_slot(client, auth)
    answer = client.put(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=user, json={"patient": {"_uuid": PEG}})
    assert answer.status_code == 200
