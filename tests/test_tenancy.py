"""Every OAuth client id is a tenant with its own isolated data set."""

import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.fixtures import doc_examples as doc

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (
    APPOINTMENTS, PEG, SAM, SLOTS, assert_error, assert_oauth_error, book, create_slot, data_of, get_one, open_slots_of,
    search, slot_body, world_view,
)

TENANT_A = ("ci-job-a", "secret-a")
TENANT_B = ("ci-job-b", "secret-b")


@pytest.fixture
def a(client):
    return bearer(get_token(client, TENANT_A))


@pytest.fixture
def b(client):
    return bearer(get_token(client, TENANT_B))


def test_a_new_client_gets_a_seeded_data_set_of_its_own(client, a):
    # The documented records are there for a brand-new tenant too.
    assert get_one(client, a, doc.BOOKED_SLOT)["booked"] is True
    assert doc.DELETABLE_SLOT in {s["pd_appointment_uuid"] for s in open_slots_of(client, a)}


def test_a_slot_of_tenant_a_is_invisible_to_tenant_b(client, a, b):
    b_before = world_view(client, b)
    slot = create_slot(client, a)
    uuid = slot["pd_appointment_uuid"]
    assert_error(client.get(f"{APPOINTMENTS}{uuid}", headers=b), 404, "pd_appointment_uuid")
    assert uuid not in {s["pd_appointment_uuid"] for s in open_slots_of(client, b)}
    assert_error(book(client, b, uuid, SAM), 404, "pd_appointment_uuid")
    assert_error(client.delete(f"{APPOINTMENTS}{uuid}", headers=b), 404, "pd_appointment_uuid")
    assert_error(client.delete(f"{SLOTS}{uuid}", headers=b), 404, "pd_appointment_uuid")
    # A's slot survived B's attempts, untouched.
    assert get_one(client, a, uuid) == slot

    assert data_of(book(client, a, uuid, PEG))["booked"] is True
    assert_error(client.get(f"{APPOINTMENTS}{uuid}", headers=b), 404, "pd_appointment_uuid")
    assert uuid not in {s["pd_appointment_uuid"] for s in search(client, b, {"patient_uuid": PEG})}
    assert_error(client.delete(f"{APPOINTMENTS}{uuid}", headers=b), 404, "pd_appointment_uuid")
    assert data_of(client.delete(f"{APPOINTMENTS}{uuid}", headers=a))["booked"] is False
    assert data_of(client.delete(f"{SLOTS}{uuid}", headers=a))["pd_appointment_uuid"] == uuid
    assert world_view(client, b) == b_before


def test_changes_to_shared_documented_records_stay_in_their_tenant(client, a, b):
    b_before = world_view(client, b)
    # A cancels the documented booking, deletes the documented open slot, books another one.
    assert data_of(client.delete(f"{APPOINTMENTS}{doc.BOOKED_SLOT}", headers=a))["booked"] is False
    assert data_of(client.delete(f"{SLOTS}{doc.DELETABLE_SLOT}", headers=a))["pd_appointment_uuid"] == \
        doc.DELETABLE_SLOT
    assert data_of(book(client, a, doc.OPEN_SLOT, PEG))["booked"] is True
    assert world_view(client, a) != b_before
    assert world_view(client, b) == b_before
    assert get_one(client, b, doc.BOOKED_SLOT)["booked"] is True


def test_the_same_slot_time_is_free_in_another_tenant(client, a, b):
    body = slot_body()
    in_a = data_of(client.post(SLOTS, headers=a, json=body))
    in_b = data_of(client.post(SLOTS, headers=b, json=body))
    assert in_a["pd_appointment_uuid"] != in_b["pd_appointment_uuid"]
    assert in_a["pd_appointment_uuid"] in assert_error(client.post(SLOTS, headers=a, json=body), 409)["message"]


def test_demo_client_is_a_tenant_too(client, auth, a):
    slot = create_slot(client, a)
    assert_error(client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=auth), 404, "pd_appointment_uuid")


def test_reset_of_one_tenant_leaves_the_other_alone(client, a, b):
    slot_b = create_slot(client, b)
    assert data_of(client.post("/api/v4/sandbox/reset", headers=a))["seed"] == 0
    assert get_one(client, b, slot_b["pd_appointment_uuid"]) == slot_b


def test_a_known_client_id_with_another_secret_is_refused(client, a):
    for url in ("/oauth2/token", "/api/v4/oauth2/token"):
        assert_oauth_error(client.post(url, data={"grant_type": "client_credentials"},
                                       auth=(TENANT_A[0], "guessed-secret")), 401, "invalid_client")
    # The demo client's id with another secret too.
    assert_oauth_error(client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=(DEMO[0], "x")),
                       401, "invalid_client")
    # The rightful secret still works.
    assert get_token(client, TENANT_A)


def test_tokens_carry_their_tenant(client, a, b):
    slot = create_slot(client, a)
    # Another token of the same client sees the slot; the other client's token does not.
    again = bearer(get_token(client, TENANT_A, scope="user_schedule"))
    assert get_one(client, again, slot["pd_appointment_uuid"]) == slot
    assert_error(client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=b), 404, "pd_appointment_uuid")


def test_closed_registration_refuses_unknown_clients(backend):
    from pokitdok_sandbox.app import create_app

    from .conftest import make_settings

    app = create_app(make_settings(open_registration=False))
    with app.test_client() as client:
        assert_oauth_error(client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=TENANT_A),
                           401, "invalid_client")
        assert get_token(client, DEMO)


def test_a_tenants_location_searches_run_off_the_loop_one_at_a_time(monkeypatch):
    """While tenant A's location search is in the rules (held there by the test), tenant B is answered
    (the search is not on the event loop), and A's second search waits for its first."""
    import asyncio
    import threading

    import httpx

    app = create_app(make_settings())
    rules = app.sandbox.rules
    inside, most, entered, release = [0], [0], threading.Semaphore(0), threading.Event()
    search_page = rules.search_page

    def held(tenant_id, query, limit, offset):
        if tenant_id == "tenant-a":
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            entered.release()
            release.wait(10)
            inside[0] -= 1
        return search_page(tenant_id, query, limit, offset)

    monkeypatch.setattr(rules, "search_page", held)
    search = {"location": "37,-96", "radius": "3000mi"}

    async def scenario():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
            async def headers(client_id: str) -> dict:
                answer = await client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                           auth=(client_id, "s"))
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            a, b = await headers("tenant-a"), await headers("tenant-b")
            searches = [asyncio.create_task(client.get(APPOINTMENTS, params=search, headers=a)) for _ in range(2)]
            assert await asyncio.to_thread(entered.acquire, timeout=10)
            read = await asyncio.wait_for(client.get(APPOINTMENTS, params=search, headers=b), 5)
            assert read.status_code == 200 and inside[0] == 1
            await asyncio.sleep(0.3)
            assert most[0] == 1  # the second waits its turn
            release.set()
            return [answer.status_code for answer in await asyncio.gather(*searches)]

    assert asyncio.run(scenario()) == [200, 200]
    assert most[0] == 1
