"""The contract as Schemathesis sees it, the run's shared state, and the helpers the tests use.

* `get_schema()`: openapi.yaml loaded for Schemathesis (sandbox administration excluded),
  with the kit's hooks: bearer tokens, slot creation steered to bookable data, the run's
  records guarded on shared targets, and every failed check recorded for the summary.
* `Api`: hand-written requests, each answer checked against the contract (status code,
  content type, headers, body schema) before the test looks at the business rule.
* `documented_positive_data_acceptance`: Schemathesis' "valid data is accepted" check, minus
  the requests that break a rule the contract states in prose (e.g. `end_date` after
  `start_date`), which a correct implementation refuses with 400.
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import schemathesis
import yaml
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .options import DEFAULT_SPEC, KitOptions
from .report import ContractViolation, Finding, Findings, curl_command, excerpt, response_line
from .target import Target

TOKEN_PATH = "/oauth2/token"
SLOTS = "/schedule/slots/"
SLOT = "/schedule/slots/{pd_appointment_uuid}"
APPOINTMENTS = "/schedule/appointments/"
APPOINTMENT = "/schedule/appointments/{pd_appointment_uuid}"
KNOWN_SCOPES = ("user_schedule", "business_schedule")
# Checks every hand-written request's answer goes through.
CONFORMANCE_CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
                      response_headers_conformance, response_schema_conformance]
# Positive data may be refused with these and still be "accepted" in the check's sense: 404/409/422 are
# the contract's answers to well-formed requests about unknown or conflicting records.
ACCEPTABLE_FOR_VALID_DATA = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
_UUID_IN_TEXT = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# -- the run ----------------------------------------------------------------------

@dataclass
class Run:
    options: KitOptions
    target: Target
    seed: int
    findings: Findings = field(default_factory=Findings)
    # (operation, status) -> count of the generated requests Schemathesis sent
    statuses: Counter = field(default_factory=Counter)
    # slots the generated requests deleted (DELETE /schedule/slots/{id} answered 2xx) -> by which case
    deleted_slots: dict = field(default_factory=dict)
    current_test: str = ""

    def base_url_for(self, operation) -> str | None:
        """Where an operation lives: the token endpoint is outside the API base path."""
        if operation.path == TOKEN_PATH:
            url = self.target.token_url
            return url[: -len(TOKEN_PATH)] if url.endswith(TOKEN_PATH) else None
        return self.target.base_url


RUN: Run | None = None
# The contract the test modules parametrize over (set from --spec before collection).
COLLECTION_SPEC: Path = DEFAULT_SPEC


def current() -> Run:
    if RUN is None:
        raise RuntimeError("no contract run is active (run the kit through pytest or `pokitdok-sandbox contract`)")
    return RUN


# -- the schema ------------------------------------------------------------------------

_SCHEMAS: dict[Path, Any] = {}


def get_schema(spec: Path | str):
    """The contract for Schemathesis; loaded once per spec file, hooks attached once."""
    spec = Path(spec).resolve()
    if spec not in _SCHEMAS:
        raw = yaml.safe_load(spec.read_text(encoding="utf-8"))
        # Generated ids stay random: the Uuid example is a documented record (the booked slot
        # ef987691-...), and examples of PUT/DELETE would change it on the target.
        raw.get("components", {}).get("schemas", {}).get("Uuid", {}).pop("example", None)
        # An explicit Config: the kit must not pick up a schemathesis.toml from the caller's directory.
        schema = schemathesis.openapi.from_dict(raw, config=schemathesis.Config())
        schema.location = spec.as_uri()
        schema = schema.exclude(tag="sandbox")
        # Stateful scenarios follow the contract's own links only (not inferred ones).
        schema.config.phases.stateful.inference.algorithms = []
        schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], database="none")
        # The built-in "valid data is accepted" check runs as `documented_positive_data_acceptance`.
        schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
            enabled=False, expected_statuses=ACCEPTABLE_FOR_VALID_DATA)
        # use_after_free assumes DELETE /x/{id} removes GET /x/{id}. Here DELETE on an appointment
        # cancels the booking and the slot stays (the contract says so); `deleted_slot_is_gone`
        # checks what deletion does mean: DELETE /schedule/slots/{id}.
        schema.config.checks.update(excluded_check_names=["use_after_free"])
        _attach_hooks(schema)
        _SCHEMAS[spec] = schema
    return _SCHEMAS[spec]


def configure_schema(schema, options: KitOptions, seed: int) -> None:
    """Per-run settings (the schema object outlives runs in one process)."""
    from schemathesis.config import HealthCheck

    schema.config.generation.update(max_examples=options.max_examples)
    schema.config.seed = seed
    schema.config.suppress_health_check = [HealthCheck.all]
    schema.config.update(request_timeout=options.timeout)


def _attach_hooks(schema) -> None:
    @schema.auth(refresh_interval=None, retry_on=[])
    class KitToken:
        """The run's full-scope token for the run's main tenant."""

        def get(self, case, context):
            return current().target.token()

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    @schema.hook
    def flatmap_case(context, case):
        return _steer(case)

    @schema.hook
    def after_call(context, case, response):
        if RUN is not None:
            RUN.statuses[(case.operation.label, response.status_code)] += 1
        _remember_created_slot(case, response)

    @schema.hook
    def after_validate(context, case, response, results):
        run = RUN
        if run is None:
            return
        for result in results:
            failure = result.failure
            if failure is None:
                continue
            try:  # the request exactly as sent (token shown as $ACCESS_TOKEN)
                curl = curl_command(response.request)
            except Exception:  # a curl line is a convenience, never a reason to lose the finding
                curl = ""
            run.findings.add(Finding(
                test=run.current_test, operation=case.operation.label, check=f"{result.name}",
                expected=_failure_text(failure), actual=response_line(response), curl=curl))


@schemathesis.hook
def before_call(context, case, kwargs):
    # Global by Schemathesis' rules: act on the kit's own schemas only.
    if any(case.operation.schema.raw_schema is schema.raw_schema for schema in _SCHEMAS.values()):
        _guard(case)


def _failure_text(failure) -> str:
    """What the check wanted, in a line or two: the title and the message's first paragraph
    (a schema violation names the broken rule and where; the schema dump is left out)."""
    title = getattr(failure, "title", "") or type(failure).__name__
    message = getattr(failure, "validation_message", None)
    if message:
        path = "/".join(str(part) for part in getattr(failure, "instance_path", []) or [])
        message = f"{message} (at response body /{path})"
    else:
        message = (getattr(failure, "message", "") or "").strip().split("\n\n")[0]
    return f"{title}: {excerpt(message, 400)}" if message else title


# -- steering generated data towards bookable slots, and guarding shared data --------------

SEARCH_KEYS = ("patient_uuid", "pd_provider_uuid", "location")


def _steer(case):
    """Steer half of the valid requests towards data that exists, so they reach the rules:
    slot creations use the kit's provider, type, location and a fresh far-future time (and the
    stateful scenarios can follow the links from them); slot searches get the kit's provider."""
    run = RUN
    label = case.operation.label
    positive = case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
    if run is None or not positive:
        return st.just(case)
    # Steered cases are copies: Schemathesis may hand the same generated case out again, and a
    # replayed scenario must not find another scenario's slot time in it (a 409 instead of a 201).
    if label == f"POST {SLOTS}" and isinstance(case.body, dict):
        def bookable(_):
            steered = case.derive(keep_auth=True)
            steered.body = {**case.body, **run.target.slot_body()}
            return steered
        return st.one_of(st.just(case), st.just(None).map(bookable))
    query = case.query or {}
    if label == f"GET {APPOINTMENTS}" and not any(query.get(key) for key in SEARCH_KEYS):
        def searchable(_):
            return case.derive(query={**query, "pd_provider_uuid": run.options.provider_uuid}, keep_auth=True)
        return st.one_of(st.just(case), st.just(None).map(searchable))
    if label == f"POST {TOKEN_PATH}" and isinstance(case.body, dict) and "client_id" in case.body:
        # Never register random clients on the target: generated credentials become the run's own.
        tenant = run.target.main
        case.body = {**case.body, "client_id": tenant.client_id, "client_secret": tenant.client_secret}
    return st.just(case)


def _guard(case) -> None:
    """Generated requests never change records the run did not create. Generated ids are random
    (see get_schema), so only the documented records' ids need stopping: on a shared target they
    are other users' fixtures, and anywhere a cancelled documented booking would answer its
    replay differently. (Changing a path parameter here is rare on purpose: Schemathesis takes a
    changed parameter for a link value.)"""
    run = RUN
    if run is None:
        return
    method = case.method.upper()
    params = case.path_parameters or {}
    value = params.get("pd_appointment_uuid")
    if method in ("PUT", "DELETE") and isinstance(value, str) and value.lower() in documented_ids(run.options.spec) \
            and not run.target.owns(value):
        case.path_parameters = {**params, "pd_appointment_uuid": str(uuid.uuid4())}
    body = case.body if isinstance(case.body, dict) else None
    positive = case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE
    if (method == "POST" and case.operation.path == SLOTS and body is not None and positive
            and str(body.get("pd_provider_uuid", "")).lower() == run.options.provider_uuid.lower()
            and body.get("start_date") not in run.target.issued_starts):
        # A slot for the kit's provider always gets a fresh far-future time: a fixed one (the
        # contract's example) would clash with itself when a scenario is replayed, and on a
        # shared target with other users' slots.
        fresh = run.target.slot_body()
        case.body = {**body, "start_date": fresh["start_date"], "end_date": fresh["end_date"]}
    if case.operation.path == TOKEN_PATH and body is not None and "client_id" in body:
        tenant = run.target.main
        case.body = {**body, "client_id": tenant.client_id, "client_secret": tenant.client_secret}


@functools.cache
def documented_ids(spec: Path) -> frozenset[str]:
    """Every uuid the contract or the documentation names: the records shared fixtures hold."""
    from .options import SEED_DOC

    text = Path(spec).read_text(encoding="utf-8") + SEED_DOC.read_text(encoding="utf-8")
    return frozenset(match.lower() for match in _UUID_IN_TEXT.findall(text))


def _remember_created_slot(case, response) -> None:
    run = RUN
    if run is None:
        return
    if case.operation.path == SLOT and case.method.upper() == "DELETE" and 200 <= response.status_code < 300:
        run.deleted_slots.setdefault(str((case.path_parameters or {}).get("pd_appointment_uuid", "")).lower(), case.id)
    if case.operation.path != SLOTS or case.method.upper() != "POST":
        return
    if 200 <= response.status_code < 300:
        try:
            body = response.json()
        except Exception:
            return
        if isinstance(body, dict) and isinstance(body.get("pd_appointment_uuid"), str):
            run.target.record_slot(run.target.main, body["pd_appointment_uuid"])


# -- "valid data is accepted", with the contract's prose rules -------------------------------

def documented_positive_data_acceptance(ctx, response, case):
    """Schemathesis' positive_data_acceptance, except for requests breaking a documented rule."""
    if documented_refusal(case) is not None:
        return None
    return positive_data_acceptance(ctx, response, case)


documented_positive_data_acceptance.__name__ = "positive_data_acceptance"


def deleted_slot_is_gone(ctx, response, case):
    """After DELETE /schedule/slots/{id} succeeded, that id is unknown everywhere: 404 (or a 4xx
    about the request itself), never an answer as if the slot were still there."""
    run = RUN
    value = str((case.path_parameters or {}).get("pd_appointment_uuid", "")).lower()
    if run is None or value not in run.deleted_slots or run.deleted_slots[value] == case.id:
        return None
    if case.operation.path not in (SLOT, APPOINTMENT):
        return None
    if 200 <= response.status_code < 300 or response.status_code == 409:  # answers as if it still existed
        raise AssertionError(f"slot {value} was deleted (DELETE /schedule/slots/{value} answered 2xx), so "
                             f"{case.method.upper()} {case.formatted_path} must answer 404, not {response.status_code}")
    return None


# The kit's checks on top of Schemathesis' built-in ones, for every generated request.
KIT_CHECKS = [documented_positive_data_acceptance, deleted_slot_is_gone]


def documented_refusal(case) -> str | None:
    """Why the contract lets a correct implementation refuse this schema-valid request, if it does."""
    body = case.body if isinstance(case.body, dict) else {}
    query = case.query or {}
    label = case.operation.label
    if label == f"POST {SLOTS}":
        return _dates_refusal(body, "start_date", "end_date") or _latitude_refusal(body.get("location"))
    if label == "POST /schedule/patient/":
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
    if not isinstance(value, str):
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


# -- hand-written requests -------------------------------------------------------------------

class Api:
    """Requests of the hand-written tests: sent as given, answers checked against the contract."""

    def __init__(self, run: Run):
        self.run = run
        self.target = run.target
        self.schema = get_schema(run.options.spec)

    def call(self, method: str, path: str, *, params: dict | None = None, query: dict | None = None,
             json: Any = None, tenant=None, scope: str | None = None, token: str | None = None,
             auth: bool = True, conform: bool = True, headers: dict | None = None, **kwargs):
        """`path` is the contract's template (e.g. APPOINTMENT) filled from `params`."""
        url_path = path.format(**(params or {}))
        answer = self.target.request(method, url_path, tenant=tenant, scope=scope, token=token, auth=auth,
                                     params=query, json=json, headers=headers, **kwargs)
        if conform:
            self.conforms(method, path, answer, params=params, query=query, body=json)
        return answer

    def operation(self, method: str, path: str):
        return self.schema[path][method.upper()]

    def template_for(self, method: str, concrete_path: str) -> tuple[str, dict]:
        """The contract path a concrete one (e.g. /schedule/slots/<uuid>) belongs to, and its parameters."""
        for template in self.schema.raw_schema["paths"]:
            names = re.findall(r"{([^}/]+)}", template)
            pattern = "^" + re.sub(r"\\{[^}/]+\\}", "([^/]+)", re.escape(template)) + "$"
            match = re.match(pattern, concrete_path)
            if match and method.lower() in self.schema.raw_schema["paths"][template]:
                return template, dict(zip(names, match.groups()))
        raise LookupError(f"{method} {concrete_path} is not an operation of the contract")

    def call_path(self, method: str, concrete_path: str, **kwargs):
        """Like `call`, for a concrete path with an optional query string (e.g. a documented URL)."""
        path, _, query_string = concrete_path.partition("?")
        template, params = self.template_for(method, path)
        query = {key: values if len(values) > 1 else values[0]
                 for key, values in parse_qs(query_string, keep_blank_values=True).items()} or None
        return template, self.call(method, template, params=params, query=query, **kwargs)

    def conforms(self, method: str, path: str, answer, *, params=None, query=None, body=None) -> None:
        """Raise a ContractViolation if the answer breaks the contract for this operation."""
        operation = self.operation(method, path)
        case = operation.Case(path_parameters=params or {}, query=query or {},
                              **({"body": body} if body is not None else {}))
        try:
            case.validate_response(answer, checks=CONFORMANCE_CHECKS)
        except FailureGroup as group:
            first = group.exceptions[0]
            names = ", ".join(sorted({_check_name(f) for f in group.exceptions}))
            violation = ContractViolation(
                names, _failure_text(first), answer, operation=operation.label,
                detail="; ".join(_failure_text(f) for f in group.exceptions[1:]))
            violation.recorded = True  # the after_validate hook has recorded each failed check
            raise violation from None

    def label(self, method: str, path: str) -> str:
        return f"{method.upper()} {path}"


def _check_name(failure) -> str:
    # Schemathesis failures carry their check's code name in the title; the class names it too.
    return {
        "UndefinedStatusCode": "status_code_conformance",
        "UndefinedContentType": "content_type_conformance",
        "MalformedMediaType": "content_type_conformance",
        "JsonSchemaError": "response_schema_conformance",
        "MissingContentType": "content_type_conformance",
        "ServerError": "not_a_server_error",
        "MissingHeaders": "response_headers_conformance",
        "InvalidHeaders": "response_headers_conformance",
        "MalformedJson": "response_schema_conformance",
    }.get(type(failure).__name__, type(failure).__name__)


def expect_status(api: Api, answer, expected: int | tuple, rule: str, method: str, path: str,
                  why: str = "") -> None:
    """The business rule's status, or a ContractViolation naming the rule."""
    allowed = expected if isinstance(expected, tuple) else (expected,)
    if answer.status_code not in allowed:
        raise ContractViolation(rule, f"{' or '.join(map(str, allowed))}{f' ({why})' if why else ''}", answer,
                                operation=api.label(method, path))


def expect_that(condition: bool, api: Api, answer, rule: str, expected: str, method: str, path: str,
                actual: str | None = None) -> None:
    if not condition:
        raise ContractViolation(rule, expected, answer, operation=api.label(method, path), actual=actual)
