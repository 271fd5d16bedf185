"""The official `pokitdok` 2.8.1 client, unchanged, against `pokitdok-sandbox serve` on a loopback port.

Every scheduling call the client makes goes through the client itself: its OAuth2
client-credentials flow against /oauth2/token, its URLs (base + /api/v4 + path, with the
client's own trailing slashes), its JSON bodies and its query strings. The client answers
the decoded JSON body and keeps the HTTP status in `status_code`; errors come back the
same way (no exception), so the tests check both.

Every answer is the platform's envelope (docs/wire-format.md): a success is a 200 with
`{"meta": {...}, "data": ...}`, and user code reads `answer["data"]` once `answer["meta"]` is
there, as the client's own tests do; every call below goes through `data()` or `assert_error()`,
which check exactly that.

Each test but the demo-client ones connects as a client id of its own (a tenant of its own,
seeded with the documentation's records), so the tests do not depend on each other.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
import warnings
from urllib.parse import parse_qsl, urlsplit

import pokitdok  # the test dependency pokitdok==2.8.1 (pyproject.toml, extra `test`)
import pytest
from oauthlib.oauth2 import InsecureTransportError, InvalidClientError, TokenExpiredError

from pokitdok_sandbox.fixtures import doc_examples as doc

from pokitdok_sandbox.testing import DEMO, SandboxServer, running_sandbox
from .helpers import ROOT

EXAMPLE = ROOT / "examples" / "book_with_pokitdok_client.py"
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"
PROVIDER = doc.PROVIDER_UUID
MAIN_OFFICE = list(doc.PROVIDER_MAIN_OFFICE)
# Far from every seeded office: [latitude, longitude] in Fairbanks, and a place about 5 miles north.
FAR_OFFICE = [64.8378, -147.7164]
FAR_OFFICE_NORTH = [64.9100, -147.7164]
PEG = doc.PATIENTS[0]
JOHN = doc.PATIENTS[1]
# The documentation's booking example, as written there.
DOC_BOOKING = {
    "patient": {
        "_uuid": "500ef469-2767-4901-b705-425e9b6f7f83",
        "email": "john@hondoe.com",
        "phone": "800-555-1212",
        "birth_date": "1970-01-01",
        "first_name": "John",
        "last_name": "Doe",
        "member_id": "M000001",
    },
    "description": "Welcome to M0d3rN Healthcare",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = SandboxServer(tmp_path_factory.mktemp("pokitdok-client") / "db.json").start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module", autouse=True)
def insecure_transport():
    """What the README asks of a user: oauthlib allows OAuth2 over plain HTTP only with this set."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        yield


def connect(server, client_id: str, client_secret: str, **options):
    return pokitdok.api.connect(client_id, client_secret, base=server.origin, **options)


@pytest.fixture
def pd(server):
    """The client, connected as a fresh client id: a tenant of its own, seeded like any other."""
    return connect(server, f"pokitdok-client-{uuid.uuid4()}", "its-secret")


def appointments(pd, **kwargs):
    """`appointments()` as the documentation calls it (2.8.1 warns it will become `get_appointments`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pd.appointments(**kwargs)


def assert_envelope(answer) -> dict:
    """The platform's envelope: `meta` and `data`, nothing else; answers `meta`."""
    assert isinstance(answer, dict) and set(answer) == {"meta", "data"}, answer
    meta = answer["meta"]
    assert meta["application_mode"] == "test" and meta["activity_id"], meta
    assert isinstance(meta["processing_time"], int) and meta["processing_time"] >= 0, meta
    return meta


def data(pd, answer, status: int = 200):
    """What user code reads: `answer["data"]`, once the status and `answer["meta"]` say it succeeded."""
    assert pd.status_code == status, answer
    assert_envelope(answer)
    return answer["data"]


def assert_error(pd, answer, status: int) -> dict:
    """A refusal: 401 (and the rate-limit 403) bare `{"message": ...}`, anything else `data.errors` in the
    envelope (the scope 403 with `data.errors.scope`, as recorded); answers the error."""
    assert pd.status_code == status, answer
    if status == 401 or (status == 403 and "meta" not in answer):
        assert "meta" not in answer and answer["message"] == {401: "Unauthorized", 403: "Forbidden"}[status], answer
        assert answer["error"] and answer["error_description"], answer
        return answer
    assert_envelope(answer)
    errors = answer["data"]["errors"]
    assert errors["status"] == status and errors["error"] and errors["message"], errors
    if status == 422:
        assert errors["validation"] and all(isinstance(m, list) and m for m in errors["validation"].values()), errors
    return errors


def new_slot(pd, location, code, start, end) -> dict:
    return data(pd, pd.schedule_slots({"pd_provider_uuid": PROVIDER, "location": location, "appointment_type": code,
                                       "start_date": start, "end_date": end}))


def uuids(slots) -> list[str]:
    return [slot["pd_appointment_uuid"] for slot in slots]


# -- connect ------------------------------------------------------------------------------------

def test_connect_runs_the_clients_own_token_flow_with_the_demo_client(server):
    pd = connect(server, *DEMO)
    assert pd.token_url == f"{server.origin}/oauth2/token"
    assert pd.token["access_token"] and pd.token["token_type"].lower() == "bearer"
    # The platform's token answer has `expires` (Unix time) beside `expires_in`; oauthlib reads
    # `expires` as a lifetime in seconds and puts it in place of `expires_in`, so `expires_at` lies
    # decades ahead and an expired token shows up as a 401 (see the expired-token test).
    assert "expires" not in pd.token
    assert abs(pd.token["expires_in"] - (time.time() + 3600)) < 60
    assert pd.token["expires_at"] > time.time() + 10 * 365 * 86400
    assert set(pd.token["scope"]) == {"user_schedule", "business_schedule"}
    # The token the client keeps is the one its session sends.
    assert pd.api_client.access_token == pd.token["access_token"]
    assert isinstance(data(pd, pd.schedulers()), list)


def test_connect_with_a_wrong_secret_raises_the_oauth_error(server):
    with pytest.raises(InvalidClientError):
        connect(server, DEMO[0], "not-the-secret")


def test_connect_with_a_narrower_scope_gets_a_token_limited_to_it(server):
    pd = connect(server, DEMO[0], DEMO[1], scope=["user_schedule"])
    assert pd.token["scope"] == ["user_schedule"]
    assert isinstance(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER)), list)
    refused = pd.schedule_slots({"pd_provider_uuid": PROVIDER, "location": MAIN_OFFICE, "appointment_type": "AT1",
                                 "start_date": "2031-06-01T09:00:00", "end_date": "2031-06-01T10:00:00"})
    # What user code of the recorded platform read: resp["data"]["errors"]["scope"].
    assert refused["data"]["errors"]["scope"] == "'business_schedule' scope required to access this API"
    assert "business_schedule" in assert_error(pd, refused, 403)["message"]


def test_a_scope_refusal_names_insufficient_scope_as_the_wire_format_says(server):
    pd = connect(server, DEMO[0], DEMO[1], scope=["user_schedule"])
    refused = pd.schedule_slots({"pd_provider_uuid": PROVIDER, "location": MAIN_OFFICE, "appointment_type": "AT1",
                                 "start_date": "2031-06-01T09:00:00", "end_date": "2031-06-01T10:00:00"})
    assert assert_error(pd, refused, 403)["error"] == "insufficient_scope"


def test_plain_http_needs_the_environment_variable_on_the_client_side(server, monkeypatch):
    """Why the README asks for OAUTHLIB_INSECURE_TRANSPORT=1: without it oauthlib refuses http://."""
    monkeypatch.delenv("OAUTHLIB_INSECURE_TRANSPORT", raising=False)
    with pytest.raises(InsecureTransportError):
        connect(server, *DEMO)


def test_a_base_url_with_a_trailing_slash_works_too(server):
    pd = pokitdok.api.connect(*DEMO, base=server.origin + "/")
    assert [s["scheduler_uuid"] for s in data(pd, pd.schedulers())] == [s["scheduler_uuid"] for s in doc.SCHEDULERS]
    assert data(pd, pd.get_appointments(appointment_uuid=doc.OPEN_SLOT))[0]["pd_appointment_uuid"] == doc.OPEN_SLOT


def test_an_expired_token_raises_unless_the_client_refreshes_it(tmp_path):
    with running_sandbox(tmp_path / "db.json", "--token-ttl", "1") as short_lived:
        plain = connect(short_lived, *DEMO)
        refreshing = connect(short_lived, *DEMO, auto_refresh=True)
        first = refreshing.token["access_token"]
        time.sleep(1.5)
        # The client does not see the expiry itself (see `expires` above): the call goes out, the
        # sandbox answers 401, and 2.8.1 raises TokenExpiredError for it.
        with pytest.raises(TokenExpiredError):
            plain.schedulers()
        assert plain.status_code == 401
        # (2.8.1 does not update `status_code` on the retry after a refresh: read the envelope.)
        retried = refreshing.schedulers()
        assert_envelope(retried)
        assert len(retried["data"]) == len(doc.SCHEDULERS)
        assert refreshing.token["access_token"] != first
        # Or fetch a new token by hand.
        plain.fetch_access_token()
        assert len(data(plain, plain.schedulers())) == len(doc.SCHEDULERS)


# -- schedulers and appointment types -------------------------------------------------------------

def test_schedulers_lists_the_documented_schedulers_and_each_one_by_uuid(pd):
    answer = pd.schedulers()
    listed = data(pd, answer)
    # The documented schedulers, with the final documentation's `methods_payloads` (none in the sandbox).
    assert sorted(listed, key=lambda s: s["scheduler_uuid"]) == sorted(
        [{**scheduler, "methods_payloads": {}} for scheduler in doc.SCHEDULERS], key=lambda s: s["scheduler_uuid"])
    meta = answer["meta"]
    assert (meta["count"], meta["offset"], meta["next"], meta["previous"]) == (len(doc.SCHEDULERS), 0, None, None)
    for scheduler in listed:
        assert data(pd, pd.schedulers(scheduler_uuid=scheduler["scheduler_uuid"])) == [scheduler]
    assert assert_error(pd, pd.schedulers(scheduler_uuid=UNKNOWN_UUID), 404)["error"] == "not_found"


def test_appointment_types_lists_the_documented_types_and_each_one_by_uuid(pd):
    listed = data(pd, pd.appointment_types())
    by_uuid = {kind["appointment_type_uuid"]: kind for kind in listed}
    for documented in doc.APPOINTMENT_TYPES:
        # The documented record, with the final documentation's `category_id` (none) and `owner_id` (the client).
        assert by_uuid[documented["appointment_type_uuid"]] == {**documented, "category_id": None,
                                                                "owner_id": pd.client_id}
    for kind in listed:
        assert data(pd, pd.appointment_types(appointment_type_uuid=kind["appointment_type_uuid"])) == [kind]
    # The documentation's own call.
    [documented] = data(pd, pd.appointment_types(appointment_type_uuid="ef987693-0a19-447f-814d-f8f3abbf4860"))
    assert (documented["type"], documented["duration"]) == ("OV1", 35)
    assert_error(pd, pd.appointment_types(appointment_type_uuid=UNKNOWN_UUID), 404)


# -- slots ------------------------------------------------------------------------------------------

def test_schedule_slots_opens_a_slot_that_appointments_then_returns(pd):
    # The documentation's example, as written there: a 200, as on the platform.
    created = data(pd, pd.schedule_slots({
        "pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8",
        "location": [32.788110, -79.932364],
        "appointment_type": "AT1",
        "start_date": "2014-12-16T15:09:34.197709",
        "end_date": "2014-12-16T16:09:34.197717",
    }))
    assert created["booked"] is False and "patient" not in created
    assert created["provider_scheduler_uuid"] == doc.PROVIDER_SCHEDULER_UUID
    assert (created["appointment_type"], created["start_date"], created["end_date"]) == (
        "AT1", "2014-12-16T15:09:34.197709", "2014-12-16T16:09:34.197717")
    assert data(pd, appointments(pd, appointment_uuid=created["pd_appointment_uuid"])) == [created]
    assert created["pd_appointment_uuid"] in uuids(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER)))
    # The same provider, place and time again: a conflict, as the client surfaces it.
    assert assert_error(pd, pd.schedule_slots({
        "pd_provider_uuid": PROVIDER, "location": MAIN_OFFICE, "appointment_type": "AT1",
        "start_date": "2014-12-16T15:30:00", "end_date": "2014-12-16T16:30:00"}), 409)["error"] == "conflict"


def test_schedule_slots_refuses_a_slot_ending_before_it_starts_with_a_422(pd):
    errors = assert_error(pd, pd.schedule_slots({
        "pd_provider_uuid": PROVIDER, "location": MAIN_OFFICE, "appointment_type": "AT1",
        "start_date": "2031-06-01T10:00:00", "end_date": "2031-06-01T09:00:00"}), 422)
    assert "end_date" in errors["validation"], errors
    assert "2031-06-01" not in [s["start_date"][:10] for s in data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER))]


def test_generic_delete_removes_an_open_slot(pd):
    # The documentation's example: slot ab21e95b-... is open in a fresh sandbox.
    path = f"/schedule/slots/{doc.DELETABLE_SLOT}"
    deleted = data(pd, pd.delete(path))
    assert deleted["pd_appointment_uuid"] == doc.DELETABLE_SLOT and deleted["booked"] is False
    assert_error(pd, appointments(pd, appointment_uuid=doc.DELETABLE_SLOT), 404)
    assert doc.DELETABLE_SLOT not in uuids(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER)))
    assert_error(pd, pd.delete(path), 404)


def test_generic_delete_refuses_a_booked_slot(pd):
    assert_error(pd, pd.delete(f"/schedule/slots/{doc.BOOKED_SLOT}"), 409)
    assert data(pd, appointments(pd, appointment_uuid=doc.BOOKED_SLOT))[0]["booked"] is True


# -- patients ---------------------------------------------------------------------------------------

def test_generic_post_registers_the_documented_patient(pd):
    registered = data(pd, pd.post("/schedule/patient/", data={
        "pd_patient_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7",
        "pd_provider_uuid": "b691b7f9-bfa8-486d-a689-214ae47ea6f8",
        "location": [32.788110, -79.932364],
    }))
    assert registered == PEG
    # Registering again is harmless; an unknown patient is not found.
    assert data(pd, pd.post("/schedule/patient/", data={"pd_patient_uuid": PEG["uuid"],
                                                        "pd_provider_uuid": PROVIDER})) == PEG
    assert_error(pd, pd.post("/schedule/patient/", data={"pd_patient_uuid": UNKNOWN_UUID,
                                                         "pd_provider_uuid": PROVIDER}), 404)


# -- appointments: book, update, cancel ---------------------------------------------------------------

def test_appointments_by_uuid_returns_the_documented_appointment(pd):
    [booked] = data(pd, appointments(pd, appointment_uuid="ef987691-0a19-447f-814d-f8f3abbf4859"))
    assert booked["booked"] is True and booked["appointment_id"] == "UYQDUHSMIRCA"
    assert booked["patient"]["_uuid"] == JOHN["uuid"]
    assert data(pd, pd.get_appointments(appointment_uuid=doc.BOOKED_SLOT)) == [booked]
    assert_error(pd, appointments(pd, appointment_uuid=UNKNOWN_UUID), 404)


def test_book_appointment_books_an_open_slot_and_another_patient_gets_a_conflict(pd):
    slot = new_slot(pd, MAIN_OFFICE, "OV1", "2031-04-01T09:00:00", "2031-04-01T09:30:00")["pd_appointment_uuid"]
    booked = data(pd, pd.book_appointment(slot, {**DOC_BOOKING}))
    assert booked["booked"] is True and booked["pd_appointment_uuid"] == slot
    # The patient as sent, with the final documentation's `uuid` beside `_uuid`.
    assert booked["patient"] == {**DOC_BOOKING["patient"], "uuid": DOC_BOOKING["patient"]["_uuid"]}
    assert booked["description"] == DOC_BOOKING["description"]
    assert data(pd, appointments(pd, appointment_uuid=slot)) == [booked]
    # Booked: no longer among the provider's open slots.
    assert slot not in uuids(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER)))
    # The same patient again is idempotent; another patient is refused and changes nothing.
    assert data(pd, pd.book_appointment(slot, {**DOC_BOOKING})) == booked
    conflict = assert_error(pd, pd.book_appointment(slot, {"patient": {"_uuid": PEG["uuid"]}}), 409)
    assert conflict["field"] == "patient"
    assert data(pd, appointments(pd, appointment_uuid=slot))[0]["patient"]["_uuid"] == JOHN["uuid"]


def test_the_documented_booking_example_rebooks_the_documented_appointment(pd):
    booked = data(pd, pd.book_appointment("ef987691-0a19-447f-814d-f8f3abbf4859", DOC_BOOKING))
    assert booked["booked"] is True and booked["patient"]["_uuid"] == DOC_BOOKING["patient"]["_uuid"]
    assert booked["description"] == "Welcome to M0d3rN Healthcare"


def test_the_description_update_changes_only_the_description(pd):
    before = data(pd, appointments(pd, appointment_uuid=doc.BOOKED_SLOT))[0]
    updated = data(pd, pd.book_appointment(doc.BOOKED_SLOT, {"description": "Welcome to M0d3rN Healthcare"}))
    assert updated == {**before, "description": "Welcome to M0d3rN Healthcare"}
    # `update_appointment` is the client's other name for the same call.
    again = data(pd, pd.update_appointment(doc.BOOKED_SLOT, {"description": "Bring your insurance card"}))
    assert again["description"] == "Bring your insurance card"
    assert data(pd, appointments(pd, appointment_uuid=doc.BOOKED_SLOT))[0] == again
    # An open slot keeps a description too, and stays open.
    opened = data(pd, pd.book_appointment(doc.OPEN_SLOT, {"description": "Morning slot"}))
    assert opened["booked"] is False and opened["description"] == "Morning slot"


def test_cancel_appointment_reopens_the_slot(pd):
    slot = new_slot(pd, MAIN_OFFICE, "OV1", "2031-04-02T09:00:00", "2031-04-02T09:30:00")["pd_appointment_uuid"]
    data(pd, pd.book_appointment(slot, {"patient": {"_uuid": PEG["uuid"]}, "description": "Checkup"}))
    assert slot in uuids(data(pd, pd.get_appointments(patient_uuid=PEG["uuid"])))

    cancelled = data(pd, pd.cancel_appointment(slot))
    assert cancelled["pd_appointment_uuid"] == slot and cancelled["booked"] is False and "patient" not in cancelled
    [now] = data(pd, appointments(pd, appointment_uuid=slot))
    assert now["booked"] is False and "patient" not in now
    assert slot not in uuids(data(pd, pd.get_appointments(patient_uuid=PEG["uuid"])))
    assert slot in uuids(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER, start_date="2031-04-02T00:00:00",
                                                      end_date="2031-04-03T00:00:00")))
    # Nothing left to cancel; another patient can now book it.
    assert_error(pd, pd.cancel_appointment(slot), 409)
    assert data(pd, pd.book_appointment(slot, {"patient": {"_uuid": JOHN["uuid"]}}))["booked"] is True


# -- appointments: every documented filter ------------------------------------------------------------

@pytest.fixture
def three_slots(pd):
    """Three slots of the documented provider in March 2031, two of them far from every seeded office."""
    near = new_slot(pd, MAIN_OFFICE, "AT1", "2031-03-03T10:00:00", "2031-03-03T11:00:00")
    far = new_slot(pd, FAR_OFFICE, "OV1", "2031-03-03T10:15:00", "2031-03-03T10:45:00")
    far_north = new_slot(pd, FAR_OFFICE_NORTH, "AT1", "2031-03-05T10:00:00", "2031-03-05T11:00:00")
    return near["pd_appointment_uuid"], far["pd_appointment_uuid"], far_north["pd_appointment_uuid"]


MARCH = {"start_date": "2031-03-01T00:00:00", "end_date": "2031-04-01T00:00:00"}


@pytest.mark.parametrize("method", ["appointments", "get_appointments"])
def test_appointment_filters_each_narrow_the_answer(pd, three_slots, method):
    near, far, far_north = three_slots

    def search(**filters):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            answer = getattr(pd, method)(**filters)
        return uuids(data(pd, answer))

    # pd_provider_uuid with start_date and end_date: exactly the three, by start.
    assert search(pd_provider_uuid=PROVIDER, **MARCH) == [near, far, far_north]
    assert search(pd_provider_uuid=PROVIDER, start_date="2031-03-04T00:00:00", end_date=MARCH["end_date"]) \
        == [far_north]
    assert search(pd_provider_uuid=PROVIDER, start_date=MARCH["start_date"], end_date="2031-03-04T00:00:00") \
        == [near, far]
    # Without dates the provider's other open slots come too, the documented open ones among them.
    everything = search(pd_provider_uuid=PROVIDER)
    assert {near, far, far_north, doc.OPEN_SLOT, doc.DELETABLE_SLOT} <= set(everything)
    assert doc.BOOKED_SLOT not in everything
    # appointment_type
    assert search(pd_provider_uuid=PROVIDER, appointment_type="AT1", **MARCH) == [near, far_north]
    assert search(pd_provider_uuid=PROVIDER, appointment_type="OV1", **MARCH) == [far]
    # location, as the client sends a list (repeated keys), and as "lat,lon"; radius (default 10mi)
    assert search(location=FAR_OFFICE) == [far, far_north]
    assert search(location=f"{FAR_OFFICE[0]},{FAR_OFFICE[1]}") == [far, far_north]
    assert search(location=FAR_OFFICE, radius="1mi") == [far]
    assert search(location=FAR_OFFICE, radius="2km") == [far]
    assert search(location=FAR_OFFICE_NORTH, radius="1mi") == [far_north]
    assert search(location=FAR_OFFICE, appointment_type="AT1") == [far_north]
    assert near in search(location=MAIN_OFFICE, radius="1mi", **MARCH)
    assert far not in search(location=MAIN_OFFICE, radius="100mi", **MARCH)

    # patient_uuid: booked appointments of that patient only, which leave the open-slot searches.
    data(pd, pd.book_appointment(near, {"patient": {"_uuid": PEG["uuid"]}}))
    data(pd, pd.book_appointment(far_north, {"patient": {"_uuid": doc.QUERY_PATIENT}}))
    assert search(patient_uuid=PEG["uuid"], **MARCH) == [near]
    assert search(patient_uuid=doc.QUERY_PATIENT, **MARCH) == [far_north]
    # Without dates: all of them, by start (the documented 2015 one first, ours last).
    everything = search(patient_uuid=doc.QUERY_PATIENT)
    assert everything[0] == doc.QUERY_PATIENT_SLOT and everything[-1] == far_north and near not in everything
    assert search(pd_provider_uuid=PROVIDER, **MARCH) == [far]
    assert search(location=FAR_OFFICE) == [far]


def test_the_documented_appointments_query_finds_the_documented_booking(pd):
    found = data(pd, appointments(pd, appointment_type="SS1", start_date="2015-01-14T08:00:00",
                                  end_date="2015-01-16T17:00:00", patient_uuid="8ae236ff-9ccc-44b0-8717-42653cd719d0"))
    assert uuids(found) == [doc.QUERY_PATIENT_SLOT]
    assert found[0]["booked"] is True and found[0]["patient"]["_uuid"] == doc.QUERY_PATIENT
    # Each filter narrows: another type, or a window outside the booking, finds nothing.
    assert data(pd, appointments(pd, appointment_type="OV1", patient_uuid=doc.QUERY_PATIENT,
                                 start_date="2015-01-14T08:00:00", end_date="2015-01-16T17:00:00")) == []
    assert data(pd, appointments(pd, appointment_type="SS1", patient_uuid=doc.QUERY_PATIENT,
                                 start_date="2015-01-16T08:00:00", end_date="2015-01-16T17:00:00")) == []


def test_a_query_without_patient_provider_or_location_is_a_422(pd):
    assert_error(pd, pd.get_appointments(appointment_type="AT1"), 422)


def test_a_search_pages_with_limit_and_offset_and_meta_links_to_the_next_page(pd):
    """`limit` and `offset` pass through the client's keyword arguments; `meta.next` carries the same filters."""
    for day in ("07", "08", "09"):
        new_slot(pd, FAR_OFFICE, "AT1", f"2031-07-{day}T09:00:00", f"2031-07-{day}T10:00:00")
    everything = pd.get_appointments(pd_provider_uuid=PROVIDER)
    full = data(pd, everything)
    assert everything["meta"]["count"] == len(full) >= 3 and everything["meta"]["next"] is None

    first = pd.get_appointments(pd_provider_uuid=PROVIDER, limit=2)
    assert data(pd, first) == full[:2]
    meta = first["meta"]
    assert (meta["count"], meta["limit"], meta["offset"], meta["previous"]) == (len(full), 2, 0, None)
    # Follow `next` with the client: its query string becomes the keyword arguments.
    following = dict(parse_qsl(urlsplit(meta["next"]).query))
    assert following == {"pd_provider_uuid": PROVIDER, "limit": "2", "offset": "2"}
    second = pd.get_appointments(**following)
    assert data(pd, second) == full[2:4]
    assert dict(parse_qsl(urlsplit(second["meta"]["previous"]).query))["offset"] == "0"


def test_generic_post_resets_the_tenant(pd):
    """Sandbox administration has no client method; the generic `post` reaches it."""
    data(pd, pd.delete(f"/schedule/slots/{doc.DELETABLE_SLOT}"))
    data(pd, pd.cancel_appointment(doc.BOOKED_SLOT))
    summary = data(pd, pd.post("/sandbox/reset"))
    assert summary["schedulers"] == len(doc.SCHEDULERS) and summary["booked"] > 0
    assert data(pd, appointments(pd, appointment_uuid=doc.DELETABLE_SLOT))[0]["booked"] is False
    assert data(pd, appointments(pd, appointment_uuid=doc.BOOKED_SLOT))[0]["patient"]["_uuid"] == JOHN["uuid"]


# -- the example script ---------------------------------------------------------------------------------

def test_the_example_books_and_cancels_with_the_demo_client(server):
    env = {key: value for key, value in os.environ.items() if key != "OAUTHLIB_INSECURE_TRANSPORT"}
    run = subprocess.run([sys.executable, str(EXAMPLE), "--base", server.origin],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    done = re.search(r"Done: slot ([0-9a-f-]{36}) is open again", run.stdout)
    assert done, run.stdout
    for step in ("pd.schedulers()", "pd.appointment_types()", "pd.book_appointment(", "pd.cancel_appointment("):
        assert step in run.stdout
    # Checked independently of the script: the slot it booked is open, without a patient.
    pd = connect(server, *DEMO)
    [slot] = data(pd, pd.get_appointments(appointment_uuid=done[1]))
    assert slot["booked"] is False and "patient" not in slot
    assert done[1] not in uuids(data(pd, pd.get_appointments(patient_uuid=JOHN["uuid"])))
    assert done[1] in uuids(data(pd, pd.get_appointments(pd_provider_uuid=PROVIDER)))


def test_the_example_fails_loudly_with_wrong_credentials(server):
    run = subprocess.run([sys.executable, str(EXAMPLE), "--base", server.origin, "--client-id", DEMO[0],
                          "--client-secret", "wrong"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "invalid_client" in run.stderr


def test_the_readme_snippet_books_and_cancels(server):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The official Python client"):readme.index("## The contract kit")]
    [snippet] = re.findall(r"```python\n(.*?)```", section, re.S)
    assert 'base="http://127.0.0.1:8000"' in snippet
    names: dict = {}
    exec(compile(snippet.replace("http://127.0.0.1:8000", server.origin), "README.md", "exec"), names)
    pd, slot, booked = names["pd"], names["slot"], names["booked"]
    assert pd.status_code == 200
    assert booked["pd_appointment_uuid"] == slot and booked["booked"] is True
    assert booked["patient"]["_uuid"] == JOHN["uuid"]
    [now] = data(pd, pd.get_appointments(appointment_uuid=slot))
    assert now["booked"] is False and now["description"] == "Checkup"


# -- activities (the final documentation) -----------------------------------------------------------

def test_the_clients_activities_read_back_every_activity_id(pd):
    answer = pd.get("/schedule/schedulers/", application_data='{"ticket": "T-9"}')
    activity_id = answer["meta"]["activity_id"]
    activity = data(pd, pd.activities(activity_id=activity_id))
    assert (activity["id"], activity["name"], activity["state"]["name"]) == (activity_id, "list_schedulers",
                                                                              "completed")
    assert activity["application_data"] == {"ticket": "T-9"}
    assert activity_id in [listed["id"] for listed in data(pd, pd.activities())]
