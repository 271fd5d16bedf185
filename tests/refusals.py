"""Reading a refusal whatever the wire format: the error object at the top level of the body,
inside the platform's envelope (`data.errors`), or the bare 401/403 (`error_description`).

A client error the contract calls a validation error is a 400 today and a 422 in the
platform's wire format (docs/wire-format.md): `INVALID` accepts both.
"""

from __future__ import annotations

INVALID = (400, 422)


def refusal(answer, statuses) -> dict:
    """{status, error, message, field} of a refused request whose status is one of `statuses`
    (`field` is None in a bare 401/403, whose `error` is a code)."""
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


def payload(answer):
    """The payload of a successful answer, with or without the `{meta, data}` envelope."""
    assert answer.is_success, f"{answer.status_code}: {answer.text}"
    body = answer.json()
    return body["data"] if isinstance(body, dict) and "meta" in body else body
