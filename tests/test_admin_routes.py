"""Sandbox administration over HTTP: reset/seed of the caller's tenant, and the admin token."""

import re

import httpx
from pokitdok_sandbox.app import create_app

from .conftest import bearer, get_token, make_settings
from .helpers import assert_error, data_of
from pokitdok_sandbox.testing import running_sandbox


def test_with_an_admin_token_reset_and_seed_need_it(backend):
    app = create_app(make_settings(admin_token="s3cret"))
    with app.test_client() as client:
        headers = bearer(get_token(client))
        for path in ("/api/v4/sandbox/reset", "/api/v4/sandbox/seed"):
            refused = assert_error(client.post(path, headers=headers), 403, "admin_token_required")
            assert "X-Sandbox-Admin-Token" in refused["error_description"]
            assert_error(client.post(path, headers={**headers, "X-Sandbox-Admin-Token": "guess"}), 403,
                         "admin_token_required")
            allowed = data_of(client.post(path, headers={**headers, "X-Sandbox-Admin-Token": "s3cret"}))
            assert allowed["slots"] > 0


def test_without_an_admin_token_any_valid_token_resets_its_own_tenant(client, auth):
    assert data_of(client.post("/api/v4/sandbox/reset", headers=auth))["slots"] > 0
    assert_error(client.post("/api/v4/sandbox/reset"), 401, "token_missing")


def test_listening_beyond_loopback_generates_and_requires_an_admin_token(tmp_path):
    with running_sandbox(tmp_path / "db.json", "--host", "0.0.0.0") as server:
        admin = re.search(r"admin token\s+(\S+)", server.output).group(1)
        headers = {"Authorization": f"Bearer {server.token()}"}
        assert_error(httpx.post(f"{server.api}/sandbox/reset", headers=headers), 403, "admin_token_required")
        allowed = httpx.post(f"{server.api}/sandbox/reset", headers={**headers, "X-Sandbox-Admin-Token": admin})
        assert data_of(allowed)["slots"] > 0
