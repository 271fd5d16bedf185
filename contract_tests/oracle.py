"""The rules the contract states in prose, as functions: what a correct implementation refuses
although the request is schema-valid, and how dates are read.

`documented_refusal(case)` answers why the contract lets a correct server refuse a generated
request (e.g. `end_date` not after `start_date`), or None. The checks use it so Schemathesis'
"valid data is accepted" does not fail a server for honouring the contract.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

SLOTS = "/schedule/slots/"
SLOT = "/schedule/slots/{pd_appointment_uuid}"
APPOINTMENTS = "/schedule/appointments/"
APPOINTMENT = "/schedule/appointments/{pd_appointment_uuid}"
PATIENTS = "/schedule/patient/"
TOKEN_PATH = "/oauth2/token"
KNOWN_SCOPES = ("user_schedule", "business_schedule")
SEARCH_KEYS = ("patient_uuid", "pd_provider_uuid", "location")


def documented_refusal(case) -> str | None:
    """Why the contract lets a correct implementation refuse this schema-valid request, if it does."""
    body = case.body if isinstance(case.body, dict) else {}
    query = case.query or {}
    label = case.operation.label
    if label == f"POST {SLOTS}":
        return _dates_refusal(body, "start_date", "end_date") or _latitude_refusal(body.get("location"))
    if label == f"POST {PATIENTS}":
        return _latitude_refusal(body.get("location"))
    if label == f"GET {APPOINTMENTS}":
        if not any(query.get(key) not in (None, "", []) for key in SEARCH_KEYS):
            return "needs patient_uuid, pd_provider_uuid or location"
        if query.get("radius") is not None and not query.get("location"):
            return "radius needs a location"
        return (_dates_refusal(query, "start_date", "end_date") or _latitude_refusal(query.get("location"))
                or _radius_refusal(query.get("radius")))
    if label == f"PUT {APPOINTMENT}":
        patient = body.get("patient")
        if isinstance(patient, dict):
            ids = {str(patient[k]).lower() for k in ("_uuid", "uuid") if patient.get(k)}
            if len(ids) > 1:
                return "patient _uuid and uuid must be the same id"
    if label == f"POST {TOKEN_PATH}":
        requested = str(body.get("scope") or "").replace(",", " ").split()
        if any(scope not in KNOWN_SCOPES for scope in requested):
            return "unknown scope"
    return None


def _dates_refusal(values: dict, start_key: str, end_key: str) -> str | None:
    parsed = {}
    for key in (start_key, end_key):
        value = values.get(key)
        if value is None:
            continue
        moment = parse_datetime(value)
        if moment is None:
            return f"{key} is not a calendar date-time"
        parsed[key] = moment
    if len(parsed) == 2 and parsed[end_key] <= parsed[start_key]:
        return "end_date must be after start_date"
    return None


# A server may refuse a wider search (openapi.yaml, `radius`); the sandbox's default limit.
MAX_RADIUS_MILES = 5000


def _radius_refusal(radius) -> str | None:
    match = re.fullmatch(r"([0-9.]+)(mi|km)?", str(radius or ""))
    if match and float(match[1]) * (0.621371 if match[2] == "km" else 1) > MAX_RADIUS_MILES:
        return f"radius over {MAX_RADIUS_MILES} miles"
    return None


def _latitude_refusal(location) -> str | None:
    if isinstance(location, (list, tuple)) and len(location) == 2:
        try:
            latitude = float(location[0])
        except (TypeError, ValueError):
            return None
        if not math.isfinite(latitude) or not -90 <= latitude <= 90:
            return "latitude outside [-90, 90]"
    return None


def parse_datetime(value) -> datetime | None:
    """An ISO 8601 date-time as naive UTC, or None if it names no real moment."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None
    return moment
