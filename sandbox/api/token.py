"""The token endpoint (OAuth2 client credentials), at `/oauth2/token` (outside the API base, as on
the original platform) and at `/api/v4/oauth2/token` (for clients that join every path to the API
base): one adapter, the same content-type rule, the same rules of the authority, the same answer.

Not the platform's envelope: OAuth2 client libraries read the token, and RFC 6749's errors, at
the top level.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from .. import offload
from ..answers import unreadable_form
from ..auth import form_fields
from ..context import of_scope
from ..envelope import encode
from ..errors import OAuthError

FORM = "application/x-www-form-urlencoded"
# PHP's curl given an array (the official PHP client's token request) posts multipart/form-data,
# which the platform accepted: the same fields, another encoding.
MULTIPART = "multipart/form-data"
FORMS = (FORM, MULTIPART)
REFUSED_TYPE = (f"send the token request as {FORM} (grant_type=client_credentials) or as {MULTIPART} "
                "with the same fields")


async def token(request) -> Response:
    """POST a form `grant_type=client_credentials` (+ `scope`), credentials by HTTP Basic or in the form;
    URL-encoded or multipart."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in FORMS:
        raise OAuthError(400, "invalid_request", REFUSED_TYPE, "Content-Type")
    try:
        form = form_fields(await request.form())
    except HTTPException as exc:  # a multipart body without its boundary, or broken
        raise OAuthError(400, "invalid_request", unreadable_form(request.scope, str(exc.detail)),
                         "Content-Type") from None
    authority = of_scope(request.scope).authority
    issued = await offload.run(authority.store, authority.issue, form, request.headers.get("Authorization"))
    return Response(encode(issued), media_type="application/json", headers=OAuthError.NO_STORE)
