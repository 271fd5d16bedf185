"""The request journal: each tenant's last requests, with why they were refused; private to the tenant."""

from datetime import datetime

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.extras.request_journal import RequestJournal

from .conftest import bearer, get_token, make_settings
from .helpers import (
    APPOINTMENTS, PEG, SCHEDULERS, SLOTS, UNKNOWN_UUID, assert_error, create_slot, data_of, slot_body,
)

JOURNAL = "/api/v4/sandbox/journal"
RESET = "/api/v4/sandbox/reset"
TENANT_A = ("journal-tenant-a", "secret-a")
TENANT_B = ("journal-tenant-b", "secret-b")


def journal(client, headers, **params) -> list[dict]:
    return data_of(client.get(JOURNAL, headers=headers, params=params))["entries"]


def test_it_records_each_request_newest_first(client, auth):
    slot = create_slot(client, auth)
    data_of(client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": slot["pd_appointment_uuid"]}))
    data_of(client.put(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth, json={"patient": {"_uuid": PEG}}))
    entries = journal(client, auth)
    assert [(e["method"], e["operation"], e["status"]) for e in entries[:3]] == [
        ("PUT", "update_appointment", 200), ("GET", "search_appointments", 200), ("POST", "create_slot", 200)]
    newest = entries[0]
    assert newest["path"] == f"{APPOINTMENTS}{slot['pd_appointment_uuid']}"
    assert newest["query"] == ""
    assert entries[1]["query"] == f"pd_provider_uuid={slot['pd_appointment_uuid']}"
    assert newest["duration_ms"] >= 0
    assert datetime.fromisoformat(newest["timestamp"]).tzinfo is not None
    assert newest["violation"] is newest["error"] is newest["fault"] is newest["field"] is None
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)


def test_limit_keeps_the_newest(client, auth):
    for _ in range(4):
        data_of(client.get(SCHEDULERS, headers=auth))
    assert_error(client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth), 404)
    everything = journal(client, auth)
    assert len(everything) == 5
    assert journal(client, auth, limit=2) == everything[:2]
    assert journal(client, auth, limit=1)[0]["status"] == 404
    assert_error(client.get(JOURNAL, headers=auth, params={"limit": 0}), 422, "limit")
    assert_error(client.get(JOURNAL, headers=auth, params={"limit": 1001}), 422, "limit")
    assert data_of(client.get(JOURNAL, headers=auth))["capacity"] == 200


def test_only_the_last_requests_are_kept():
    kept = RequestJournal(capacity=3)
    for number in range(5):
        kept.record("t", {"n": number})
    assert [e["n"] for e in kept.entries("t")] == [4, 3, 2]
    assert [e["seq"] for e in kept.entries("t")] == [5, 4, 3]
    few_tenants = RequestJournal(max_tenants=2)
    for tenant in ("a", "b", "c"):
        few_tenants.record(tenant, {})
    assert few_tenants.entries("a") == [] and few_tenants.entries("c")


def test_refusals_carry_the_contract_violation_message(client, auth):
    answers = {
        "body": client.post(SLOTS, headers=auth, json=slot_body(location=[1000, 0])),
        "content type": client.post(SLOTS, headers={**auth, "Content-Type": "text/plain"}, content=b"hello"),
        "query": client.get(APPOINTMENTS, headers=auth, params={"pd_provider_uuid": "not-a-uuid"}),
        "rule 422": client.post(SLOTS, headers=auth, json=slot_body(appointment_type="NOPE1")),
        "size": client.post(SLOTS, headers={**auth, "Content-Type": "application/json"}, content=b" " * 300_000),
    }
    entries = journal(client, auth, limit=len(answers))
    assert [entry["status"] for entry in entries] == [413, 422, 422, 415, 422]
    for (name, answer), entry in zip(reversed(answers.items()), entries):
        errors = assert_error(answer, entry["status"])
        assert entry["violation"] == errors["message"], name
        assert entry["field"] == errors["field"], name
        assert entry["error"] is None, name


def test_other_errors_and_faults_are_noted_apart(client, auth):
    assert_error(client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=auth), 404)
    assert_error(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Fault": "503"}), 503)
    assert data_of(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Delay": "1ms"}))
    assert_error(client.get(SCHEDULERS, headers={**auth, "X-Sandbox-Fault": "nope"}), 422, "X-Sandbox-Fault")
    assert_error(client.get("/api/v4/no/such/path", headers=auth), 404)
    unknown_path, invalid_header, delayed, faulted, missing = journal(client, auth, limit=5)
    assert missing["violation"] is None and "no slot" in missing["error"] and missing["fault"] is None
    assert faulted["status"] == 503 and faulted["error"] and "X-Sandbox-Fault: 503" in faulted["fault"]
    assert faulted["violation"] is None
    assert delayed["status"] == 200 and "X-Sandbox-Delay: 1ms" in delayed["fault"]
    assert unknown_path["operation"] is None and unknown_path["status"] == 404
    assert invalid_header["field"] == "X-Sandbox-Fault" and "must be one of" in invalid_header["violation"]
    assert invalid_header["status"] == 422 and invalid_header["error"] is None


def test_a_valid_token_without_the_scope_is_journaled(client, auth):
    narrow = bearer(get_token(client, scope="user_schedule"))
    refused = assert_error(client.post(SLOTS, headers=narrow, json=slot_body()), 403, "insufficient_scope")
    entry = journal(client, auth, limit=1)[0]
    assert (entry["method"], entry["operation"], entry["status"]) == ("POST", "create_slot", 403)
    assert entry["error"] == refused["message"] and entry["violation"] is None


def test_requests_without_a_valid_token_sandbox_administration_and_tokens_are_not_journaled(client, auth):
    client.get(SCHEDULERS)
    client.get(SCHEDULERS, headers=bearer("not-a-token"))
    client.post(SLOTS, headers=bearer("not-a-token"), json={"nonsense": 1})
    get_token(client)
    client.get("/api/v4/sandbox/faults", headers=auth)
    client.get("/api/v4/sandbox/providers", headers=auth)
    client.get("/api/v4/openapi.json", headers=auth)
    journal(client, auth)
    assert journal(client, auth) == []


def test_a_tenant_never_sees_another_tenants_journal(client):
    a, b = bearer(get_token(client, TENANT_A)), bearer(get_token(client, TENANT_B))
    create_slot(client, a)
    client.get(f"{APPOINTMENTS}{UNKNOWN_UUID}", headers=a)
    assert journal(client, b) == []
    client.get(SCHEDULERS, headers=b)
    assert [e["operation"] for e in journal(client, b)] == ["list_schedulers"]
    assert [e["operation"] for e in journal(client, a)] == ["get_appointment", "create_slot"]
    # B clearing or resetting its own journal leaves A's alone.
    assert data_of(client.delete(JOURNAL, headers=b))["entries"] == []
    assert data_of(client.post(RESET, headers=b))["seed"] == 0
    assert len(journal(client, a)) == 2


def test_a_reset_and_a_delete_clear_the_journal(client, auth):
    client.get(SCHEDULERS, headers=auth)
    assert data_of(client.post(RESET, headers=auth))["seed"] == 0
    assert journal(client, auth) == []
    client.get(SCHEDULERS, headers=auth)
    assert journal(client, auth)[0]["seq"] == 1
    assert data_of(client.delete(JOURNAL, headers=auth)) == {"capacity": 200, "entries": []}
    assert journal(client, auth) == []


def test_clearing_the_journal_needs_the_admin_token_when_the_server_has_one(backend):
    app = create_app(make_settings(admin_token="s3cret"))
    with app.test_client() as client:
        headers = bearer(get_token(client))
        client.get(SCHEDULERS, headers=headers)
        assert_error(client.delete(JOURNAL, headers=headers), 403, "admin_token_required")
        assert len(journal(client, headers)) == 1  # reading needs no admin token
        assert data_of(client.delete(JOURNAL, headers={**headers, "X-Sandbox-Admin-Token": "s3cret"}))["entries"] == []
        assert journal(client, headers) == []


def test_the_journal_needs_a_valid_token(client):
    assert_error(client.get(JOURNAL), 401, "token_missing")
    assert_error(client.delete(JOURNAL), 401, "token_missing")
