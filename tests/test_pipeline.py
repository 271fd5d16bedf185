"""The one request pipeline (sandbox/middleware/pipeline.py) and the errors it answers."""

from __future__ import annotations

import re

from pokitdok_sandbox.errors import OAuthError, ScopeRefused, TokenMissing, Unprocessable

from .conftest import DEMO
from .helpers import ROOT, SCHEDULERS

# A name Connexion, Starlette or Schemathesis keeps to itself: imported with a leading underscore,
# reached as an attribute with one, or a module their documentation does not describe (Schemathesis's
# own ASGI transport: the kit has its own, contract_tests/asgi_transport.py).
_PRIVATE = re.compile(r"from (connexion|starlette|schemathesis)[\w.]* import [^#\n]*\b_\w"
                      r"|(connexion|starlette|schemathesis)(\.\w+)*\._\w"
                      r"|schemathesis\.python\b")


def test_no_private_name_of_the_libraries_is_used_anywhere_in_the_project():
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for folder in ("sandbox", "contract_tests", "bench", "tests", "fixtures", "examples")
             for path in sorted((ROOT / folder).rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if _PRIVATE.search(line)]
    assert not found, "\n".join(found)


def test_an_error_renders_itself_with_its_field_as_data():
    error = Unprocessable("start_date must be an ISO 8601 date-time, not 'x'", "start_date")
    body = error.body({"activity_id": "a"})
    assert body["meta"] == {"activity_id": "a"}
    assert body["data"]["errors"] == {
        "status": 422, "error": "unprocessable", "field": "start_date",
        "message": "start_date must be an ISO 8601 date-time, not 'x'",
        "validation": {"start_date": ["must be an ISO 8601 date-time, not 'x'"]}}
    # 401: the platform's bare shape; a missing scope: the envelope with data.errors.scope
    assert TokenMissing().body({}) == {"message": "Unauthorized", "error": "token_missing",
                                       "error_description": TokenMissing().message}
    refused = ScopeRefused.for_operation(["user_schedule"], ["business_schedule"])
    assert refused.status == 403 and refused.field == "scope"
    assert refused.body({})["data"]["errors"]["scope"] == "'user_schedule' scope required to access this API"
    assert 'scope="user_schedule"' in refused.headers["WWW-Authenticate"]
    # the token endpoint's: RFC 6749's shape, never cached
    oauth = OAuthError(400, "invalid_request", "send a form")
    assert oauth.body({}) == {"error": "invalid_request", "error_description": "send a form"}
    assert oauth.headers["Cache-Control"] == "no-store"


def test_a_multipart_token_request_without_boundary_is_a_400_at_both_token_paths(client):
    for path in ("/oauth2/token", "/api/v4/oauth2/token"):
        answer = client.post(path, content=b"x", auth=DEMO, headers={"Content-Type": "multipart/form-data"})
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"] == "invalid_request"
        assert "cannot be read as multipart/form-data" in answer.json()["error_description"]
        assert answer.headers["cache-control"] == "no-store"


def test_head_and_options_on_an_operation(client, auth):
    assert client.head(SCHEDULERS, headers=auth).status_code == 200
    refused = client.options(SCHEDULERS, headers=auth)
    assert refused.status_code == 405 and refused.headers["allow"] == "GET"
    assert refused.json()["data"]["errors"]["message"] == f"OPTIONS is not allowed on {SCHEDULERS}; it takes GET"


def test_the_token_path_under_the_api_base_lists_what_it_allows(client):
    answer = client.get("/api/v4/oauth2/token")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"


def test_both_token_paths_answer_alike(client):
    """One adapter at both paths: unknown form fields are ignored (RFC 6749 section 3.2), the first of
    a repeated field counts, an empty form lacks its grant_type."""
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in (b"grant_type=client_credentials&foo=1", b"grant_type=client_credentials&grant_type=x",
                 b"", b"grant_type=client_credentials&scope=user_schedule&scope=business_schedule"):
        answers = [client.post(path, content=body, headers=form, auth=DEMO) for path in
                   ("/oauth2/token", "/api/v4/oauth2/token")]
        shapes = [(answer.status_code, {k: v for k, v in answer.json().items() if k not in ("access_token", "expires")})
                  for answer in answers]
        assert shapes[0] == shapes[1], (body, shapes)
    assert shapes[0] == (200, {"expires_in": 3600, "scope": "user_schedule", "token_type": "bearer"})
