"""The kit's settings: one definition shared by the pytest options and `pokitdok-sandbox contract`."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pokitdok_sandbox.settings import CLIENT_ID_ENV, CLIENT_SECRET_ENV

PACKAGE_DIR = Path(__file__).resolve().parent
# The contract: the project's openapi.yaml (the kit checks targets against it, not against
# whatever document the target serves).
DEFAULT_SPEC = PACKAGE_DIR.parent / "openapi.yaml"
SEED_DOC = PACKAGE_DIR / "data" / "pokitdok-scheduling-v4.md"

# Defaults from the documentation's own examples.
DOC_PROVIDER_UUID = "b691b7f9-bfa8-486d-a689-214ae47ea6f8"
DOC_APPOINTMENT_TYPE = "AT1"
DOC_LOCATION = (32.78811, -79.932364)
# The two patients the documentation shows (John Doe books, Peg Patient registers).
DOC_PATIENTS = ("500ef469-2767-4901-b705-425e9b6f7f83", "2773f6ff-00cb-460f-823f-5ff2208511e7")

# The sandbox's demo client: the default credentials.
DEFAULT_CLIENT_ID = "sandbox-demo"
DEFAULT_CLIENT_SECRET = "sandbox-demo-secret"

# Property-based examples per operation. With positive and negative data, the coverage phase and
# the stateful scenarios, 100 runs in about 20 s against the sandbox over HTTP (2 cores): room
# for a slower target inside a two-minute CI budget.
DEFAULT_MAX_EXAMPLES = 100
# --thorough: five times the examples, longer model-based sequences and stateful scenarios (several
# minutes against the sandbox; for a nightly job or before a release, not every push).
THOROUGH_MAX_EXAMPLES = 500
MODEL_STEPS, THOROUGH_MODEL_STEPS = 12, 30  # steps of a model-based sequence, at most
WORKFLOW_STEPS, THOROUGH_WORKFLOW_STEPS = 8, 20  # steps of a stateful scenario through the links

ISOLATION_MODES = ("auto", "tenant", "shared")


@dataclass
class KitOptions:
    """Everything a contract run needs to know. `None` means "work it out" (see `Target`)."""

    base_url: str | None = None  # API base, e.g. http://127.0.0.1:8000/api/v4; None: in-process sandbox
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    token_url: str | None = None  # default: <origin of base_url>/oauth2/token
    max_examples: int | None = None  # None: DEFAULT_MAX_EXAMPLES, or THOROUGH_MAX_EXAMPLES with thorough
    thorough: bool = False  # more examples, longer sequences and scenarios
    seed: int | None = None
    isolation: str = "auto"  # auto: a fresh tenant when the target registers unknown clients
    provider_uuid: str = DOC_PROVIDER_UUID
    appointment_type: str | None = None  # None: AT1 if the target lists it, else the first listed type
    location: tuple[float, float] = DOC_LOCATION
    # A second provider and a second place, so rules that differ across them are exercised. None:
    # the provider the target's `GET /sandbox/providers` lists first after the kit's (when it has
    # that listing), and a place 3 miles north-east of `location`.
    other_provider_uuid: str | None = None
    other_location: tuple[float, float] | None = None
    patients: tuple[str, str] = DOC_PATIENTS
    spec: Path = DEFAULT_SPEC
    summary_path: str | None = None
    timeout: float = 30.0
    shrink_seconds: float = 30.0  # how long a failing model-based sequence is shrunk, at most
    # An ASGI application to test in-process instead of a server (Python API only, e.g. a wrapped sandbox).
    app: Any = field(default=None, repr=False)

    def __post_init__(self):
        if self.isolation not in ISOLATION_MODES:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATION_MODES)}, not {self.isolation!r}")
        if self.max_examples is None:
            self.max_examples = THOROUGH_MAX_EXAMPLES if self.thorough else DEFAULT_MAX_EXAMPLES
        if self.max_examples < 1:
            raise ValueError("max_examples must be at least 1")
        if self.base_url is not None:
            self.base_url = self.base_url.rstrip("/")
        self.spec = Path(self.spec)
        self.location = tuple(float(v) for v in self.location)
        if len(self.location) != 2:
            raise ValueError("location is [latitude, longitude]")
        if self.other_location is not None:
            self.other_location = tuple(float(v) for v in self.other_location)
            if len(self.other_location) != 2 or self.other_location == self.location:
                raise ValueError("other location is [latitude, longitude], another place than location")
        if self.other_provider_uuid is not None and self.other_provider_uuid.lower() == self.provider_uuid.lower():
            raise ValueError("give another provider than --provider-uuid as --other-provider-uuid")
        if len(self.patients) != 2 or self.patients[0] == self.patients[1]:
            raise ValueError("give two different patient uuids")


    @property
    def model_steps(self) -> int:
        return THOROUGH_MODEL_STEPS if self.thorough else MODEL_STEPS

    @property
    def workflow_steps(self) -> int:
        return THOROUGH_WORKFLOW_STEPS if self.thorough else WORKFLOW_STEPS


def parse_location(text: str) -> tuple[float, float]:
    """`32.78811,-79.932364` (or with a space) as (latitude, longitude)."""
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    if len(parts) != 2:
        raise ValueError(f"location {text!r} must be LAT,LON")
    return float(parts[0]), float(parts[1])


def env_default(name: str, fallback: str) -> str:
    return os.environ.get(name) or fallback


# Command-line options, shared by pytest (`--base-url ...`) and the `contract` subcommand.
# (flags, dest, help, metavar); types are handled in `from_namespace`.
OPTIONS = [
    ("--base-url", "base_url", "API base URL of the target, e.g. http://127.0.0.1:8000/api/v4 "
                               "(default: an in-process sandbox, no server needed)", "URL"),
    ("--client-id", "client_id", f"OAuth2 client id (env {CLIENT_ID_ENV}, the variable the server's demo "
                                 f"client is named by; default {DEFAULT_CLIENT_ID})", "ID"),
    ("--client-secret", "client_secret", f"OAuth2 client secret (env {CLIENT_SECRET_ENV}, "
                                         f"default {DEFAULT_CLIENT_SECRET})", "SECRET"),
    ("--token-url", "token_url", "token endpoint (default: <origin of the base URL>/oauth2/token)", "URL"),
    ("--max-examples", "max_examples", f"property-based examples per operation (default {DEFAULT_MAX_EXAMPLES}, "
                                       f"{THOROUGH_MAX_EXAMPLES} with --thorough)", "N"),
    ("--thorough", "thorough", f"a longer, deeper run: {THOROUGH_MAX_EXAMPLES} examples per operation, model-based "
                               f"sequences of up to {THOROUGH_MODEL_STEPS} steps (a fifth of the examples of them) and "
                               f"stateful scenarios of up to {THOROUGH_WORKFLOW_STEPS}; minutes rather than the "
                               "default run's half minute", None),
    ("--seed", "seed", "seed for the generated data, to reproduce a run (default: random, printed)", "N"),
    ("--isolation", "isolation", "auto (default): a fresh tenant per run when the target registers unknown "
                                 "clients, else shared; tenant: require a fresh tenant; shared: use the given "
                                 "client and touch only records the run creates", "MODE"),
    ("--provider-uuid", "provider_uuid", f"provider the kit creates its slots for (default {DOC_PROVIDER_UUID})",
     "UUID"),
    ("--appointment-type", "appointment_type", "appointment type code of the kit's slots (default: "
                                               f"{DOC_APPOINTMENT_TYPE} if listed, else the first listed type)",
     "CODE"),
    ("--location", "location", "LAT,LON of the kit's slots (default 32.78811,-79.932364)", "LAT,LON"),
    ("--other-provider-uuid", "other_provider_uuid", "a second provider the target knows (default: the first "
                                                     "other provider GET /sandbox/providers lists, if the target "
                                                     "has that listing)", "UUID"),
    ("--other-location", "other_location", "LAT,LON of a second place (default: 3 miles north-east of "
                                           "--location)", "LAT,LON"),
    ("--patient-uuid", "patients", "patient who books (give twice: two different patients; default the "
                                   "documented John Doe and Peg Patient)", "UUID"),
    ("--spec", "spec", "the contract (default: the project's openapi.yaml)", "PATH"),
    ("--contract-summary", "summary_path", "also write the readable failure summary to this file", "PATH"),
    ("--request-timeout", "timeout", "seconds to wait for each answer (default 30)", "SECONDS"),
    ("--shrink-seconds", "shrink_seconds", "at most this long shrinking a failing model-based sequence to the "
                                           "shortest one (default 30)", "SECONDS"),
]


def option_arguments(dest: str, help_text: str, metavar: str | None) -> dict[str, Any]:
    """argparse / pytest `addoption` keywords of one of OPTIONS (None: not given, the default applies)."""
    if dest == "thorough":
        return {"action": "store_true", "default": None, "help": help_text}
    return {"action": "append" if dest == "patients" else "store", "default": None, "metavar": metavar,
            "help": help_text}


def from_values(values: dict[str, Any]) -> KitOptions:
    """KitOptions from option values (None or missing: the default)."""
    chosen: dict[str, Any] = {}
    for _flags, dest, _help, _metavar in OPTIONS:
        value = values.get(dest)
        if value is None or value == []:
            continue
        if dest == "thorough":
            value = bool(value)
        elif dest in ("max_examples", "seed"):
            value = int(value)
        elif dest in ("timeout", "shrink_seconds"):
            value = float(value)
        elif dest in ("location", "other_location") and isinstance(value, str):
            value = parse_location(value)
        elif dest == "patients":
            if len(value) > 2:
                raise ValueError("give --patient-uuid at most twice")
            if len(value) == 1:  # pair it with a documented patient
                value = [value[0], DOC_PATIENTS[1] if value[0] != DOC_PATIENTS[1] else DOC_PATIENTS[0]]
            value = tuple(value)
        chosen[dest] = value
    chosen.setdefault("client_id", env_default(CLIENT_ID_ENV, DEFAULT_CLIENT_ID))
    chosen.setdefault("client_secret", env_default(CLIENT_SECRET_ENV, DEFAULT_CLIENT_SECRET))
    return KitOptions(**chosen)
