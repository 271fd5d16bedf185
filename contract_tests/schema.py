"""The contract as Schemathesis sees it: openapi.yaml loaded once per file, with the kit's hooks.

`get_schema(spec)` answers the schema (sandbox administration excluded) with: bearer tokens of
the run's tenant, generated data steered to bookable records and guarded on shared targets
(steer.py), the kit's checks (checks.py, registered with `@schemathesis.check`), and every
failed check recorded for the summary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
import yaml
from schemathesis import GenerationMode
from schemathesis.config._checks import PositiveDataAcceptanceConfig

from . import checks  # noqa: F401  (registers the kit's checks)
from .report import Finding, curl_command, excerpt, response_line
from .run import active
from .steer import guard, remember, steer
from .wire import WireFormat

# Positive data may be refused with these and still be "accepted" in the check's sense: 404/409/422 are
# the contract's answers to well-formed requests about unknown or conflicting records.
ACCEPTABLE_FOR_VALID_DATA = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

_SCHEMAS: dict[Path, Any] = {}


def raw_spec(spec: Path | str) -> dict:
    return yaml.safe_load(Path(spec).read_text(encoding="utf-8"))


def wire_format(spec: Path | str) -> WireFormat:
    return WireFormat.from_spec(raw_spec(spec))


def get_schema(spec: Path | str):
    """The contract for Schemathesis; loaded once per spec file, hooks attached once."""
    spec = Path(spec).resolve()
    if spec not in _SCHEMAS:
        raw = raw_spec(spec)
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


def is_kit_schema(schema) -> bool:
    return any(schema.raw_schema is mine.raw_schema for mine in _SCHEMAS.values())


def configure_schema(schema, options, seed: int) -> None:
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
            run = active()
            return run.target.token() if run is not None else ""

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    @schema.hook
    def flatmap_case(context, case):
        return steer(case)

    @schema.hook
    def after_call(context, case, response):
        run = active()
        if run is not None:
            run.statuses[(case.operation.label, response.status_code)] += 1
        remember(case, response)

    @schema.hook
    def after_validate(context, case, response, results):
        run = active()
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
                rule=failure_rule(failure), expected=failure_text(failure), actual=response_line(response),
                curl=curl))


@schemathesis.hook
def before_call(context, case, kwargs):
    # Global by Schemathesis' rules: act on the kit's own schemas only.
    if is_kit_schema(case.operation.schema):
        guard(case)


def failure_text(failure) -> str:
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


def failure_rule(failure) -> str:
    """The rule a failure broke, without the value that broke it: one cause, one entry (a date
    format bug breaks the same `pattern` at /0/start_date in every answer, whatever the date)."""
    title = getattr(failure, "title", "") or type(failure).__name__
    schema_path = getattr(failure, "schema_path", None)
    if schema_path:
        instance = [str(p) if not isinstance(p, int) else "*" for p in getattr(failure, "instance_path", []) or []]
        return f"{title}: {'/'.join(map(str, schema_path))} at /{'/'.join(instance)}"
    return title
