"""What a failure report says: the operation, the check, the request as curl, expected vs actual."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

# Headers every HTTP client adds by itself: left out of the curl line.
_NOISE_HEADERS = {"user-agent", "accept-encoding", "accept", "connection", "content-length"}
BODY_EXCERPT = 600


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
        words += ["-d", shlex.quote(body)]
    words.append(shlex.quote(prepared.url))
    return " ".join(words)


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

    def key(self) -> tuple:
        return self.test, self.operation, self.check, self.expected.splitlines()[0] if self.expected else ""

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
                 detail: str = "", curl: str | None = None):
        self.check = check
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
            lines.append(f"reproduce: {self.curl}")
        return "\n".join(lines)

    def finding(self, test: str) -> Finding:
        return Finding(test=test, operation=self.operation or "-", check=self.check, expected=self.expected,
                       actual=self.actual, curl=self.curl, detail=self.detail)


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
