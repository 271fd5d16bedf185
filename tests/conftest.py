"""Shared fixtures: a fresh sandbox per test on each backend, and token helpers.

A test that uses `app`, `client`, `auth` or `backend` runs once per backend: in memory
(TinyDB) and on a PostgreSQL database emptied before the test (see `tests/pg.py`).
`make_settings()` answers settings for the backend of the running test.
"""

from __future__ import annotations

import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.settings import Settings

from .pg import SessionDatabase

DEMO = ("sandbox-demo", "sandbox-demo-secret")
API = "/api/v4"
BACKENDS = ("tinydb", "postgresql")

# The store URL of the running test's backend (None: TinyDB in memory).
_store_url: str | None = None


def make_settings(**overrides) -> Settings:
    """On the running test's backend (a `db_path` means a TinyDB file), answers checked against the contract."""
    store_url = None if "db_path" in overrides else _store_url
    return Settings(**{"db_path": None, "store_url": store_url, "validate_responses": True, **overrides})


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def pg_database():
    database = SessionDatabase().create()
    yield database
    database.drop()


@pytest.fixture
def backend(request):
    """The backend of this test run: "tinydb" or "postgresql" (an empty database)."""
    global _store_url
    if request.param == "postgresql":
        database = request.getfixturevalue("pg_database")
        database.wipe()
        _store_url = database.url
    try:
        yield request.param
    finally:
        _store_url = None


@pytest.fixture
def pg_url(pg_database) -> str:
    """An empty PostgreSQL store for tests about PostgreSQL only."""
    pg_database.wipe()
    return pg_database.url


@pytest.fixture
def app(backend):
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


# -- what the suite needed from the machine, said at the end of every run ----------------------

def pytest_terminal_summary(terminalreporter):
    """PostgreSQL, Chromium and Node are not Python packages: say whether this run had them.

    `.ci/run` installs or starts all three; a plain `python -m pytest` skips (or, under CI=true,
    fails) the tests of whatever is missing, each with its reason in the short summary above.
    """
    skipped = terminalreporter.stats.get("skipped", [])

    def skips(word: str) -> int:
        return sum(1 for report in skipped if word in str(report.longrepr))

    needs = [("PostgreSQL", "PostgreSQL", "every API test's second backend; set POKITDOK_SANDBOX_TEST_PG or "
                                          "start a server on 127.0.0.1:5432 (.ci/run does)"),
             ("Chromium", "chromium", "the console test; apt-get install chromium (.ci/run does)"),
             ("Node.js client", "node", "the official Node client's flow; apt-get install nodejs npm (.ci/run does)")]
    terminalreporter.section("what this run needed from the machine")
    for name, word, why in needs:
        count = skips(word)
        terminalreporter.write_line(f"{name}: {'no test skipped for want of it' if count == 0 else f'missing, {count} tests skipped'} ({why})")
