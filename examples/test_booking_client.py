"""Your own scheduling client, tested against the sandbox from your test suite. Copy this file.

    pip install pokitdok-sandbox pytest pytest-xdist
    pytest -n 2 test_booking_client.py

Installing pokitdok-sandbox installs its pytest plugin: `pokitdok_tenant` gives each test a fresh
tenant of a sandbox the session starts on a free port (base URL, client id and secret, a ready
token). Each test has data of its own, so the tests need no reset and run in parallel.
`SchedulingClient` stands for your code; replace it with yours.
"""

from __future__ import annotations

import httpx
import pytest

# Records every new tenant has: the documentation's provider and patients
# (contract_tests/data/pokitdok-scheduling-v4.md).
PROVIDER = "b691b7f9-bfa8-486d-a689-214ae47ea6f8"
JOHN_DOE = {"_uuid": "500ef469-2767-4901-b705-425e9b6f7f83", "first_name": "John", "last_name": "Doe"}
PEG = {"_uuid": "2773f6ff-00cb-460f-823f-5ff2208511e7", "first_name": "Peg", "last_name": "Patient"}


class SchedulingClient:
    """A small PokitDok Platform API v4 scheduling client, as an application would have one."""

    def __init__(self, base_url: str, client_id: str, client_secret: str):
        origin = base_url.split("/api/")[0]
        token = httpx.post(f"{origin}/oauth2/token", data={"grant_type": "client_credentials"},
                           auth=(client_id, client_secret)).json()["access_token"]
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"})

    def _data(self, answer: httpx.Response):
        answer.raise_for_status()
        return answer.json()["data"]  # every answer is the envelope {meta, data}

    def open_slots(self, provider: str) -> list[dict]:
        return self._data(self.http.get("/schedule/appointments/", params={"pd_provider_uuid": provider}))

    def book(self, slot: str, patient: dict) -> dict:
        return self._data(self.http.put(f"/schedule/appointments/{slot}", json={"patient": patient}))

    def cancel(self, slot: str) -> dict:
        return self._data(self.http.delete(f"/schedule/appointments/{slot}"))

    def appointments_of(self, patient_uuid: str) -> list[dict]:
        return self._data(self.http.get("/schedule/appointments/", params={"patient_uuid": patient_uuid}))


@pytest.fixture
def client(pokitdok_tenant) -> SchedulingClient:
    return SchedulingClient(pokitdok_tenant.base_url, pokitdok_tenant.client_id, pokitdok_tenant.client_secret)


def test_book_then_cancel(client):
    slot = client.open_slots(PROVIDER)[0]["pd_appointment_uuid"]

    booked = client.book(slot, JOHN_DOE)
    assert booked["booked"] is True
    assert slot in [a["pd_appointment_uuid"] for a in client.appointments_of(JOHN_DOE["_uuid"])]
    assert slot not in [s["pd_appointment_uuid"] for s in client.open_slots(PROVIDER)]

    client.cancel(slot)
    assert slot not in [a["pd_appointment_uuid"] for a in client.appointments_of(JOHN_DOE["_uuid"])]
    assert slot in [s["pd_appointment_uuid"] for s in client.open_slots(PROVIDER)]


def test_a_slot_booked_by_someone_else_is_refused(client):
    slot = client.open_slots(PROVIDER)[0]["pd_appointment_uuid"]
    client.book(slot, PEG)
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.book(slot, JOHN_DOE)
    assert refused.value.response.status_code == 409


@pytest.mark.parametrize("patient", [JOHN_DOE, PEG], ids=["john", "peg"])
def test_every_test_has_its_own_data(client, patient):
    # Both tests book the same first open slot: only possible because neither sees the other's booking.
    slot = client.open_slots(PROVIDER)[0]["pd_appointment_uuid"]
    assert client.book(slot, patient)["patient"]["_uuid"] == patient["_uuid"]


def test_your_own_records(pokitdok_tenant, client):
    # A fixture (docs/fixture-files.md) inline; a file works too: pokitdok_tenant.load("clinic.yaml"),
    # or for every test: pytest --sandbox-fixture clinic.yaml
    pokitdok_tenant.load({
        "format": "pokitdok-sandbox/tenant", "version": 1,
        "providers": [{"pd_provider_uuid": PROVIDER, "name": "Dr. X", "locations": [[32.78811, -79.932364]]}],
        "patients": [{"uuid": JOHN_DOE["_uuid"], "first_name": "John", "last_name": "Doe"}],
        "slots": [
            {"pd_provider_uuid": PROVIDER, "appointment_type": "OV1", "patient": JOHN_DOE["_uuid"],
             "start_date": "2027-01-04T09:00:00", "end_date": "2027-01-04T09:30:00"},
            {"pd_provider_uuid": PROVIDER, "appointment_type": "OV1",
             "start_date": "2027-01-04T10:00:00", "end_date": "2027-01-04T10:30:00"},
        ],
    })
    [open_slot] = client.open_slots(PROVIDER)
    assert open_slot["start_date"] == "2027-01-04T10:00:00.000000"
    [appointment] = client.appointments_of(JOHN_DOE["_uuid"])
    assert appointment["start_date"] == "2027-01-04T09:00:00.000000"
