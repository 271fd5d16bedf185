"""The implementation under test: where it is, how the kit gets tokens, which tenant it works in,
and the records it creates (and removes again at the end).

Isolation
---------
Every run first asks the token endpoint for a token of a client id nobody has used,
`contract-<run id>`, with the given secret. A target that registers unknown clients (the
sandbox does: each client id is its own data set) answers 200 and the run works in that
fresh tenant; the documentation examples get a second fresh tenant (`contract-<run id>-docs`)
so they start from the documented records. A target that refuses (401) is shared: the run
uses the given client and only ever changes records it created itself.

Bookable data on an unknown server
----------------------------------
The API cannot list providers, so the kit creates its own slots: for `--provider-uuid`
(default: the documented provider), at `--location` (default: the documented one), with
`--appointment-type` or, without it, AT1 if the target lists it, else the first type it lists.
Slot times are far in the future (an hour in the years 2300-2899 drawn from the run's seed) and consecutive slots of
a run are two hours apart, so runs sharing a server do not overlap each other's slots.
Every slot the run creates is cancelled (if booked) and deleted when the run ends.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import requests

from .asgi_transport import InProcessSession
from .options import DOC_APPOINTMENT_TYPE, KitOptions
from .report import ContractViolation
from .wire import WireFormat

ALL_SCOPES = None  # a token request without `scope` gets every scope of the client
IN_PROCESS_ORIGIN = "http://testserver"
SLOT_MINUTES = 30


class KitError(Exception):
    """The run cannot start: unreachable target, refused credentials, bad options."""


class TargetUnreachable(requests.ConnectionError):
    """The target does not answer (connection refused, DNS, reset): reported once per run."""

    reason = ""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "No route to host", "Temporary failure in name resolution"):
        if marker in text:
            return marker
    return text[:200]


@dataclass
class Tenant:
    client_id: str
    client_secret: str
    fresh: bool  # a data set of its own (True) or shared with others (False)
    tokens: dict = field(default_factory=dict)  # scope -> (token, expires at)
    created_slots: dict = field(default_factory=dict)  # pd_appointment_uuid -> None, in creation order

    @property
    def label(self) -> str:
        return f"{self.client_id} ({'own tenant' if self.fresh else 'shared tenant'})"


class Target:
    def __init__(self, options: KitOptions, wire: WireFormat | None = None, seed: int | None = None):
        """`seed`: the run's seed; every date and id the kit makes up derives from it (`--seed N`
        replays a run's requests). The run's tenant name alone is fresh each time, so a replay
        starts from a data set of its own."""
        self.options = options
        self.wire = wire or WireFormat()
        self.run_id = uuid.uuid4().hex[:12]
        self.seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        self.random = random.Random(f"kit-ids-{self.seed}")  # the ids the kit makes up
        self._clock = _SlotClock(self.seed)
        self.issued_starts: set[str] = set()  # start_date of every slot body the kit made
        if options.app is not None or options.base_url is None:
            self.app = options.app if options.app is not None else in_process_sandbox()
            self.session: requests.Session = InProcessSession(self.app)
            self.base_url = options.base_url or f"{IN_PROCESS_ORIGIN}/api/v4"
            self.where = "in-process " + ("application" if options.app is not None else "sandbox (in memory)")
        else:
            self.app = None
            self.session = requests.Session()
            self.base_url = options.base_url
            self.where = options.base_url
        parts = urlsplit(self.base_url)
        if not parts.scheme or not parts.netloc:
            raise KitError(f"--base-url {self.base_url!r} is not an absolute URL (e.g. http://127.0.0.1:8000/api/v4)")
        self.origin = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        self.token_url = options.token_url or f"{self.origin}/oauth2/token"
        self.isolation = options.isolation  # "auto" until the first tenant is chosen
        self._shared: Tenant | None = None
        self.tenants: list[Tenant] = []
        self.main = self.tenant("main")
        self.appointment_types = self.preflight()
        self.appointment_type = options.appointment_type or (
            DOC_APPOINTMENT_TYPE if DOC_APPOINTMENT_TYPE in self.appointment_types or not self.appointment_types
            else self.appointment_types[0])

    # -- tenants and tokens -----------------------------------------------------
    def tenant(self, label: str) -> Tenant:
        """A tenant for one part of the run: fresh when the target allows, else the shared client."""
        if self.isolation != "shared":
            client_id = f"contract-{self.run_id}" + ("" if label == "main" else f"-{label}")
            tenant = Tenant(client_id, self.options.client_secret, fresh=True)
            answer = self._token_response(tenant, None)
            if answer.status_code == 200:
                self.isolation = "tenant"
                self.tenants.append(tenant)
                tenant.tokens[None] = _token_entry(answer)
                return tenant
            if self.isolation == "tenant":
                raise KitError(f"the target does not register the new client {client_id!r} "
                               f"({answer.status_code} {answer.text[:200]}); run with --isolation shared")
            self.isolation = "shared"
        if self._shared is None:
            shared = Tenant(self.options.client_id, self.options.client_secret, fresh=False)
            answer = self._token_response(shared, None)
            if answer.status_code != 200:
                raise KitError(f"the token endpoint {self.token_url} refused client {shared.client_id!r}: "
                               f"{answer.status_code} {answer.text[:300]}")
            shared.tokens[None] = _token_entry(answer)
            self._shared = shared
            self.tenants.append(shared)
        return self._shared

    def token(self, tenant: Tenant | None = None, scope: str | None = ALL_SCOPES) -> str:
        tenant = tenant or self.main
        cached = tenant.tokens.get(scope)
        if cached and cached[1] - time.monotonic() > 60:
            return cached[0]
        answer = self._token_response(tenant, scope)
        if answer.status_code != 200:
            raise ContractViolation(
                "token endpoint issues tokens", f"200 with a bearer token for scope {scope or '(all)'}", answer,
                operation="POST /oauth2/token")
        tenant.tokens[scope] = _token_entry(answer)
        return tenant.tokens[scope][0]

    def token_request(self, form: dict, auth=None, **kwargs) -> requests.Response:
        return self._send("POST", self.token_url, data=form, auth=auth, **kwargs)

    def _token_response(self, tenant: Tenant, scope: str | None) -> requests.Response:
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        try:
            return self.token_request(form, auth=(tenant.client_id, tenant.client_secret))
        except TargetUnreachable as exc:
            raise KitError(f"cannot reach the token endpoint {self.token_url}: {exc.reason}") from None
        except requests.RequestException as exc:
            raise KitError(f"cannot reach the token endpoint {self.token_url}: {_reason(exc)}") from None

    # -- requests -----------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.base_url + path

    def request(self, method: str, path: str, *, tenant: Tenant | None = None, scope: str | None = ALL_SCOPES,
                token: str | None = None, auth: bool = True, **kwargs) -> requests.Response:
        """A request to the API; `auth=False` sends no token, `token=` a given one."""
        headers = dict(kwargs.pop("headers", None) or {})
        if auth:
            headers["Authorization"] = f"Bearer {token if token is not None else self.token(tenant, scope)}"
        return self._send(method, self.url(path), headers=headers, **kwargs)

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", self.options.timeout)
        try:
            return self.session.request(method, url, **kwargs)
        except requests.ConnectionError as exc:
            unreachable = TargetUnreachable(f"cannot reach {url.split('?')[0]}: {_reason(exc)}")
            unreachable.reason = _reason(exc)
            raise unreachable from None

    # -- the kit's own slots ----------------------------------------------------------
    def slot_body(self, start: datetime | None = None, minutes: int = SLOT_MINUTES) -> dict:
        """A valid, non-overlapping slot for the kit's provider, far in the future."""
        start = start or self._clock.next()
        self.issued_starts.add(start.isoformat())
        return {
            "pd_provider_uuid": self.options.provider_uuid,
            "location": list(self.options.location),
            "appointment_type": self.appointment_type,
            "start_date": start.isoformat(),
            "end_date": (start + timedelta(minutes=minutes)).isoformat(),
        }

    def next_slot_start(self) -> datetime:
        return self._clock.next()

    def unknown_uuid(self) -> str:
        """An id nobody has used (for "unknown record" requests), derived from the run's seed."""
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def record_slot(self, tenant: Tenant, slot_uuid: str) -> None:
        tenant.created_slots[str(slot_uuid).lower()] = None

    def owns(self, slot_uuid: str) -> bool:
        key = str(slot_uuid).lower()
        return any(key in tenant.created_slots for tenant in self.tenants)

    def create_slot(self, tenant: Tenant | None = None, body: dict | None = None) -> dict:
        """Create one of the kit's slots (201 expected); it is deleted again when the run ends."""
        tenant = tenant or self.main
        body = body or self.slot_body()
        answer = self.request("POST", "/schedule/slots/", tenant=tenant, json=body)
        slot = self.payload(answer)
        if isinstance(slot, dict) and isinstance(slot.get("pd_appointment_uuid"), str):
            self.record_slot(tenant, slot["pd_appointment_uuid"])
        if answer.status_code != self.wire.created or not isinstance(slot, dict) or "pd_appointment_uuid" not in slot:
            hint = ""
            if answer.status_code == 404:
                hint = (f"is provider {self.options.provider_uuid} known to the target? "
                        "Pass one it knows with --provider-uuid")
            elif answer.status_code == 422:
                hint = f"pass an appointment type code the target knows with --appointment-type"
            raise ContractViolation("create an open slot", f"{self.wire.created} with the open slot (pd_appointment_uuid, booked "
                                    "false)", answer, operation="POST /schedule/slots/", detail=hint)
        return slot

    def cleanup(self) -> list[str]:
        """Cancel and delete every slot the run created; answers what could not be removed."""
        leftovers = []
        for tenant in self.tenants:
            for slot_uuid in list(tenant.created_slots):
                try:
                    if not self._remove_slot(tenant, slot_uuid):
                        leftovers.append(f"{slot_uuid} ({tenant.client_id})")
                except (requests.RequestException, ContractViolation) as exc:
                    leftovers.append(f"{slot_uuid} ({tenant.client_id}): {exc}".splitlines()[0])
                tenant.created_slots.pop(slot_uuid, None)
        return leftovers

    def _remove_slot(self, tenant: Tenant, slot_uuid: str) -> bool:
        found = self.request("GET", f"/schedule/appointments/{slot_uuid}", tenant=tenant)
        if found.status_code == 404:
            return True
        records = self.payload(found)
        record = records[0] if isinstance(records, list) and records else records
        if isinstance(record, dict) and record.get("booked"):
            self.request("DELETE", f"/schedule/appointments/{slot_uuid}", tenant=tenant)
        gone = self.request("DELETE", f"/schedule/slots/{slot_uuid}", tenant=tenant)
        return gone.status_code in (200, 204, 404)

    def close(self) -> None:
        self.session.close()

    # -- discovery ----------------------------------------------------------------------
    def preflight(self) -> list[str]:
        """One authorised GET before any suite: a wrong base URL or a token the API refuses ends
        the run here with one message. Answers the appointment type codes the target lists."""
        url = self.url("/schedule/appointmenttypes/")
        try:
            answer = self.request("GET", "/schedule/appointmenttypes/")
        except TargetUnreachable as exc:
            raise KitError(f"{exc} (is --base-url the API base, e.g. http://127.0.0.1:8000/api/v4?)") from None
        except ContractViolation as exc:
            raise KitError(f"the token endpoint {self.token_url} did not issue a token: {exc.actual}") from None
        if answer.status_code in (401, 403):
            raise KitError(f"the API refused the token the token endpoint {self.token_url} issued: GET {url} "
                           f"answered {answer.status_code} {answer.text[:200]} (check --token-url and the "
                           "credentials)")
        if answer.status_code != 200:
            raise KitError(f"GET {url} answered {answer.status_code} {answer.text[:200]}; is --base-url the API "
                           "base (the URL before /schedule/..., e.g. http://127.0.0.1:8000/api/v4)?")
        try:
            items = self.wire.payload(answer)
        except ValueError:
            raise KitError(f"GET {url} answered 200 without JSON ({answer.text[:120]!r}); is --base-url the API "
                           "base (e.g. http://127.0.0.1:8000/api/v4)?") from None
        codes = [item.get("type") for item in items or [] if isinstance(item, dict)] if isinstance(items, list) else []
        return [code for code in codes if isinstance(code, str) and code]

    def other_provider(self) -> str | None:
        """A second provider the target knows: `--other-provider-uuid`, else the first provider
        other than the kit's that the target's `GET /sandbox/providers` lists (a sandbox addition;
        None on a target without it)."""
        if self.options.other_provider_uuid:
            return self.options.other_provider_uuid
        if not hasattr(self, "_other_provider"):
            self._other_provider = None
            try:
                answer = self.request("GET", "/sandbox/providers")
            except (requests.RequestException, ContractViolation):
                answer = None
            items = self.payload(answer) if answer is not None and answer.status_code == 200 else None
            for item in items if isinstance(items, list) else []:
                found = item.get("pd_provider_uuid") if isinstance(item, dict) else None
                if isinstance(found, str) and found.lower() != self.options.provider_uuid.lower():
                    self._other_provider = found
                    break
        return self._other_provider

    def other_place(self) -> tuple[float, float]:
        """A second place: `--other-location`, else 3 miles north-east of `--location`."""
        if self.options.other_location is not None:
            return tuple(self.options.other_location)
        lat, lon = self.options.location
        step = 3 / 69.055 / math.sqrt(2)
        east = lon + step / max(0.05, math.cos(math.radians(lat)))
        return round(lat + step if lat + step <= 90 else lat - step, 6), round((east + 180) % 360 - 180, 6)

    def payload(self, answer):
        try:
            return self.wire.payload(answer)
        except ValueError:
            return None

    def describe(self) -> str:
        return (f"target {self.where} (token URL {self.token_url}); isolation: {self.isolation}, "
                f"tenant {self.main.client_id}; slots for provider {self.options.provider_uuid} "
                f"at {list(self.options.location)}, type {self.appointment_type}")


def in_process_sandbox():
    """A fresh sandbox in memory: nothing to start, nothing left behind."""
    from pokitdok_sandbox.app import create_app
    from pokitdok_sandbox.settings import Settings

    return create_app(Settings(db_path=None))


class _SlotClock:
    """Far-future, non-overlapping slot start times (two hours apart within a run), from the seed."""

    def __init__(self, seed: int):
        rng = random.Random(f"kit-clock-{seed}")
        self._next = datetime(rng.randrange(2300, 2900), 1, 1) + timedelta(hours=rng.randrange(0, 364 * 24 - 2000))

    def next(self) -> datetime:
        start, self._next = self._next, self._next + timedelta(hours=2)
        return start


def _token_entry(answer: requests.Response) -> tuple[str, float]:
    body = _json(answer) or {}
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ContractViolation("token endpoint issues tokens", "200 with an access_token", answer,
                                operation="POST /oauth2/token")
    expires_in = body.get("expires_in")
    lifetime = expires_in if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600
    return token, time.monotonic() + lifetime


def _json(answer: requests.Response):
    try:
        return answer.json()
    except ValueError:
        return None
