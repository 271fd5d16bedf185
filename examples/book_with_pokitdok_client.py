"""A complete booking flow with the official PokitDok Python client against a running sandbox.

    pip install pokitdok==2.8.1
    pokitdok-sandbox serve                      # in another terminal
    python examples/book_with_pokitdok_client.py --base http://127.0.0.1:8000

It connects (the client's own OAuth2 client-credentials flow), lists the schedulers and
appointment types, finds the open slots of the documentation's provider, books one for the
documentation's patient John Doe, updates the appointment's description, finds it among the
patient's appointments, and cancels it, so the slot is open again at the end.

Only the client's `base` and credentials differ from code written for the original platform.
Every answer is the platform's envelope, `{"meta": {...}, "data": ...}`: the script reads
`answer["data"]` once the status is 200 and `answer["meta"]` is there, and reports a refusal with
the reason the sandbox gives in `answer["data"]["errors"]` (a 401 or 403: `answer["message"]`).
Exits 0 when every step answered as expected, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from datetime import datetime
from urllib.parse import urlsplit

try:
    import pokitdok
except ImportError:
    sys.exit("this example needs the official client: pip install pokitdok==2.8.1")

# The documentation's records, present in every fresh sandbox (contract_tests/data/pokitdok-scheduling-v4.md).
PROVIDER_UUID = "b691b7f9-bfa8-486d-a689-214ae47ea6f8"
PATIENT = {
    "_uuid": "500ef469-2767-4901-b705-425e9b6f7f83",
    "email": "john@hondoe.com",
    "phone": "800-555-1212",
    "birth_date": "1970-01-01",
    "first_name": "John",
    "last_name": "Doe",
    "member_id": "M000001",
}


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def allow_plain_http_on_loopback(base: str) -> None:
    """oauthlib refuses OAuth2 over plain HTTP (InsecureTransportError) unless
    OAUTHLIB_INSECURE_TRANSPORT is set. A sandbox on this machine speaks plain HTTP, so set
    it here, and only here: for an http:// base on a loopback address. Anything else keeps
    oauthlib's check."""
    parts = urlsplit(base)
    if parts.scheme == "http" and is_loopback(parts.hostname):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


class FlowFailed(Exception):
    pass


def reason(answer) -> str:
    """What a refusal says: `data.errors` in the envelope, or the bare 401/403 `message`."""
    if isinstance(answer, dict):
        body = answer.get("data")
        if isinstance(body, dict) and "errors" in body:
            return f"{body['errors']['error']}: {body['errors']['message']}"
        if "message" in answer:
            return f"{answer['message']} ({answer.get('error_description')})"
    return json.dumps(answer)


def expect(pd, answer):
    """The client answers the decoded JSON body and keeps the HTTP status in `status_code`.
    A success is a 200 with `meta` and `data`; this answers `data`."""
    if pd.status_code != 200:
        raise FlowFailed(f"expected HTTP 200, got {pd.status_code}: {reason(answer)}")
    if not isinstance(answer, dict) or "meta" not in answer or "data" not in answer:
        raise FlowFailed(f"expected the {{meta, data}} envelope, got: {json.dumps(answer)[:300]}")
    return answer["data"]


def show(title: str, value=None) -> None:
    print(f"\n== {title}")
    if value is not None:
        print(json.dumps(value, indent=2, sort_keys=True))


def pick_slot(open_slots: list[dict]) -> dict:
    """The first open slot that starts in the future, else the first one at all."""
    now = datetime.now().isoformat()
    upcoming = [slot for slot in open_slots if slot["start_date"] > now]
    return (upcoming or open_slots)[0]


def run(base: str, client_id: str, client_secret: str) -> str:
    pd = pokitdok.api.connect(client_id, client_secret, base=base)
    show(f"Connected to {base} as {client_id}: pokitdok.api.connect(...)")
    # (No lifetime printed: oauthlib reads the platform's `expires`, a Unix time, as `expires_in`.)
    print(f"  token scopes: {' '.join(pd.token.get('scope') or [])}")

    schedulers = expect(pd, pd.schedulers())
    show("Schedulers: pd.schedulers()")
    for scheduler in schedulers:
        print(f"  {scheduler['scheduler_uuid']}  {scheduler['name']}: {scheduler['description']}")

    kinds = expect(pd, pd.appointment_types())
    show("Appointment types: pd.appointment_types()")
    for kind in kinds:
        print(f"  {kind['type']:4} {kind['duration']:3} min  {kind['description']}")

    answer = pd.get_appointments(pd_provider_uuid=PROVIDER_UUID)
    open_slots = expect(pd, answer)
    show(f"Open slots of provider {PROVIDER_UUID}: pd.get_appointments(pd_provider_uuid=...)")
    for slot in open_slots[:5]:
        print(f"  {slot['pd_appointment_uuid']}  {slot['appointment_type']}  "
              f"{slot['start_date']} -> {slot['end_date']}")
    print(f"  ({answer['meta'].get('count', len(open_slots))} open)")
    if not open_slots:
        raise FlowFailed("the provider has no open slot; reset the sandbox (POST /api/v4/sandbox/reset) "
                         "or open one with pd.schedule_slots(...)")
    slot_uuid = pick_slot(open_slots)["pd_appointment_uuid"]

    booked = expect(pd, pd.book_appointment(slot_uuid, {
        "patient": PATIENT, "description": "Welcome to M0d3rN Healthcare"}))
    show(f"Booked {slot_uuid} for {PATIENT['first_name']} {PATIENT['last_name']}: pd.book_appointment(...)",
         booked)
    if not booked["booked"] or booked["patient"]["_uuid"] != PATIENT["_uuid"]:
        raise FlowFailed("the slot is not booked for the patient")

    updated = expect(pd, pd.book_appointment(slot_uuid, {"description": "Bring your insurance card"}))
    show("Description updated: pd.book_appointment(uuid, {'description': ...})",
         {"description": updated.get("description"), "booked": updated["booked"]})
    if updated.get("description") != "Bring your insurance card":
        raise FlowFailed("the description did not change")

    mine = expect(pd, pd.get_appointments(patient_uuid=PATIENT["_uuid"]))
    show(f"The patient's appointments: pd.get_appointments(patient_uuid=...) ({len(mine)})")
    for appointment in mine:
        print(f"  {appointment['pd_appointment_uuid']}  {appointment['start_date']}  "
              f"{appointment.get('description', '')}")
    if slot_uuid not in {a["pd_appointment_uuid"] for a in mine}:
        raise FlowFailed("the new appointment is not among the patient's appointments")

    cancelled = expect(pd, pd.cancel_appointment(slot_uuid))
    show("Cancelled: pd.cancel_appointment(uuid)", {"booked": cancelled["booked"]})

    [again] = expect(pd, pd.get_appointments(appointment_uuid=slot_uuid))
    if again["booked"] or again.get("patient"):
        raise FlowFailed("the slot is still booked after the cancellation")
    print(f"\nDone: slot {slot_uuid} is open again.")
    return slot_uuid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000",
                        help="the sandbox's origin, without /api/v4 (default: %(default)s)")
    parser.add_argument("--client-id", default="sandbox-demo", help="default: the demo client")
    parser.add_argument("--client-secret", default="sandbox-demo-secret", help="default: the demo client's")
    args = parser.parse_args(argv)
    allow_plain_http_on_loopback(args.base)
    from oauthlib.oauth2 import OAuth2Error
    from requests.exceptions import ConnectionError as Unreachable

    try:
        run(args.base, args.client_id, args.client_secret)
    except FlowFailed as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        return 1
    except Unreachable:
        print(f"FAILED: nothing answers at {args.base}; start it with `pokitdok-sandbox serve`", file=sys.stderr)
        return 1
    except OAuth2Error as refusal:
        print(f"FAILED: the token request was refused: {refusal}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
