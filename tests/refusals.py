"""Reading a refusal whatever the wire format: the error object at the top level of the body,
inside the platform's envelope (`data.errors`), or the bare 401/403 (`error_description`).

A client error the contract calls a validation error is a 400 today and a 422 in the
platform's wire format (docs/wire-format.md): `INVALID` accepts both.
"""

from __future__ import annotations

INVALID = (400, 422)


def refusal(answer, statuses) -> dict:
    """{status, error, message, field} of a refused request whose status is one of `statuses`."""
    statuses = (statuses,) if isinstance(statuses, int) else tuple(statuses)
    assert answer.status_code in statuses, f"expected {statuses}, got {answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers["content-type"]
    body = answer.json()
    assert isinstance(body, dict), body
    data = body.get("data")
    if isinstance(data, dict) and isinstance(data.get("errors"), dict):
        body = data["errors"]
    message = body.get("error_description") or body.get("message")
    assert isinstance(message, str) and message, body
    return {"status": answer.status_code, "error": body.get("error"), "message": message, "field": body.get("field")}
