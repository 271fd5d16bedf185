"""What a new user meets first: starting the server (a port in use, any free port, no file at all),
paths written with a slash too many, a body missing several fields, the console's own requests,
and one name for the demo client's credentials."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx

from pokitdok_sandbox.contract_tests.options import from_values
from pokitdok_sandbox.settings import DEFAULT_DB, Settings
from pokitdok_sandbox.testing import SandboxServer

from .helpers import APPOINTMENTS, ROOT, SLOTS, assert_error, data_of

BOOKED = "ef987691-0a19-447f-814d-f8f3abbf4859"


def test_a_port_in_use_is_said_with_its_option_before_any_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", "--port", str(port),
                                 "--db", str(tmp_path / "db.json")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert "Traceback" not in result.stderr and "pokitdok-sandbox on" not in result.stdout
    assert not (tmp_path / "db.json").exists()  # nothing opened either


def test_port_0_prints_the_port_it_got_and_memory_keeps_no_file(tmp_path):
    server = SandboxServer(":memory:", cwd=tmp_path).start()
    try:
        assert server.port not in (None, 0)
        assert f"pokitdok-sandbox on http://127.0.0.1:{server.port}  (store: memory)" in server.output
        assert f"http://127.0.0.1:{server.port}/oauth2/token" in server.output and ":0/" not in server.output
        assert httpx.get(f"{server.api}/schedule/schedulers/",
                         headers={"Authorization": f"Bearer {server.token()}"}).status_code == 200
    finally:
        server.stop()
    assert list(tmp_path.iterdir()) == []


def test_an_item_path_with_a_trailing_slash_is_answered_as_the_documented_one(client, auth):
    documented = data_of(client.get(f"{APPOINTMENTS}{BOOKED}", headers=auth))
    assert data_of(client.get(f"{APPOINTMENTS}{BOOKED}/", headers=auth)) == documented
    updated = data_of(client.put(f"{APPOINTMENTS}{BOOKED}/", json={"description": "with a slash"}, headers=auth))
    assert updated["description"] == "with a slash"
    # not an item of the contract: still the error shape, never an empty redirect
    assert_error(client.get(f"{APPOINTMENTS}{BOOKED}/more/", headers=auth), 404)


def test_a_body_missing_several_required_fields_names_them_all(client, auth):
    errors = assert_error(client.post(SLOTS, json={"pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8"},
                                      headers=auth), 422, "location")
    for name in ("location", "appointment_type", "start_date", "end_date"):
        assert name in errors["message"], errors["message"]
    # one missing: said as before, with what to send
    body = {"pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8", "location": [32.78811, -79.932364],
            "appointment_type": "AT1", "start_date": "2031-01-06T09:00:00"}
    assert "ISO 8601" in assert_error(client.post(SLOTS, json=body, headers=auth), 422, "end_date")["message"]


def test_the_console_s_own_reads_stay_out_of_the_journal_it_shows(client, auth):
    client.delete("/api/v4/sandbox/journal", headers=auth)
    client.get("/api/v4/schedule/schedulers/", headers={**auth, "X-Sandbox-Console": "1"})
    client.get("/api/v4/schedule/appointmenttypes/", headers=auth)
    entries = data_of(client.get("/api/v4/sandbox/journal", headers=auth))["entries"]
    assert [entry["path"] for entry in entries] == ["/api/v4/schedule/appointmenttypes/"]


def test_the_data_set_summary_shows_what_it_was_seeded_with(client, auth):
    data_of(client.post("/api/v4/sandbox/seed", json={"seed": 7, "providers": 3, "slots": 40}, headers=auth))
    summary = data_of(client.get("/api/v4/sandbox/dataset", headers=auth))
    assert (summary["seed"], summary["seed_providers"], summary["seed_slots"]) == (7, 3, 40)


def test_server_and_kit_read_the_demo_client_from_the_same_variables(monkeypatch):
    monkeypatch.setenv("POKITDOK_SANDBOX_CLIENT_ID", "team-client")
    monkeypatch.setenv("POKITDOK_SANDBOX_CLIENT_SECRET", "team-secret")
    settings, kit = Settings.from_env(), from_values({})
    assert (settings.demo_client_id, settings.demo_client_secret) == (kit.client_id, kit.client_secret) \
        == ("team-client", "team-secret")


def test_the_default_database_s_lock_file_is_ignored_by_git():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    for suffix in ("", ".journal", ".lock"):
        assert f"/{DEFAULT_DB}{suffix}" in ignored
