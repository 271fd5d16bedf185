"""Fault and latency injection: per request (headers) and per tenant (rules), deterministic, harmless."""

import time

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.app import create_app

from .conftest import bearer, get_token, make_settings
from .helpers import (
    APPOINTMENTS, PATIENT, PEG, PROVIDER, SCHEDULERS, SLOTS, assert_error, book, create_slot, data_of, get_one,
    slot_body, world_view,
)

FAULTS = "/api/v4/sandbox/faults"
RESET = "/api/v4/sandbox/reset"
FAULT_STATUSES = (429, 500, 502, 503, 504)
TENANT_B = ("faults-tenant-b", "secret-b")


def fault(status, **more) -> dict:
    return {"X-Sandbox-Fault": str(status), **more}


def statuses(client, headers, count, path=SCHEDULERS):
    return [client.get(path, headers=headers).status_code for _ in range(count)]


# -- per request ------------------------------------------------------------------------

@pytest.mark.parametrize("status", FAULT_STATUSES)
def test_a_fault_header_answers_that_status_in_the_error_shape(client, auth, status):
    answer = client.get(SCHEDULERS, headers={**auth, **fault(status)})
    body = assert_error(answer, status, "X-Sandbox-Fault")
    assert "injected" in body["message"]
    assert body["error"] != "internal_error" or status == 500
    assert answer.headers.get("Retry-After") == ("1" if status in (429, 503) else None)


def test_an_injected_fault_changes_nothing(client, auth):
    before = world_view(client, auth)
    slot = create_slot(client, auth)
    uuid = slot["pd_appointment_uuid"]
    before_slot = get_one(client, auth, uuid)
    # Every changing operation, each refused by an injected fault.
    assert_error(client.post(SLOTS, headers={**auth, **fault(503)}, json=slot_body()), 503)
    assert_error(client.put(f"{APPOINTMENTS}{uuid}", headers={**auth, **fault(500)},
                            json={"patient": {"_uuid": PEG}}), 500)
    assert_error(client.delete(f"{SLOTS}{uuid}", headers={**auth, **fault(502)}), 502)
    assert_error(client.delete(f"{APPOINTMENTS}{doc.BOOKED_SLOT}", headers={**auth, **fault(504)}), 504)
    assert_error(client.post(PATIENT, headers={**auth, **fault(429)},
                             json={"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER}), 429)
    assert get_one(client, auth, uuid) == before_slot
    assert data_of(client.delete(f"{SLOTS}{uuid}", headers=auth))["pd_appointment_uuid"] == uuid
    assert world_view(client, auth) == before


def test_a_fault_comes_before_request_validation_but_after_the_token_check(client, auth):
    # An invalid body still gets the injected fault (a failing gateway does not read it)...
    assert_error(client.post(SLOTS, headers={**auth, **fault(503)}, json={"nonsense": True}), 503)
    # ...but without a valid token the answer is the 401, and a missing scope the 403.
    assert_error(client.get(SCHEDULERS, headers=fault(503)), 401, "token_missing")
    narrow = bearer(get_token(client, scope="user_schedule"))
    assert_error(client.post(SLOTS, headers={**narrow, **fault(503)}, json=slot_body()), 403, "insufficient_scope")


@pytest.mark.parametrize("value", ["418", "200", "404", "abc", "", "503, 500", "5031", "-503"])
def test_an_invalid_fault_header_is_a_422(client, auth, value):
    body = assert_error(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Fault": value}), 422, "X-Sandbox-Fault")
    assert "429, 500, 502, 503, 504" in body["message"]


@pytest.mark.parametrize("value", ["2", "2h", "31s", "30001ms", "-1s", "1.2345s", "s", "ms", "2 s", "1e3ms"])
def test_an_invalid_delay_header_is_a_422(client, auth, value):
    body = assert_error(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Delay": value}), 422, "X-Sandbox-Delay")
    assert repr(value) in body["message"]  # it names what was sent...
    assert "250ms or 2s" in body["message"] or "at most 30s" in body["message"]  # ...and what to send instead


def test_a_delay_header_slows_the_request_which_then_proceeds(client, auth):
    started = time.perf_counter()
    answer = client.post(SLOTS, headers={**auth, "X-Sandbox-Delay": "150ms"}, json=slot_body())
    assert time.perf_counter() - started >= 0.15
    assert data_of(answer)["booked"] is False
    started = time.perf_counter()
    assert data_of(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Delay": "0.1s"}))
    assert time.perf_counter() - started >= 0.1


def test_delay_and_fault_together_fail_slowly(client, auth):
    started = time.perf_counter()
    assert_error(client.get(SCHEDULERS, headers={**auth, **fault(504, **{"X-Sandbox-Delay": "100ms"})}), 504)
    assert time.perf_counter() - started >= 0.1


def test_the_token_endpoint_takes_fault_headers_too(client):
    form = {"grant_type": "client_credentials"}
    credentials = ("sandbox-demo", "sandbox-demo-secret")
    assert_error(client.post("/oauth2/token", data=form, auth=credentials, headers=fault(503)), 503, "X-Sandbox-Fault")
    assert_error(client.post("/oauth2/token", data=form, auth=credentials, headers=fault(999)), 422,
                 "X-Sandbox-Fault")
    assert client.post("/oauth2/token", data=form, auth=credentials).json()["token_type"] == "bearer"


def test_sandbox_administration_is_never_faulted(client, auth):
    assert data_of(client.post(RESET, headers={**auth, **fault(503)}))["seed"] == 0
    assert data_of(client.get(FAULTS, headers={**auth, "X-Sandbox-Fault": "nonsense"})) == {"seed": 0, "rules": []}


# -- per tenant ----------------------------------------------------------------------

def put_rules(client, headers, rules, seed=None):
    body = {"rules": rules, **({"seed": seed} if seed is not None else {})}
    return data_of(client.put(FAULTS, headers=headers, json=body))


def test_rules_are_stored_and_shown_with_their_hits(client, auth):
    assert data_of(client.get(FAULTS, headers=auth)) == {"seed": 0, "rules": []}
    shown = put_rules(client, auth, [{"operation": "list_schedulers", "status": 503, "times": 2}], seed=7)
    assert shown == {"seed": 7, "rules": [{"operation": "list_schedulers", "status": 503, "rate": 1.0,
                                          "delay_ms": 0, "times": 2, "hits": 0}]}
    assert statuses(client, auth, 4) == [503, 503, 200, 200]  # spent after two hits
    assert data_of(client.get(FAULTS, headers=auth))["rules"][0]["hits"] == 2


def test_a_seeded_rate_gives_the_same_faults_every_time(client, auth):
    rule = [{"operation": "list_schedulers", "status": 503, "rate": 0.5}]
    put_rules(client, auth, rule, seed=1)
    first = statuses(client, auth, 30)
    put_rules(client, auth, rule, seed=1)  # setting the rules again restarts the sequence
    assert statuses(client, auth, 30) == first
    assert set(first) == {200, 503}
    # Another sandbox, the same seed and requests: the same faults.
    other = create_app(make_settings())
    with other.test_client() as other_client:
        headers = bearer(get_token(other_client))
        put_rules(other_client, headers, rule, seed=1)
        assert statuses(other_client, headers, 30) == first
    put_rules(client, auth, rule, seed=2)
    assert statuses(client, auth, 30) != first


def test_requests_with_fault_headers_leave_the_rules_sequence_alone(client, auth):
    rule = [{"operation": "list_schedulers", "status": 503, "rate": 0.5}]
    put_rules(client, auth, rule, seed=3)
    plain = statuses(client, auth, 10)
    put_rules(client, auth, rule, seed=3)
    mixed = []
    for _ in range(10):
        assert data_of(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Delay": "0ms"}))
        mixed.append(client.get(SCHEDULERS, headers=auth).status_code)
    assert mixed == plain


def test_a_rule_acts_on_its_operation_only_and_a_star_on_all(client, auth):
    slot = create_slot(client, auth)
    uuid = slot["pd_appointment_uuid"]
    put_rules(client, auth, [{"operation": "update_appointment", "status": 503}])
    assert_error(book(client, auth, uuid, PEG), 503)
    assert get_one(client, auth, uuid)["booked"] is False  # nothing changed, and reading works
    assert data_of(client.get(SCHEDULERS, headers=auth))
    put_rules(client, auth, [{"operation": "*", "status": 429}])
    for answer in (client.get(SCHEDULERS, headers=auth), client.get(f"{APPOINTMENTS}{uuid}", headers=auth),
                   client.post(SLOTS, headers=auth, json=slot_body())):
        body = assert_error(answer, 429, None)
        assert "fault rule #0" in body["message"]
    # Sandbox administration still works, so the rules can be removed.
    assert data_of(client.delete(FAULTS, headers=auth)) == {"seed": 0, "rules": []}
    assert data_of(book(client, auth, uuid, PEG))["booked"] is True


def test_rules_are_tried_in_order_until_one_hits(client, auth):
    put_rules(client, auth, [{"operation": "list_schedulers", "status": 503, "times": 1},
                             {"operation": "*", "status": 500, "times": 1}])
    assert statuses(client, auth, 3) == [503, 500, 200]


def test_a_rule_without_a_status_only_delays(client, auth):
    put_rules(client, auth, [{"operation": "create_slot", "delay_ms": 120}])
    started = time.perf_counter()
    assert data_of(client.post(SLOTS, headers=auth, json=slot_body()))["booked"] is False
    assert time.perf_counter() - started >= 0.12


@pytest.mark.parametrize("rule, field", [
    ({"operation": "no_such_operation", "status": 503}, "rules.0.operation"),
    ({"operation": "create_slot", "status": 404}, "rules.0.status"),
    ({"operation": "create_slot", "status": 503, "rate": 1.5}, "rules.0.rate"),
    ({"operation": "create_slot", "delay_ms": 30001}, "rules.0.delay_ms"),
    ({"operation": "create_slot", "status": 503, "times": 0}, "rules.0.times"),
    ({"operation": "create_slot", "status": 503, "extra": 1}, "rules.0.extra"),
    ({"status": 503}, "rules.0.operation"),
    ({"operation": "create_slot"}, "rules.0"),
    ({"operation": "create_slot", "rate": 0.5, "delay_ms": 0}, "rules.0"),
])
def test_invalid_rules_are_a_422_and_change_nothing(client, auth, rule, field):
    before = put_rules(client, auth, [{"operation": "list_schedulers", "status": 503, "times": 1}])
    answer = client.put(FAULTS, headers=auth, json={"rules": [rule]})
    assert field in assert_error(answer, 422, field)["validation"]
    assert data_of(client.get(FAULTS, headers=auth)) == before


def test_rules_belong_to_one_tenant(client, auth):
    other = bearer(get_token(client, TENANT_B))
    put_rules(client, auth, [{"operation": "*", "status": 503}])
    assert statuses(client, other, 3) == [200, 200, 200]
    assert data_of(client.get(FAULTS, headers=other))["rules"] == []
    assert data_of(client.delete(FAULTS, headers=other))["rules"] == []
    assert statuses(client, auth, 1) == [503]


def test_a_reset_clears_the_rules(client, auth):
    put_rules(client, auth, [{"operation": "*", "status": 503}])
    assert data_of(client.post(RESET, headers=auth))["seed"] == 0
    assert data_of(client.get(FAULTS, headers=auth))["rules"] == []
    assert statuses(client, auth, 2) == [200, 200]


def test_changing_rules_needs_the_admin_token_when_the_server_has_one(backend):
    app = create_app(make_settings(admin_token="s3cret"))
    with app.test_client() as client:
        headers = bearer(get_token(client))
        rules = {"rules": [{"operation": "*", "status": 503}]}
        assert_error(client.put(FAULTS, headers=headers, json=rules), 403, "admin_token_required")
        assert_error(client.delete(FAULTS, headers=headers), 403, "admin_token_required")
        assert data_of(client.get(FAULTS, headers=headers))["rules"] == []
        admin = {**headers, "X-Sandbox-Admin-Token": "s3cret"}
        assert data_of(client.put(FAULTS, headers=admin, json=rules))["rules"][0]["status"] == 503
        assert data_of(client.delete(FAULTS, headers=admin))["rules"] == []


def test_fault_rules_need_a_valid_token(client):
    assert_error(client.get(FAULTS), 401, "token_missing")
    assert_error(client.put(FAULTS, json={"rules": []}), 401, "token_missing")
