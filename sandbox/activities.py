"""The Activities API of the final documentation (`_activities.md`), read from the request journal.

Every answer of the platform's operations carries `meta.activity_id`; the request journal
(`extras/request_journal.py`) keeps each client's last requests under that id. An activity is
one of those entries in the documented shape: `id`, `name` (the operation), `state`, `history`
(`record_dt` with six fractional digits), `transition_path`, `remaining_transitions`,
`units_of_work`, `parameters` (the query parameters sent), `result` (the answer's status, and the
error message of a refusal) and `application_data` (the common parameter, as sent, or null).

Scheduling is real-time only: an activity is `completed` (or `failed`, for an error answer) by
the time its answer is sent, so it never waits in a state a `cancel` transition could stop.
Reading only: no rule of scheduling lives here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl

from .errors import Conflict, NotFound

TRANSITIONS = ("cancel",)
_PATH = ["process", "complete"]
_STATES = {"init": "Initializing", "processing": "Processing transactions", "completed": "Completed",
           "failed": "Failed"}


def of_entry(entry: dict) -> dict:
    """A journal entry as the documented activity."""
    end = datetime.fromisoformat(entry["timestamp"]).astimezone(timezone.utc).replace(tzinfo=None)
    start = end - timedelta(milliseconds=entry["duration_ms"])
    final = "failed" if entry["status"] >= 400 else "completed"
    history = [_state(name, moment) for name, moment in (("init", start), ("processing", start), (final, end))]
    return {
        "id": entry["activity_id"],
        "name": entry["operation"] or "unknown",
        "state": {"name": final, "title": _STATES[final]},
        "history": history,
        "transition_path": list(_PATH),
        "remaining_transitions": [],
        "units_of_work": 1,
        "created_date": _moment(start),
        "last_updated_date": _moment(end),
        "parameters": _parameters(entry["query"]),
        "result": {"status": entry["status"], "message": entry["error"] or entry["violation"]},
        "application_data": entry.get("application_data"),
    }


def find(entries: list[dict], activity_id: str, capacity: int) -> dict:
    """The activity of that id among the client's journal entries, or a 404 saying what is kept."""
    wanted = activity_id.lower()
    for entry in entries:
        if entry["activity_id"] == wanted:
            return of_entry(entry)
    raise NotFound(f"no activity with activity_id {activity_id} among this client's last {capacity} requests "
                   "(the sandbox keeps them in the memory of the server process that answered them)",
                   "activity_id")


def transition(activity: dict, name: str) -> dict:
    """`cancel` stops an activity still waiting to be transmitted; a scheduling activity never waits."""
    raise Conflict(f"activity {activity['id']} is {activity['state']['name']}: scheduling is real-time only, so "
                   f"its activities are finished when answered and cannot take the transition {name!r} "
                   "(only a scheduled activity can be canceled)", "transition")


def _state(name: str, moment: datetime) -> dict:
    return {"name": name, "title": _STATES[name], "record_dt": _moment(moment)}


def _moment(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parameters(query: str) -> dict:
    """The query parameters as sent: one value, or the list of a repeated key."""
    parameters: dict = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in parameters:
            kept = parameters[key]
            parameters[key] = [*kept, value] if isinstance(kept, list) else [kept, value]
        else:
            parameters[key] = value
    return parameters
