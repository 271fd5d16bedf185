"""The token endpoint (OAuth2 client credentials): one adapter, bound at `/oauth2/token` (a plain
route, outside the API base as on the original platform) and at `/api/v4/oauth2/token` (the
contract's operation, for clients that join every path to the API base). Same content-type rule,
same rules of the authority, same answer, at both.

Not the platform's envelope: OAuth2 client libraries read the token, and RFC 6749's errors, at
the top level.
"""

from __future__ import annotations

from connexion.context import request as _operation_request
from starlette.responses import Response

from .. import offload
from ..auth import OAuthError, form_fields
from ..context import of_scope
from ..envelope import encode

FORM = "application/x-www-form-urlencoded"
# PHP's curl given an array (the official PHP client's token request) posts multipart/form-data,
# which the platform accepted: the same fields, another encoding.
MULTIPART = "multipart/form-data"
FORMS = (FORM, MULTIPART)
REFUSED_TYPE = (f"send the token request as {FORM} (grant_type=client_credentials) or as {MULTIPART} "
                "with the same fields")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 section 5.1


async def token(request) -> Response:
    """POST a form `grant_type=client_credentials` (+ `scope`), credentials by HTTP Basic or in the form;
    URL-encoded or multipart."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in FORMS:
        raise OAuthError(400, "invalid_request", REFUSED_TYPE, "Content-Type")
    return await _answer(request.scope, form_fields(await request.form()), request.headers.get("Authorization"))


async def issue_token(body=None, **_ignored):
    """The contract's operation (`/api/v4/oauth2/token`): Connexion has read the form (and refused
    another content type, which the error handler answers as above)."""
    request = _operation_request
    return await _answer(request.scope, body if isinstance(body, dict) else {}, request.headers.get("Authorization"))


async def _answer(scope, form: dict, authorization: str | None) -> Response:
    authority = of_scope(scope).authority
    issued = await offload.run(authority.store, authority.issue, form, authorization)
    return Response(encode(issued), media_type="application/json", headers=NO_STORE)
