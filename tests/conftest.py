"""Shared fixtures: a fresh in-memory sandbox per test, and token helpers."""

from __future__ import annotations

import pytest

from sandbox.app import create_app
from sandbox.settings import Settings

DEMO = ("sandbox-demo", "sandbox-demo-secret")
API = "/api/v4"


def make_settings(**overrides) -> Settings:
    """In memory, answers checked against the contract too."""
    return Settings(**{"db_path": None, "validate_responses": True, **overrides})


@pytest.fixture
def app():
    return create_app(make_settings())


@pytest.fixture
def client(app):
    with app.test_client() as test_client:
        yield test_client


def get_token(client, credentials=DEMO, scope: str | None = None) -> str:
    form = {"grant_type": "client_credentials"}
    if scope is not None:
        form["scope"] = scope
    answer = client.post("/oauth2/token", data=form, auth=credentials)
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(client) -> dict:
    """Headers with a demo-client token carrying every scope."""
    return bearer(get_token(client))
