"""Bounded work: the limits on tenants, slots, seeds and search radius; client ids; /healthz.

Every limit is refused with a 4xx saying what to send instead, and the refused request changes
nothing. On both backends (the `backend` fixture).
"""

from __future__ import annotations

import base64
from urllib.parse import quote

import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.settings import Limits, Settings

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import APPOINTMENTS, PROVIDER, SCHEDULERS, SLOTS, create_slot, fresh_window, slot_body
from .refusals import INVALID, payload, refusal

GRANT = {"grant_type": "client_credentials"}
SEED = "/api/v4/sandbox/seed"


def _sandbox(**limits):
    return create_app(make_settings(limits=Limits(**limits)))


def _summary(client, headers) -> dict:
    return payload(client.post("/api/v4/sandbox/reset", headers=headers))


# -- tenants --------------------------------------------------------------------------------------

def test_registration_stops_at_the_tenant_limit(backend):
    with _sandbox(tenants=3).test_client() as client:  # the demo client and two more
        assert get_token(client, ("ci-1", "s"))
        assert get_token(client, ("ci-2", "s"))
        error = refusal(client.post("/oauth2/token", data=GRANT, auth=("ci-3", "s")), 403)
        assert "3 client ids" in error["message"] and "--max-tenants" in error["message"]
        # Known clients go on getting tokens; the refused id was not registered.
        assert get_token(client, ("ci-1", "s")) and get_token(client, DEMO)
        refusal(client.post("/oauth2/token", data=GRANT, auth=("ci-3", "s")), 403)


# -- slots per tenant, size of a seed -------------------------------------------------------------

def test_slot_creation_stops_at_the_tenant_slot_limit(backend):
    with create_app(make_settings()).test_client() as probe:
        seeded = _summary(probe, bearer(get_token(probe)))["slots"]
    with _sandbox(tenant_slots=seeded + 1).test_client() as client:
        headers = bearer(get_token(client))
        create_slot(client, headers)
        body = slot_body()
        error = refusal(client.post(SLOTS, headers=headers, json=body), 409)
        assert f"{seeded + 1} slots" in error["message"] and "--max-tenant-slots" in error["message"]
        # Nothing was stored: after deleting one slot the same request succeeds.
        found = client.get(APPOINTMENTS, headers=headers, params={"pd_provider_uuid": body["pd_provider_uuid"],
                                                                   "start_date": body["start_date"]})
        assert all(slot["start_date"] != body["start_date"] for slot in payload(found))


@pytest.mark.parametrize("field, value", [("slots", 501), ("providers", 11)])
def test_a_seed_over_the_limit_is_refused_and_changes_nothing(backend, field, value):
    with _sandbox(seed_slots=500, seed_providers=10).test_client() as client:
        headers = bearer(get_token(client))
        before = _summary(client, headers)
        error = refusal(client.post(SEED, headers=headers, json={"seed": 3, field: value}), INVALID)
        assert error["field"] == field and "--max-seed-" in error["message"] and "at most" in error["message"]
        assert _summary(client, headers) == before
        ok = client.post(SEED, headers=headers, json={"seed": 3, field: value - 1})
        assert payload(ok)["seed"] == 3


# -- search radius --------------------------------------------------------------------------------

def test_a_search_radius_over_the_limit_is_refused(backend):
    with _sandbox(radius_miles=100).test_client() as client:
        headers = bearer(get_token(client))
        near = {"location": "32.78811,-79.932364"}
        assert client.get(APPOINTMENTS, headers=headers, params={**near, "radius": "100mi"}).status_code == 200
        for radius in ("101mi", "200km", "25000mi"):
            error = refusal(client.get(APPOINTMENTS, headers=headers, params={**near, "radius": radius}), INVALID)
            assert error["field"] == "radius" and "100 miles" in error["message"]


# -- client ids -----------------------------------------------------------------------------------

def _basic(client_id: str, secret: str = "x") -> dict:
    raw = f"{quote(client_id, safe='')}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


BAD_IDS = ["nul\x00id", "line\nbreak", "tab\tid", "x" * 201]


@pytest.mark.parametrize("client_id", BAD_IDS + [""])
def test_bad_client_ids_are_refused_by_http_basic(client, client_id):
    error = refusal(client.post("/oauth2/token", data=GRANT, headers=_basic(client_id)), 401)
    assert error["field"] in (None, "client_id") and "client_id" in error["message"]


@pytest.mark.parametrize("client_id", BAD_IDS)
def test_bad_client_ids_are_refused_in_the_form(client, client_id):
    form = {**GRANT, "client_id": client_id, "client_secret": "x"}
    error = refusal(client.post("/oauth2/token", data=form), 401)
    assert error["field"] in (None, "client_id") and "printable" in error["message"]


def test_an_empty_client_id_is_refused_both_ways(client):
    refusal(client.post("/oauth2/token", data={**GRANT, "client_id": "", "client_secret": "x"}), 401)
    refusal(client.post("/oauth2/token", data=GRANT, auth=("", "x")), 401)


def test_a_refused_client_id_registers_nothing(app, client):
    refusal(client.post("/oauth2/token", data=GRANT, headers=_basic("nul\x00id")), 401)
    refusal(client.post("/oauth2/token", data=GRANT, auth=("", "x")), 401)
    assert app.sandbox.tenants.store.client_count() == 1  # the demo client only


@pytest.mark.parametrize("client_id", ["ci-job-7", "équipe ☂", "x" * 200, "a:b"])
def test_printable_client_ids_work_both_ways(client, client_id):
    assert client.post("/oauth2/token", data=GRANT, headers=_basic(client_id, "s")).status_code == 200
    form = {**GRANT, "client_id": client_id, "client_secret": "s"}
    assert client.post("/oauth2/token", data=form).status_code == 200


# -- /healthz -------------------------------------------------------------------------------------

def test_healthz_says_the_store_answers(client):
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert "password" not in answer.text


# -- settings and flags ---------------------------------------------------------------------------

def test_limits_come_from_flags_and_environment(monkeypatch):
    monkeypatch.setenv("POKITDOK_SANDBOX_MAX_TENANTS", "7")
    settings = Settings.from_env(limits={"radius_miles": 50.0, "tenants": None})
    assert settings.limits.tenants == 7 and settings.limits.radius_miles == 50
    # Worker processes get them back from the environment.
    monkeypatch.delenv("POKITDOK_SANDBOX_MAX_TENANTS")
    for name, value in settings.to_env().items():
        monkeypatch.setenv(name, value)
    assert Settings.from_env().limits == settings.limits


def test_serve_refuses_a_negative_limit(capsys):
    from pokitdok_sandbox.cli import main

    assert main(["serve", "--db", "unused.json", "--max-tenants", "-1"]) == 2
    assert "--max-tenants" in capsys.readouterr().err


# -- limits across tenants ------------------------------------------------------------------------

def test_slots_of_all_tenants_together_stop_at_the_global_limit(backend):
    with create_app(make_settings()).test_client() as probe:
        seeded = _summary(probe, bearer(get_token(probe)))["slots"]
    # Room for the demo tenant and one more slot: a second tenant's first request would pass it.
    with _sandbox(slots=seeded + 1).test_client() as client:
        headers = bearer(get_token(client))
        create_slot(client, headers)
        error = refusal(client.post(SLOTS, headers=headers, json=slot_body()), 409)
        assert "--max-slots" in error["message"] and error["field"] == "slots", error
        error = refusal(client.post(SEED, headers=headers, json={"slots": seeded + 50}), 409)
        assert "--max-slots" in error["message"], error
        assert _summary(client, headers)["slots"] == seeded  # (a reset to the seeded size fits)
        other = bearer(get_token(client, ("another-tenant", "s")))
        error = refusal(client.get(APPOINTMENTS, headers=other, params={"pd_provider_uuid": PROVIDER}), 409)
        assert "--max-slots" in error["message"]


def test_a_client_keeps_at_most_its_cap_of_live_tokens_oldest_dropped(backend):
    with _sandbox(client_tokens=3).test_client() as client:
        tokens = [get_token(client) for _ in range(5)]
        answers = [client.get(SCHEDULERS, headers=bearer(token)).status_code for token in tokens]
        assert answers == [401, 401, 200, 200, 200]


def test_the_tenant_cap_holds_under_concurrent_registrations_across_workers(pg_url):
    """PostgreSQL, 4 worker processes, 30 new client ids at once against a cap of 10: exactly 10 registered."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    import psycopg

    from pokitdok_sandbox.testing import running_sandbox

    with running_sandbox(pg_url, "--workers", "4", "--max-tenants", "10") as server:
        def register(number: int) -> int:
            return httpx.post(f"{server.origin}/oauth2/token", data=GRANT, auth=(f"race-{number}", "s"),
                              timeout=30).status_code

        with ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(register, range(30)))
    with psycopg.connect(pg_url) as conn:
        clients = conn.execute("SELECT count(*) FROM pokitdok_sandbox.clients").fetchone()[0]
    assert clients == 10 and statuses.count(200) == 9 and statuses.count(403) == 21, (clients, statuses)


def test_the_global_slot_cap_holds_under_concurrent_creations_across_workers(pg_url):
    """PostgreSQL, 4 worker processes, 30 new slots at once with room for 10 under --max-slots:
    exactly 10 created, and the store holds exactly the cap."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import asdict

    import httpx
    import psycopg

    from pokitdok_sandbox.datasets import SeedSettings
    from pokitdok_sandbox.fixtures import generate_dataset
    from pokitdok_sandbox.testing import running_sandbox

    seeded = len(generate_dataset(**asdict(SeedSettings()))["slots"])  # the demo tenant's, made at start
    with running_sandbox(pg_url, "--workers", "4", "--max-slots", str(seeded + 10)) as server:
        token = httpx.post(f"{server.origin}/oauth2/token", data=GRANT, auth=DEMO, timeout=30).json()["access_token"]

        def create(window) -> int:
            return httpx.post(f"{server.origin}{SLOTS}", json=slot_body(*window), timeout=30,
                              headers={"Authorization": f"Bearer {token}"}).status_code

        with ThreadPoolExecutor(30) as pool:
            statuses = list(pool.map(create, [fresh_window() for _ in range(30)]))
    with psycopg.connect(pg_url) as conn:
        total = conn.execute("SELECT sum(slot_count)::int FROM pokitdok_sandbox.tenants").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM pokitdok_sandbox.slots").fetchone()[0]
    assert total == rows == seeded + 10 and statuses.count(200) == 10 and statuses.count(409) == 20, \
        (total, rows, statuses)



def test_the_global_slot_cap_holds_under_concurrent_seeds_across_workers(pg_url):
    """PostgreSQL, 4 worker processes: six tenants each asking at once for a seed 100 slots larger than
    their data set, with room under --max-slots for two of them: exactly two seeded, the other four
    refused with nothing changed, and the store holds what the two added."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import asdict, replace

    import httpx
    import psycopg

    from pokitdok_sandbox.datasets import SeedSettings
    from pokitdok_sandbox.fixtures import generate_dataset
    from pokitdok_sandbox.testing import running_sandbox

    seeded = len(generate_dataset(**asdict(SeedSettings()))["slots"])  # every tenant's first data set
    larger = len(generate_dataset(**asdict(replace(SeedSettings(), seed=5, slots=seeded + 100)))["slots"])
    clients = [(f"seed-race-{number}", "s") for number in range(6)]
    with running_sandbox(pg_url, "--workers", "4", "--max-slots", str(7 * seeded + 250)) as server:
        def opened(client) -> dict:
            token = httpx.post(f"{server.origin}/oauth2/token", data=GRANT, auth=client, timeout=30).json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            assert httpx.get(f"{server.origin}{SCHEDULERS}", headers=headers, timeout=30).status_code == 200
            return headers

        headers = [opened(client) for client in clients]  # the demo tenant and six more: 7 data sets

        def seed(client_headers) -> int:
            return httpx.post(f"{server.origin}{SEED}", json={"seed": 5, "slots": seeded + 100}, timeout=60,
                              headers=client_headers).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(seed, headers))
    with psycopg.connect(pg_url) as conn:
        total = conn.execute("SELECT sum(slot_count)::int FROM pokitdok_sandbox.tenants").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM pokitdok_sandbox.slots").fetchone()[0]
    assert statuses.count(200) == 2 and statuses.count(409) == 4, statuses
    assert total == rows == 5 * seeded + 2 * larger, (total, rows)


def test_a_token_dropped_by_the_token_cap_is_refused_by_every_worker(pg_url):
    """PostgreSQL, 4 worker processes, --max-client-tokens 1: a token used on every worker (each
    caches it), then dropped by a newer one, is refused by all of them once the cached copies are
    due for a re-read (`TOKEN_RECHECK_SECONDS`); the newer token works."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from pokitdok_sandbox.stores.postgres import TOKEN_RECHECK_SECONDS
    from pokitdok_sandbox.testing import running_sandbox

    with running_sandbox(pg_url, "--workers", "4", "--max-client-tokens", "1") as server:
        def token() -> str:
            return httpx.post(f"{server.origin}/oauth2/token", data=GRANT, auth=DEMO, timeout=30).json()["access_token"]

        def statuses(access_token: str) -> list[int]:
            def read(_number: int) -> int:
                return httpx.get(f"{server.origin}{SCHEDULERS}", headers={"Authorization": f"Bearer {access_token}"},
                                 timeout=30).status_code
            with ThreadPoolExecutor(16) as pool:
                return list(pool.map(read, range(64)))

        first = token()
        assert set(statuses(first)) == {200}  # spread over the workers: each has it cached now
        second = token()  # the client's one live token: the first is dropped
        time.sleep(TOKEN_RECHECK_SECONDS + 0.2)
        assert set(statuses(first)) == {401}
        assert set(statuses(second)) == {200}
