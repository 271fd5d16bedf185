"""The fast path (`sandbox/middleware/fast_path.py`) answers exactly as Connexion's full stack.

Two sandboxes with the same seed, one with the fast path and one without, take the same
requests in the same order: valid, invalid, unauthorised, to every operation the fast path
takes, and a few it hands on. Every answer must have the same status, the same body (but the
activity id and processing time of `meta`) and the same headers that matter; and at the end
both request journals hold the same entries. The records a request creates get new uuids on
each side: later requests name each side's own.
"""

from __future__ import annotations

import json
import re

import pytest

from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.middleware import fast_path

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (APPOINTMENT_TYPES, APPOINTMENTS, EVERYWHERE, JOHN, MAIN_OFFICE, PATIENT, PEG, PROVIDER, SAM,
                      SCHEDULERS, SLOTS, UNKNOWN_UUID, fresh_window, iso)

HEADERS = ("content-type", "etag", "www-authenticate", "allow", "retry-after", "cache-control")
VOLATILE_META = ("activity_id", "processing_time")
VOLATILE_ACTIVITY = ("id", "created_date", "last_updated_date", "history")
SCHEDULER = "967d207f-b024-41cc-8cac-89575a1f6fef"
DAY = {"pd_provider_uuid": PROVIDER, "start_date": "2026-12-07T00:00:00", "end_date": "2026-12-08T00:00:00"}
MONTH = {"pd_provider_uuid": PROVIDER, "start_date": "2026-12-01T00:00:00", "end_date": "2027-01-01T00:00:00"}


class Side:
    """One sandbox, its tokens, and the uuids its answers gave to names of the script."""

    def __init__(self, fast: bool):
        self.app = create_app(make_settings(fast_path=fast))
        self.client = self.app.test_client().__enter__()
        full = get_token(self.client, DEMO)
        self.tokens = {
            "full": bearer(full),
            "user": bearer(get_token(self.client, DEMO, scope="user_schedule")),
            "business": bearer(get_token(self.client, DEMO, scope="business_schedule")),
            "none": {},
            "unknown": bearer("not-a-token-this-server-issued"),
            "basic": {"Authorization": "Basic c2FuZGJveC1kZW1vOnNhbmRib3gtZGVtby1zZWNyZXQ="},
            "bare": {"Authorization": "Bearer"},
        }
        self.names: dict[str, str] = {}  # name in the script -> uuid
        self.own: dict[str, str] = {}  # an id only this side's answers give -> its name

    def keep(self, name: str, answer) -> None:
        """The new record's ids, named: later requests and comparisons use the name."""
        assert answer.status_code == 200, answer.text
        record = answer.json()["data"]
        self.names[name] = record["pd_appointment_uuid"]
        self.own[record["pd_appointment_uuid"]] = f"<{name}>"
        self.own[record["appointment_id"]] = f"<{name} id>"

    def send(self, method: str, path: str, token: str = "full", headers: dict | None = None, **kwargs):
        path = re.sub(r"\{(\w+)\}", lambda m: self.names[m[1]], path)
        answer = self.client.request(method, path, headers={**self.tokens[token], **(headers or {})}, **kwargs)
        return answer


def comparable(side: Side, answer) -> tuple:
    text = answer.text
    for value, name in side.own.items():
        text = text.replace(value, name)
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict) and isinstance(body.get("meta"), dict):
        body["meta"] = {k: v for k, v in body["meta"].items() if k not in VOLATILE_META}
        if isinstance(body.get("data"), list):  # activities: each request's own id and moments
            body["data"] = [{k: v for k, v in item.items() if k not in VOLATILE_ACTIVITY}
                            if isinstance(item, dict) and "transition_path" in item else item for item in body["data"]]
    return answer.status_code, body, {name: answer.headers.get(name) for name in HEADERS}, \
        "x-activity-id" in answer.headers


def _new_slot(start, end, provider=PROVIDER, location=MAIN_OFFICE, kind="AT1") -> dict:
    return {"pd_provider_uuid": provider, "location": location, "appointment_type": kind,
            "start_date": iso(start), "end_date": iso(end)}


def script() -> list[tuple]:
    """(name to keep the answer's uuid under or None, method, path, options)."""
    start, end = fresh_window()
    later, _ = fresh_window()
    steps = [
        # the catalogue
        (None, "GET", SCHEDULERS, {}),
        (None, "GET", SCHEDULERS, {"params": {"limit": 2}}),
        (None, "GET", SCHEDULERS, {"params": {"limit": 1, "offset": 1}}),
        (None, "GET", SCHEDULERS, {"params": {"limit": "abc"}}),
        (None, "GET", SCHEDULERS, {"params": {"limit": 5000}}),
        (None, "GET", SCHEDULERS, {"params": {"offset": -1}}),
        (None, "GET", SCHEDULERS, {"params": {"colour": "blue"}}),
        (None, "GET", SCHEDULERS.rstrip("/"), {}),
        (None, "GET", "/" + SCHEDULERS, {}),
        (None, "GET", SCHEDULERS, {"headers": {"If-None-Match": 'W/"whatever"'}}),
        (None, "GET", SCHEDULERS, {"headers": {"If-None-Match": "*"}}),
        (None, "GET", SCHEDULERS + SCHEDULER, {}),
        (None, "GET", SCHEDULERS + UNKNOWN_UUID, {}),
        (None, "GET", SCHEDULERS + "not-a-uuid", {}),
        (None, "GET", APPOINTMENT_TYPES, {}),
        (None, "GET", APPOINTMENT_TYPES, {"params": {"limit": 3, "offset": 2}}),
        (None, "GET", APPOINTMENT_TYPES + UNKNOWN_UUID, {}),
        # searches
        (None, "GET", APPOINTMENTS, {"params": DAY}),
        (None, "GET", APPOINTMENTS, {"params": {**MONTH, "limit": 5, "offset": 3}}),
        (None, "GET", APPOINTMENTS, {"params": {**DAY, "appointment_type": "AT1"}}),
        (None, "GET", APPOINTMENTS, {"params": {**DAY, "start_date": "2026-12-07"}}),
        (None, "GET", APPOINTMENTS, {"params": {**DAY, "end_date": "2026-12-06T00:00:00"}}),
        (None, "GET", APPOINTMENTS, {"params": {"start_date": "2026-12-07T00:00:00"}}),
        (None, "GET", APPOINTMENTS, {"params": {"patient_uuid": SAM}}),
        (None, "GET", APPOINTMENTS, {"params": {**EVERYWHERE, "limit": 3}}),
        (None, "GET", APPOINTMENTS, {"params": [("location", "32.788110"), ("location", "-79.932364"),
                                                ("radius", "25mi"), ("limit", "2")]}),
        (None, "GET", APPOINTMENTS + "?location[0]=32.788110&location[1]=-79.932364&limit=2", {}),
        (None, "GET", APPOINTMENTS, {"params": {"location": "95,0"}}),
        (None, "GET", APPOINTMENTS, {"params": {**DAY, "radius": "10mi"}}),
        (None, "GET", APPOINTMENTS, {"params": {"pd_provider_uuid": "nope"}}),
        (None, "GET", APPOINTMENTS, {"params": DAY, "headers": {"Content-Type": "application/json"}}),
        (None, "GET", APPOINTMENTS + UNKNOWN_UUID, {}),
        (None, "GET", APPOINTMENTS + "not-a-uuid", {}),
        (None, "GET", SCHEDULERS, {"headers": {"Content-Type": "multipart/form-data"}}),
        (None, "GET", SCHEDULERS, {"headers": {"Content-Type": "text/plain"}}),
        (None, "GET", SCHEDULERS, {"content": b"a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}),
        (None, "GET", SCHEDULERS, {"content": b'{"a": 1}'}),
        # tokens and scopes (handed on to Connexion, the same answers)
        (None, "GET", SCHEDULERS, {"token": "none"}),
        (None, "GET", SCHEDULERS, {"token": "unknown"}),
        (None, "GET", SCHEDULERS, {"token": "basic"}),
        (None, "GET", SCHEDULERS, {"token": "bare"}),
        (None, "GET", APPOINTMENTS, {"params": DAY, "token": "business"}),
        (None, "POST", SLOTS, {"json": _new_slot(start, end), "token": "user"}),
        # writes: open, refuse, book, describe, cancel, delete
        ("made", "POST", SLOTS, {"json": _new_slot(start, end), "token": "business"}),
        (None, "POST", SLOTS, {"json": _new_slot(start, end)}),
        (None, "POST", SLOTS, {"json": _new_slot(end, start)}),
        (None, "POST", SLOTS, {"json": _new_slot(later, later, kind="NOPE")}),
        (None, "POST", SLOTS, {"json": _new_slot(start, end, provider=UNKNOWN_UUID)}),
        (None, "POST", SLOTS, {"json": {**_new_slot(start, end), "colour": "blue"}}),
        (None, "POST", SLOTS, {"json": {"pd_provider_uuid": PROVIDER}}),
        (None, "POST", SLOTS, {"json": [1, 2]}),
        (None, "POST", SLOTS, {"content": b'{"pd_provider_uuid": ', "headers": {"Content-Type": "application/json"}}),
        (None, "POST", SLOTS, {"content": b"x=1", "headers": {"Content-Type": "text/plain"}}),
        (None, "POST", SLOTS, {}),
        (None, "GET", APPOINTMENTS + "{made}", {}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {"patient": {"_uuid": PEG, "first_name": "Peg"}}}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {"patient": {"_uuid": PEG, "first_name": "Peg"}}}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {"patient": {"_uuid": JOHN}}}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {"description": "First visit"}}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {}}),
        (None, "PUT", APPOINTMENTS + "{made}", {"json": {"patient": {"first_name": "Nobody"}}}),
        (None, "PUT", APPOINTMENTS + UNKNOWN_UUID, {"json": {"description": "x"}}),
        (None, "DELETE", SLOTS + "{made}", {}),
        (None, "DELETE", APPOINTMENTS + "{made}", {}),
        (None, "DELETE", APPOINTMENTS + "{made}", {}),
        (None, "DELETE", SLOTS + "{made}", {}),
        (None, "DELETE", SLOTS + "{made}", {}),
        (None, "DELETE", SLOTS + "{made}", {"token": "user"}),
        (None, "DELETE", SLOTS + "{made}", {"headers": {"Content-Type": "multipart/form-data"}}),
        (None, "POST", PATIENT, {"json": {"pd_patient_uuid": PEG, "pd_provider_uuid": PROVIDER}}),
        (None, "POST", PATIENT, {"json": {"pd_patient_uuid": UNKNOWN_UUID, "pd_provider_uuid": PROVIDER}}),
        # the final documentation: status, mark_completed, business_schedule searches, the clients' encodings,
        # the common parameters, activities
        ("done", "POST", SLOTS, {"json": {**_new_slot(later, later + (end - start)), "location": ["32.788110", "-79.932364"],
                                          "application_data": {"ref": 1}, "async": True}}),
        (None, "PUT", APPOINTMENTS + "{done}", {"json": {"mark_completed": True}}),
        (None, "PUT", APPOINTMENTS + "{done}", {"json": {"patient": {"uuid": PEG}, "async": False}}),
        (None, "PUT", APPOINTMENTS + "{done}", {"json": {"mark_completed": "true"}}),
        (None, "PUT", APPOINTMENTS + "{done}", {"json": {"mark_completed": "maybe"}}),
        (None, "DELETE", APPOINTMENTS + "{done}", {}),
        (None, "GET", APPOINTMENTS, {"params": DAY, "token": "business"}),
        (None, "GET", APPOINTMENTS, {"params": {"patient_uuid": PEG}, "token": "business"}),
        (None, "GET", APPOINTMENTS, {"params": {"appointment_type": "AT1"}, "token": "business"}),
        (None, "GET", APPOINTMENTS + "?location%5B%5D=32.788110&location%5B%5D=-79.932364&limit=2", {}),
        (None, "GET", APPOINTMENTS + "?location=%5b32.788110%2c+-79.932364%5d&limit=2", {}),
        (None, "GET", APPOINTMENTS + "?location[]=32.788110&location[0]=-79.932364", {}),
        (None, "GET", SCHEDULERS, {"params": {"async": "true", "application_data": '{"a": [1]}'}}),
        (None, "GET", SCHEDULERS + "?application_data%5Bref%5D=7", {}),
        (None, "GET", SCHEDULERS, {"params": {"async": "later"}}),
        (None, "POST", SLOTS, {"json": {"async": "later"}}),
        (None, "GET", "/api/v4/activities/", {"params": {"limit": 3}}),
        (None, "GET", "/api/v4/activities/", {"params": {"parent_id": "x"}}),
        (None, "GET", "/api/v4/activities/" + UNKNOWN_UUID, {}),
        (None, "PUT", "/api/v4/activities/" + UNKNOWN_UUID, {"json": {"transition": "cancel"}}),
        (None, "PUT", "/api/v4/activities/" + UNKNOWN_UUID, {"json": {"transition": "pause"}}),
        # methods and faults the fast path hands on
        (None, "PATCH", SCHEDULERS, {}),
        (None, "GET", SCHEDULERS, {"headers": {"X-Sandbox-Fault": "503"}}),
        (None, "GET", SCHEDULERS, {"headers": {"X-Sandbox-Fault": "999"}}),
        (None, "PUT", "/api/v4/sandbox/faults", {"json": {"seed": 1, "rules": [{"operation": "*", "status": 503,
                                                                                  "rate": 0.5}]}}),
        *[(None, "GET", SCHEDULERS, {}) for _ in range(4)],
        (None, "DELETE", "/api/v4/sandbox/faults", {}),
        (None, "PUT", "/api/v4/sandbox/rate-limit", {"json": {"cap": 2, "period": "hour"}}),
        *[(None, "GET", APPOINTMENT_TYPES, {}) for _ in range(3)],
        (None, "DELETE", "/api/v4/sandbox/rate-limit", {}),
        (None, "GET", SCHEDULERS, {}),
    ]
    return steps


@pytest.fixture
def sides(backend):
    if backend != "tinydb":
        pytest.skip("the fast path is the same code on every store; compared on TinyDB")
    fast, slow = Side(fast=True), Side(fast=False)
    yield fast, slow
    for side in (fast, slow):
        side.client.__exit__(None, None, None)


def test_both_paths_answer_alike(sides, monkeypatch):
    fast, slow = sides
    taken = []
    original = fast_path.FastPath._take

    async def counting(self, scope):
        chosen = await original(self, scope)
        taken.append(chosen[0] is not None)
        return chosen

    monkeypatch.setattr(fast_path.FastPath, "_take", counting)
    differences = []
    for number, (name, method, path, options) in enumerate(script()):
        options = dict(options)
        token = options.pop("token", "full")
        answers = [side.send(method, path, token, **options) for side in (fast, slow)]
        if name is not None:
            for side, answer in zip((fast, slow), answers):
                side.keep(name, answer)
        seen = [comparable(side, answer) for side, answer in zip((fast, slow), answers)]
        if seen[0] != seen[1]:
            differences.append(f"#{number} {method} {path} {options}:\n  fast {seen[0]}\n  slow {seen[1]}")
    assert not differences, "\n".join(differences)
    assert sum(taken) >= 40, "the fast path took too few of the requests"
    assert not all(taken)

    journals = [comparable(side, side.send("GET", "/api/v4/sandbox/journal", params={"limit": 200}))[1]["data"]
                for side in (fast, slow)]
    entries = [[{k: v for k, v in entry.items() if k not in ("activity_id", "timestamp", "duration_ms")}
                for entry in journal["entries"]] for journal in journals]
    assert entries[0] == entries[1]
    assert len(entries[0]) > 60
