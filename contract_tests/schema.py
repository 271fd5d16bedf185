"""The contract as Schemathesis sees it: openapi.yaml loaded once per file, with the kit's hooks.

`get_schema(spec)` answers the schema (sandbox administration excluded), configured by
`data/schemathesis.toml`, with: bearer tokens of the run's tenant, generated data steered to
bookable records (steer.py), and every failed check recorded for the summary. Its hooks are the
schema's own (`schema.hook`), never process-wide: the tests guard each request themselves
(`steer.guard`) and pass the kit's checks (checks.py, `for_schemathesis`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import schemathesis
import yaml

from .report import Finding, curl_command, excerpt, response_line
from .run import active
from .steer import remember, steer
from .wire import WireFormat

# Schemathesis' settings for the kit (generation modes, which checks, the statuses they expect).
SCHEMATHESIS_CONFIG = Path(__file__).resolve().parent / "data" / "schemathesis.toml"

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
        schema = schemathesis.openapi.from_dict(raw, config=schemathesis.Config.from_path(SCHEMATHESIS_CONFIG))
        schema.location = spec.as_uri()
        schema = schema.exclude(tag="sandbox")
        _attach_hooks(schema)
        _SCHEMAS[spec] = schema
    return _SCHEMAS[spec]


def configure_schema(schema, options, seed: int) -> None:
    """Per-run settings (the schema object outlives runs in one process)."""
    schema.config.generation.update(max_examples=options.max_examples)
    schema.config.seed = seed
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
