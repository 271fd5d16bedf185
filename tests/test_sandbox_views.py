"""GET /sandbox/providers and /sandbox/slots: what the console shows of a tenant's data set."""

from pokitdok_sandbox.fixtures import doc_examples as doc

from .conftest import bearer, get_token
from .helpers import (
    MAIN_OFFICE, PEG, PROVIDER, SECOND_OFFICE, assert_error, book, create_slot, data_of, fresh_window, iso,
)

PROVIDERS = "/api/v4/sandbox/providers"
SLOTS_VIEW = "/api/v4/sandbox/slots"
SEED = "/api/v4/sandbox/seed"
TENANT_B = ("views-tenant-b", "secret-b")


def slots(client, headers, **params) -> dict:
    return data_of(client.get(SLOTS_VIEW, headers=headers, params=params))


def test_providers_are_listed_with_their_locations_by_name(client, auth):
    providers = data_of(client.get(PROVIDERS, headers=auth))
    documented = next(p for p in providers if p["pd_provider_uuid"] == PROVIDER)
    assert documented["name"] == doc.PROVIDERS[0]["name"]
    assert documented["locations"] == [MAIN_OFFICE, SECOND_OFFICE]
    assert [p["name"] for p in providers] == sorted(p["name"] for p in providers)
    summary = data_of(client.post("/api/v4/sandbox/reset", headers=auth))
    assert len(providers) == summary["providers"]


def test_providers_are_the_callers_own(client, auth):
    other = bearer(get_token(client, TENANT_B))
    assert data_of(client.post(SEED, headers=other, json={"seed": 3, "providers": 2, "slots": 5}))["providers"] == 3
    assert len(data_of(client.get(PROVIDERS, headers=other))) == 3  # the documented one and two generated
    assert len(data_of(client.get(PROVIDERS, headers=auth))) > 3


def test_slots_list_open_and_booked_ones_with_provider_and_location(client, auth):
    start, end = fresh_window()
    slot = create_slot(client, auth, start=start, end=end)
    uuid = slot["pd_appointment_uuid"]
    window = {"start_date": iso(start), "end_date": iso(end)}
    page = slots(client, auth, **window)
    assert page["total"] == 1
    (listed,) = page["slots"]
    assert listed == {**slot, "pd_provider_uuid": PROVIDER, "location": MAIN_OFFICE}
    assert slots(client, auth, booked="true", **window)["total"] == 0
    assert data_of(book(client, auth, uuid, PEG))["booked"] is True
    (booked,) = slots(client, auth, booked="true", **window)["slots"]
    assert booked["booked"] is True and booked["patient"]["_uuid"] == PEG
    assert slots(client, auth, booked="false", **window)["total"] == 0


def test_slot_filters_and_limit(client, auth):
    everything = slots(client, auth, limit=5000)
    assert everything["total"] == len(everything["slots"]) > 10
    starts = [s["start_date"] for s in everything["slots"]]
    assert starts == sorted(starts)
    assert {s["pd_appointment_uuid"] for s in everything["slots"]} >= {s["pd_appointment_uuid"] for s in doc.SLOTS}
    first = slots(client, auth, limit=3)
    assert first["total"] == everything["total"] and first["slots"] == everything["slots"][:3]
    documented = slots(client, auth, pd_provider_uuid=PROVIDER, end_date="2015-12-31T00:00:00Z")
    assert {s["pd_appointment_uuid"] for s in documented["slots"]} == {s["pd_appointment_uuid"] for s in doc.SLOTS}
    booked = slots(client, auth, booked="true", limit=5000)["slots"]
    assert booked and all(s["booked"] and s["patient"] for s in booked)
    assert slots(client, auth, start_date="2014-12-16T17:00:00", end_date="2014-12-16T17:00:00")["slots"][0][
        "pd_appointment_uuid"] == doc.DELETABLE_SLOT


def test_slot_view_parameters_are_checked(client, auth):
    assert_error(client.get(SLOTS_VIEW, headers=auth, params={"booked": "maybe"}), 422, "booked")
    assert_error(client.get(SLOTS_VIEW, headers=auth, params={"limit": 0}), 422, "limit")
    assert_error(client.get(SLOTS_VIEW, headers=auth, params={"pd_provider_uuid": "x"}), 422, "pd_provider_uuid")
    assert_error(client.get(SLOTS_VIEW, headers=auth, params={"start_date": "yesterday"}), 422, "start_date")
    assert_error(client.get(SLOTS_VIEW, headers=auth, params={"colour": "red"}), 422, "colour")


def test_views_need_a_valid_token_of_any_scope(client):
    assert_error(client.get(PROVIDERS), 401, "token_missing")
    assert_error(client.get(SLOTS_VIEW), 401, "token_missing")
    for scope in ("user_schedule", "business_schedule"):
        headers = bearer(get_token(client, scope=scope))
        assert data_of(client.get(PROVIDERS, headers=headers))
        assert data_of(client.get(SLOTS_VIEW, headers=headers))["total"] > 0
