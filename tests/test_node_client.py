"""The official Node client, `pokitdok-nodejs` 0.0.11 from npm, against `pokitdok-sandbox serve`.

The client's base URL is a constant (`baseUrl = 'https://platform.pokitdok.com'` near the top of
its index.js); the test rewrites that one line in a copy and changes nothing else. `tests/node/flow.js`
runs a whole scheduling flow with the copy, through a small proxy that counts the requests, and
prints what each step's callback got; the tests below check every step on its data.

What the client does with answers, and why the wire format matters to it: it treats every status
but 200 as an error (`callback(body, response)`), and a 401, or a 400 whose body has no `meta`,
as an expired token: it fetches a new one and retries, forever if the answer stays the same. So a
sandbox answering 201 to a new slot, or 400 to a bad request, breaks it.

The npm package is installed once into a cache directory (`POKITDOK_NODE_CLIENT_DIR`, default
`~/.cache/pokitdok-sandbox/node-client`; `.ci/run` installs it before the tests). Without node or
npm, or when the package cannot be installed, the tests fail under CI (CI=true) and are skipped
elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc

from pokitdok_sandbox.testing import DEMO, SandboxServer, free_port
from .helpers import ROOT

PACKAGE = "pokitdok-nodejs"
VERSION = "0.0.11"
BASE_URL_LINE = "    baseUrl = 'https://platform.pokitdok.com',\n"
FLOW = ROOT / "tests" / "node" / "flow.js"
CACHE = Path(os.environ.get("POKITDOK_NODE_CLIENT_DIR")
             or Path.home() / ".cache" / "pokitdok-sandbox" / "node-client")

# Far from every seeded office: [latitude, longitude] in Fairbanks.
FAR_OFFICE = [64.8378, -147.7164]
SLOT_START, SLOT_END = "2031-05-06T09:00:00", "2031-05-06T10:00:00"
DOC_TYPE_UUID = "ef987693-0a19-447f-814d-f8f3abbf4860"  # the documentation's by-uuid example: OV1, 35 min
PEG = doc.PATIENTS[0]


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str):
    if under_ci():
        pytest.fail(f"{reason} (CI=true: the Node client test must run)")
    pytest.skip(reason)


def installed_client() -> Path:
    """index.js of the npm package in the cache directory, installed there first if needed."""
    if not (shutil.which("node") and shutil.which("npm")):
        unavailable("needs node and npm on PATH (Debian: apt-get install nodejs npm)")
    package = CACHE / "node_modules" / PACKAGE
    manifest = package / "package.json"
    if not manifest.exists() or json.loads(manifest.read_text())["version"] != VERSION:
        CACHE.mkdir(parents=True, exist_ok=True)
        run = subprocess.run(["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(CACHE),
                              f"{PACKAGE}@{VERSION}"], capture_output=True, text=True, timeout=300)
        if run.returncode != 0 or not manifest.exists():
            unavailable(f"npm could not install {PACKAGE}@{VERSION} into {CACHE}: {run.stderr[-2000:]}")
    return package / "index.js"


def redirected_copy(index_js: Path, base_url: str, into: Path) -> Path:
    """The client's index.js with its one `baseUrl` line pointing at `base_url`; nothing else changed."""
    original = index_js.read_text(encoding="utf-8")
    assert original.count(BASE_URL_LINE) == 1, f"{index_js}: the baseUrl line is not where 0.0.11 has it"
    patched = original.replace(BASE_URL_LINE, f"    baseUrl = {json.dumps(base_url)},\n")
    changed = [(a, b) for a, b in zip(original.splitlines(), patched.splitlines()) if a != b]
    assert len(changed) == 1 and len(original.splitlines()) == len(patched.splitlines())
    copy = into / "pokitdok-nodejs.js"
    copy.write_text(patched, encoding="utf-8")
    return copy


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of tests/node/flow.js against a fresh sandbox, as a fresh client id (a tenant of its own)."""
    index_js = installed_client()
    work = tmp_path_factory.mktemp("node-client")
    proxy_port = free_port()
    client = redirected_copy(index_js, f"http://127.0.0.1:{proxy_port}", work)
    server = SandboxServer(work / "db.json").start()
    config = {
        "client": str(client),
        "proxy_port": proxy_port,
        "upstream": server.origin,
        "client_id": f"node-client-{uuid.uuid4()}",
        "client_secret": "its-secret",
        "demo_client_id": DEMO[0],
        "doc": {
            "provider_uuid": doc.PROVIDER_UUID,
            "patient_uuid": PEG["uuid"],
            "far_office": FAR_OFFICE,
            "slot_start": SLOT_START,
            "slot_end": SLOT_END,
            "appointment_type_uuid": DOC_TYPE_UUID,
            "open_slot": doc.OPEN_SLOT,
        },
    }
    try:
        done = subprocess.run(["node", str(FLOW), json.dumps(config)], capture_output=True, text=True, timeout=180,
                              env={**os.environ, "NODE_PATH": str(CACHE / "node_modules")})
    finally:
        server.stop()
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    result["by_name"] = {record["name"]: record for record in result["steps"]}
    return result


def brief(requests: list[dict]) -> str:
    shown = ", ".join(f"{r['method']} {r['path']} {r['status']}" for r in requests[:4])
    return shown + (f", ... ({len(requests)} requests)" if len(requests) > 4 else "")


def step(run, name: str) -> dict:
    """The record of one step: called back exactly once, in time."""
    assert name in run["by_name"], f"the flow stopped at {run['stopped_at']!r} before {name!r}"
    record = run["by_name"][name]
    tokens = sum(r["path"] == "/oauth2/token" for r in record["requests"])
    assert not record["token_loop"], f"{name}: no callback, {tokens} token requests (the client's refresh loop): " \
                                     f"{brief(record['requests'])}"
    assert not record["timed_out"], f"{name}: no callback within 5 s: {brief(record['requests'])}"
    assert record["calls"] == 1, record
    return record


def ok(run, name: str):
    """A step the client reported as a success: a 200 with the envelope; answers `data`."""
    record = step(run, name)
    assert record["error"] is False, f"{name}: HTTP {record['status']}: {json.dumps(record['body'])}"
    body = record["body"]
    assert isinstance(body, dict) and set(body) == {"meta", "data"}, f"{name}: not the envelope: {body!r:.300}"
    assert body["meta"]["application_mode"] == "test" and body["meta"]["activity_id"], body["meta"]
    assert isinstance(body["meta"]["processing_time"], int)
    # One request, and no token request, for every step but the first (which fetched the token).
    if name != "schedulers":
        assert [r["status"] for r in record["requests"]] == [200], record["requests"]
    return body["data"]


def refused(run, name: str, status: int) -> dict:
    """A step the client reported as an error, once, from a single request (no token refresh); answers the errors."""
    record = step(run, name)
    assert record["error"] is True and record["status"] == status, record
    assert [r["status"] for r in record["requests"]] == [status], record["requests"]
    body = record["body"]
    assert isinstance(body, dict) and "meta" in body, f"{name}: not the envelope: {body!r:.300}"
    assert body["meta"]["application_mode"] == "test", body
    errors = body["data"]["errors"]
    assert errors["status"] == status and errors["error"] and errors["message"], errors
    return errors


# -- the token ------------------------------------------------------------------------------------

def test_the_first_call_fetches_the_one_token_of_the_whole_flow(run):
    """The client starts without a token: its first call is a 401, then its own token request, then the retry."""
    first = step(run, "schedulers")
    assert [(r["method"], r["path"], r["status"]) for r in first["requests"]] == [
        ("GET", "/api/v4/schedule/schedulers/", 401),
        ("POST", "/oauth2/token", 200),
        ("GET", "/api/v4/schedule/schedulers/", 200),
    ]
    # Every later step of that connection, refused requests included, used the same token.
    same_connection = [r for record in run["steps"] if record["name"] != "wrong_secret" for r in record["requests"]]
    assert sum(r["path"] == "/oauth2/token" for r in same_connection) == 1
    assert run["stopped_at"] is None


# -- the flow ---------------------------------------------------------------------------------------

def test_schedulers_and_one_by_uuid(run):
    listed = ok(run, "schedulers")
    # The documented schedulers, with the final documentation's `methods_payloads` (none in the sandbox).
    assert sorted(listed, key=lambda s: s["scheduler_uuid"]) == sorted(
        [{**scheduler, "methods_payloads": {}} for scheduler in doc.SCHEDULERS], key=lambda s: s["scheduler_uuid"])
    meta = step(run, "schedulers")["body"]["meta"]
    assert (meta["count"], meta["offset"], meta["next"], meta["previous"]) == (len(doc.SCHEDULERS), 0, None, None)
    assert ok(run, "scheduler_by_uuid") == [listed[0]]
    assert step(run, "scheduler_by_uuid")["requests"][0]["path"] == \
        f"/api/v4/schedule/schedulers/{listed[0]['scheduler_uuid']}"


def test_appointment_types_and_the_documented_one_by_uuid(run):
    listed = ok(run, "appointment_types")
    by_uuid = {kind["appointment_type_uuid"]: kind for kind in listed}
    for documented in doc.APPOINTMENT_TYPES:
        # The documented record, with the final documentation's `category_id` (none) and `owner_id` (the client).
        kind = by_uuid[documented["appointment_type_uuid"]]
        assert kind == {**documented, "category_id": None, "owner_id": kind["owner_id"]}
        assert kind["owner_id"].startswith("node-client-")  # the client the Node script connects as
    [kind] = ok(run, "appointment_type_by_uuid")
    assert kind == by_uuid[DOC_TYPE_UUID] and (kind["type"], kind["duration"]) == ("OV1", 35)


def test_create_appointment_slot_opens_a_slot_with_a_200(run):
    slot = ok(run, "create_slot")
    assert slot["booked"] is False and "patient" not in slot
    # Date-times answered with six fractional digits, as the platform did, for a whole-second request.
    assert (slot["appointment_type"], slot["start_date"], slot["end_date"]) == \
        ("AT1", SLOT_START + ".000000", SLOT_END + ".000000")
    assert slot["provider_scheduler_uuid"] == doc.PROVIDER_SCHEDULER_UUID
    assert uuid.UUID(slot["pd_appointment_uuid"]) and slot["appointment_id"]


def test_add_patient_to_system_answers_the_patient(run):
    assert ok(run, "register_patient") == PEG


def test_search_near_a_place_with_the_clients_own_list_encoding(run):
    slot = ok(run, "create_slot")
    assert ok(run, "search_near") == [slot]
    record = step(run, "search_near")
    assert record["body"]["meta"]["count"] == 1
    # What the client sent: qs's indexed form, brackets percent-encoded.
    path = record["requests"][0]["path"]
    assert f"location%5B0%5D={FAR_OFFICE[0]}&location%5B1%5D={FAR_OFFICE[1]}" in path, path


def test_book_through_the_generic_request_then_read_it_back(run):
    slot = ok(run, "create_slot")
    booked = ok(run, "book")
    assert step(run, "book")["requests"][0]["method"] == "PUT"
    assert booked["pd_appointment_uuid"] == slot["pd_appointment_uuid"] and booked["booked"] is True
    # The patient as sent, with the final documentation's `uuid` beside `_uuid`.
    assert booked["patient"] == {**doc.as_booking_patient(PEG), "uuid": PEG["uuid"]}
    assert booked["description"] == "Booked from Node"
    assert ok(run, "get_booked") == [booked]
    assert slot["pd_appointment_uuid"] in [a["pd_appointment_uuid"] for a in ok(run, "patient_appointments")]


def test_delete_appointment_cancels_and_delete_appointment_slot_removes_it(run):
    slot = ok(run, "create_slot")
    cancelled = ok(run, "cancel")
    assert step(run, "cancel")["requests"][0]["method"] == "DELETE"
    assert cancelled["pd_appointment_uuid"] == slot["pd_appointment_uuid"]
    assert cancelled["booked"] is False and "patient" not in cancelled
    deleted = ok(run, "delete_slot")
    assert step(run, "delete_slot")["requests"][0]["path"] == f"/api/v4/schedule/slots/{slot['pd_appointment_uuid']}"
    assert deleted["pd_appointment_uuid"] == slot["pd_appointment_uuid"] and deleted["booked"] is False
    # Gone: the client hands the 404 to the caller, once, without asking for a token.
    errors = refused(run, "get_deleted", 404)
    assert errors["error"] == "not_found"


# -- refusals: an error for the caller, never a token loop -------------------------------------------

def test_a_search_without_a_selector_is_a_422_the_client_reports_once(run):
    errors = refused(run, "search_without_selector", 422)
    assert errors["validation"] and all(isinstance(m, list) and m for m in errors["validation"].values())


def test_a_slot_ending_before_it_starts_is_a_422_the_client_reports_once(run):
    errors = refused(run, "slot_ending_before_start", 422)
    assert "end_date" in errors["validation"], errors


def test_the_clients_update_appointment_sends_no_body_and_gets_a_422(run):
    """updateAppointment's bug in 0.0.11: the body never leaves the client. The refusal changes nothing."""
    errors = refused(run, "update_appointment_without_body", 422)
    assert errors["validation"], errors
    assert step(run, "update_appointment_without_body")["requests"][0]["method"] == "PUT"
    [still_open] = ok(run, "open_slot_after_refusal")
    assert still_open["pd_appointment_uuid"] == doc.OPEN_SLOT and still_open["booked"] is False
    assert "patient" not in still_open


def test_a_wrong_secret_reaches_the_caller_as_the_token_refusal(run):
    record = step(run, "wrong_secret")
    assert record["error"] is True and record["status"] == 401, record
    assert [(r["path"], r["status"]) for r in record["requests"]] == [
        ("/api/v4/schedule/schedulers/", 401), ("/oauth2/token", 401)]
    assert json.loads(record["body"])["error"] == "invalid_client"


def test_nothing_was_requested_after_the_last_step(run):
    """No retry loop left running in the background: every request belongs to a step."""
    assert sum(len(record["requests"]) for record in run["steps"]) == len(run["requests"])
