"""The wire format the contract declares: the one place that knows how an answer carries its payload.

The kit reads every answer through `WireFormat.payload()` (the documented record or list) and
`WireFormat.error()` (the error object), and takes the statuses it expects for a created slot and
for a refused request from here, so the model, the rules and the stateful suites compare payloads
whatever the envelope. The format is read from the contract itself (`from_spec`): a spec whose
answers are `{"meta": ..., "data": ...}` makes the kit expect and unwrap the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NotJson(ValueError):
    """The answer has no JSON body."""


@dataclass(frozen=True)
class WireFormat:
    enveloped: bool = False
    created: int = 201  # opening a slot
    invalid: int = 400  # a request breaking the contract (a missing or malformed field, end before start)
    paged: bool = False  # collections and searches take limit/offset and answer meta.count/next/previous

    @classmethod
    def from_spec(cls, raw: dict) -> "WireFormat":
        paths = raw.get("paths", {})
        listing = _response_schema(raw, paths.get("/schedule/schedulers/", {}).get("get", {}), "200")
        enveloped = isinstance(listing, dict) and {"meta", "data"} <= set(listing.get("properties", {}))
        slot_responses = paths.get("/schedule/slots/", {}).get("post", {}).get("responses", {})
        created = min((int(code) for code in slot_responses if str(code).startswith("2")), default=201)
        search = paths.get("/schedule/appointments/", {}).get("get", {})
        paged = any(_resolve(raw, p).get("name") == "limit" for p in search.get("parameters", []))
        declared = {str(code) for item in paths.values() for op in item.values() if isinstance(op, dict)
                    for code in op.get("responses", {})}
        invalid = 422 if enveloped or "400" not in declared else 400
        return cls(enveloped=enveloped, created=created, invalid=invalid, paged=paged)

    # -- reading answers -------------------------------------------------------------
    def body(self, answer) -> Any:
        try:
            return answer.json()
        except ValueError:
            raise NotJson(f"{getattr(answer, 'status_code', '?')} without a JSON body") from None

    def payload(self, answer) -> Any:
        """The documented payload of a successful answer (the record, or the list)."""
        body = self.body(answer)
        if self.enveloped:
            return body.get("data") if isinstance(body, dict) else None
        return body

    def meta(self, answer) -> dict:
        body = self.body(answer)
        if self.enveloped and isinstance(body, dict) and isinstance(body.get("meta"), dict):
            return body["meta"]
        return {}

    def error(self, answer) -> dict:
        """The error object of a refused request ({status, error, message, field, ...})."""
        body = self.body(answer)
        if self.enveloped and isinstance(body, dict) and isinstance(body.get("data"), dict):
            errors = body["data"].get("errors")
            return errors if isinstance(errors, dict) else {}
        return body if isinstance(body, dict) else {}


def _resolve(raw: dict, node):
    seen = 0
    while isinstance(node, dict) and "$ref" in node and seen < 20:
        target = raw
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node if isinstance(node, dict) else {}


def _response_schema(raw: dict, operation: dict, status: str) -> dict:
    response = _resolve(raw, operation.get("responses", {}).get(status, {}))
    content = response.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), {})
    schema = _resolve(raw, media.get("schema", {}))
    if "allOf" in schema:  # an envelope written as allOf [Envelope, {data: ...}]
        merged: dict = {"properties": {}}
        for part in schema["allOf"]:
            merged["properties"].update(_resolve(raw, part).get("properties", {}))
        return merged
    return schema
