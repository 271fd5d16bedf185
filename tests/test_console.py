"""The console page: served by the sandbox, and working in a real browser (Debian's headless Chromium)."""

import json
import re

import httpx
import pytest

from pokitdok_sandbox.console import STATIC

from .headless_chromium import CHROMIUM, Chromium
from .helpers import PEG, PROVIDER, assert_error, data_of, fresh_window, slot_body
from pokitdok_sandbox.testing import running_sandbox


def test_the_console_page_and_its_assets_are_served(client):
    page = client.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    for asset, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        answer = client.get(f"/console/{asset}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert_error(client.get("/console/openapi.yaml"), 404, "path")
    assert_error(client.get("/console/..%2Fapp.py"), 404)
    index = client.get("/")
    assert index.status_code == 200 and "meta" not in index.json()  # the index is not an API answer
    assert index.json()["console"] == "/console"


def test_the_page_runs_no_inline_code_and_calls_only_declared_endpoints(client):
    html = (STATIC / "console.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), "inline event handler"
    spec = client.get("/api/v4/openapi.json").json()
    script = (STATIC / "console.js").read_text(encoding="utf-8")
    called = set(re.findall(r'api\("(GET|POST|PUT|DELETE)", "([^"]+)"', script))
    assert called, "no API calls found in console.js"
    for method, path in called:
        assert method.lower() in spec["paths"].get(path, {}), f"{method} {path} is not in the contract"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium "
                    "(`apt-get install chromium`; .ci/run installs it)")
def test_the_console_shows_a_booking_made_through_the_api(tmp_path):
    start, end = fresh_window()
    day = start.date().isoformat()
    with running_sandbox(tmp_path / "db.json") as server, Chromium() as browser:
        headers = {"Authorization": f"Bearer {server.token()}"}
        data_of(httpx.post(f"{server.api}/sandbox/seed", headers=headers, json={"seed": 7, "providers": 3, "slots": 40}))
        created = httpx.post(f"{server.api}/schedule/slots/", headers=headers, json=slot_body(start, end))
        uuid = data_of(created)["pd_appointment_uuid"]
        row = f'document.querySelector(\'#slots tr[data-slot="{uuid}"]\')'

        # Signing in with the form's prefilled demo client.
        browser.open(f"{server.origin}/console")
        # `complete`: the deferred console.js has run and handles the form (else the click submits it natively).
        browser.wait_for("document.readyState === 'complete' && document.querySelector('#sign-in button') !== null")
        browser.evaluate("document.querySelector('#sign-in button').click()")
        browser.wait_for("document.body.dataset.state === 'signed-in'")
        assert browser.wait_for("document.querySelectorAll('#schedulers tbody tr').length") == 3
        # The re-seed box shows what this tenant was seeded with.
        assert browser.evaluate("['seed', 'seed-providers', 'seed-slots'].map(id => "
                                "document.getElementById(id).value).join()") == "7,3,40"
        # The journal shows the client's request, not the console's own reads of the catalogue.
        rows = "[...document.querySelectorAll('#journal tbody tr')].map(r => r.textContent)"
        assert "create_slot" in browser.wait_for(f"{rows}.find(t => t.includes('create_slot'))", timeout=10)
        assert browser.evaluate(f"{rows}.filter(t => t.includes('schedulers') || t.includes('appointmenttypes'))"
                                ".length") == 0
        assert browser.wait_for(f"{row} !== null")  # unfiltered, the first 500 slots include 2031's
        # (waited for: the slots table may render after the catalogue)

        # Signing in from the URL fragment, filtered to the slot's provider and day.
        browser.open(f"{server.origin}/console#client_id=sandbox-demo&client_secret=sandbox-demo-secret"
                     f"&provider={PROVIDER}&from={day}&to={day}")
        browser.wait_for("document.body.dataset.state === 'signed-in'")
        assert browser.evaluate("location.hash") == ""  # the secret left the address bar
        assert browser.wait_for(f"{row} && {row}.dataset.booked") == "false"
        assert browser.evaluate("document.querySelector('#filter-provider').value") == PROVIDER
        assert browser.evaluate("document.querySelectorAll('#slots tbody tr').length") == 1

        # A booking made through the API shows up on the next periodic refresh, journal included.
        booked = httpx.put(f"{server.api}/schedule/appointments/{uuid}", headers=headers,
                           json={"patient": {"_uuid": PEG}, "description": "booked by the console test"})
        assert data_of(booked)["booked"] is True
        assert browser.wait_for(f"{row}.dataset.booked === 'true' && {row}.textContent", timeout=10)
        text = browser.evaluate(f"{row}.textContent")
        assert "booked" in text and PEG in text and "booked by the console test" in text
        journal = browser.wait_for(
            "[...document.querySelectorAll('#journal tbody tr')].map(r => r.textContent)"
            f".find(t => t.includes('PUT') && t.includes('{uuid}'))", timeout=10)
        assert "update_appointment" in journal

        # A refused request shows its contract violation in the journal.
        refused = assert_error(httpx.post(f"{server.api}/schedule/slots/", headers=headers, json={"nonsense": True}),
                               422, "nonsense")
        violation = browser.wait_for(
            "[...document.querySelectorAll('#journal tbody tr[data-status=\"422\"]')].map(r => r.textContent)"
            ".find(t => t.includes('nonsense'))", timeout=10)
        assert refused["message"] in violation

        # The reset button asks first: one click changes nothing but the button's words.
        browser.evaluate("document.querySelector('#reset').click()")
        assert "confirm" in browser.evaluate("document.querySelector('#reset').textContent")
        assert httpx.get(f"{server.api}/schedule/appointments/{uuid}", headers=headers).status_code == 200
        # A second click puts the data set back: the created slot is gone, the journal empty.
        browser.evaluate("document.querySelector('#reset').click()")
        browser.wait_for(f"{row} === null && document.querySelector('#status').textContent.includes('Reset: done')",
                         timeout=10)
        entries = json.loads(browser.evaluate(
            "JSON.stringify([...document.querySelectorAll('#journal tbody tr')].map(r => r.textContent))"))
        assert not any(uuid in entry for entry in entries)
