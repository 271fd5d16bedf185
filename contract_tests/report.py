"""What a failure report says: the operation, the check, the request as curl, expected vs actual."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

# Headers every HTTP client adds by itself: left out of the curl line.
_NOISE_HEADERS = {"user-agent", "accept-encoding", "accept", "connection", "content-length"}
BODY_EXCERPT = 600
# Form fields never shown: the client secret (as Basic credentials are shown as $CLIENT_ID:$CLIENT_SECRET).
_SECRET_FIELDS = {"client_secret": "$CLIENT_SECRET", "client_id": "$CLIENT_ID"}


def excerpt(text: str | bytes | None, limit: int = BODY_EXCERPT) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " ..."


def curl_command(prepared) -> str:
    """A `requests.PreparedRequest` as a curl line; the bearer token becomes `$ACCESS_TOKEN`."""
    words = ["curl", "-X", prepared.method]
    for name, value in prepared.headers.items():
        if name.lower() in _NOISE_HEADERS:
            continue
        if name.lower() == "authorization":
            scheme, _, credentials = value.partition(" ")
            if scheme.lower() == "bearer" and len(credentials) > 24:  # a real token, not one of the kit's fakes
                words += ["-H", '"Authorization: Bearer $ACCESS_TOKEN"']
                continue
            if scheme.lower() == "basic":
                words += ["-u", '"$CLIENT_ID:$CLIENT_SECRET"']
                continue
        words += ["-H", shlex.quote(f"{name}: {value}")]
    body = prepared.body
    if body:
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        content_type = str(prepared.headers.get("Content-Type", "")).lower()
        if "x-www-form-urlencoded" in content_type:
            words += ["-d", _masked_form(body)]
        else:
            words += ["-d", shlex.quote(body)]
    words.append(shlex.quote(prepared.url))
    return " ".join(words)


def _masked_form(body: str) -> str:
    """A form body for a shell, with the client id and secret as variables (double quotes)."""
    fields = parse_qsl(body, keep_blank_values=True)
    parts = []
    for name, value in fields:
        if name in _SECRET_FIELDS:
            parts.append(f"{urlencode({name: ''})}{_SECRET_FIELDS[name]}")
        else:
            parts.append(urlencode({name: value}).replace("$", "%24"))
    return '"' + "&".join(parts).replace('"', "%22").replace("`", "%60").replace("\\", "%5C") + '"'


def mask_secret(text: str, secret: str | None) -> str:
    """`text` with a secret replaced (the last line of defence of every report the kit writes)."""
    if not text or not secret or len(secret) < 4:
        return text
    return text.replace(secret, "$CLIENT_SECRET")


def response_line(response) -> str:
    """`409 application/json {"status": 409, ...}` for a requests or Schemathesis response."""
    if response is None:
        return "(no response)"
    status = getattr(response, "status_code", "?")
    headers = getattr(response, "headers", {}) or {}
    content_type = _header(headers, "content-type") or "no Content-Type"
    body = getattr(response, "text", None)
    if body is None:
        body = getattr(response, "content", b"")
    return f"{status} {content_type} {excerpt(body)}".rstrip()


def _header(headers, name: str) -> str | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    if value is None:
        for key, item in dict(headers).items():
            if key.lower() == name:
                value = item
                break
    if isinstance(value, list):
        value = value[0] if value else None
    return value


@dataclass
class Finding:
    """One contract violation, as the summary shows it."""

    test: str  # pytest node id
    operation: str  # e.g. "PUT /schedule/appointments/{pd_appointment_uuid}"
    check: str  # e.g. "status_code_conformance" or a business rule's name
    expected: str
    actual: str
    curl: str = ""
    detail: str = ""
    rule: str = ""  # the rule broken, without the offending value: findings with one cause share it

    def key(self) -> tuple:
        return self.test, self.operation, self.check, self.cause()

    def cause(self) -> str:
        return self.rule or (self.expected.splitlines()[0] if self.expected else "")

    def render(self, tests: list[str] | None = None) -> str:
        tests = tests or [self.test]
        shown = "\n".join(tests[:4]) + (f"\n(and {len(tests) - 4} more)" if len(tests) > 4 else "")
        lines = [f"{self.operation} -- {self.check}", f"  test:      {_indent(shown)}",
                 f"  expected:  {_indent(self.expected)}", f"  actual:    {_indent(self.actual)}"]
        if self.detail:
            lines.append(f"  detail:    {_indent(self.detail)}")
        if self.curl:
            lines.append(f"  request:   {_indent(self.curl)}")
        return "\n".join(lines)


def _indent(text: str) -> str:
    return text.replace("\n", "\n             ")


class ContractViolation(AssertionError):
    """A business rule or contract check the target broke, with everything needed to reproduce it."""

    def __init__(self, check: str, expected: str, response=None, *, operation: str = "", actual: str | None = None,
                 detail: str = "", curl: str | None = None, rule: str = ""):
        self.check = check
        self.rule = rule
        self.expected = expected
        self.operation = operation
        self.actual = actual if actual is not None else response_line(response)
        self.detail = detail
        self.recorded = False  # already in the run's findings
        request = getattr(response, "request", None)
        self.curl = curl if curl is not None else (curl_command(request) if request is not None and
                                                   hasattr(request, "method") else "")
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"contract violation: {self.check}"]
        if self.operation:
            lines.append(f"operation: {self.operation}")
        lines += [f"expected:  {self.expected}", f"actual:    {self.actual}"]
        if self.detail:
            lines.append(f"detail:    {self.detail}")
        if self.curl:
            lines.append(f"reproduce: {_indent(self.curl)}")
        return "\n".join(lines)

    def finding(self, test: str) -> Finding:
        return Finding(test=test, operation=self.operation or "-", check=self.check, expected=self.expected,
                       actual=self.actual, curl=self.curl, detail=self.detail, rule=self.rule)


@dataclass
class Findings:
    """Every violation seen during a run, keyed so repeats (Hypothesis shrinking) show once."""

    items: dict[tuple, Finding] = field(default_factory=dict)

    def add(self, finding: Finding) -> None:
        # The last one wins: Hypothesis replays the minimal failing example last.
        self.items.pop(finding.key(), None)
        self.items[finding.key()] = finding

    def for_tests(self, failed: set[str]) -> list[Finding]:
        return [f for f in self.items.values() if f.test in failed]


@dataclass
class KitResult:
    """The outcome of one kit run (`runner.run()`)."""

    exit_code: int
    failed: dict = field(default_factory=dict)  # test node id -> first line of its failure
    findings: list = field(default_factory=list)  # Finding, one per distinct violation
    summary: str = ""
    seed: int | None = None
    partitions: set = field(default_factory=set)  # (rule, partition) the run exercised (partitions.RULES)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def checks(self) -> set[str]:
        return {finding.check for finding in self.findings}
