"""The authority: OAuth2 clients, the tokens it issues, and bearer-token checks (the token
endpoint's HTTP adapter is `sandbox/api/token.py`).

Each client id is a tenant with its own data set. The demo client exists from
the start; with open registration an unknown client id registers itself on its
first token request with the secret it presents (like moto's accounts), so
parallel CI jobs can each pick a fresh id and never see each other's data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import unquote

from . import offload
from .errors import OAuthError, TokenRefused

ALL_SCOPES = ("user_schedule", "business_schedule")
MAX_CLIENT_ID_LENGTH = 200


def _secret_hash(secret: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


class Authority:
    """Issues and checks tokens; clients and tokens persist in the store."""

    def __init__(self, store, settings, clock=time.time):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.ensure_client(settings.demo_client_id, settings.demo_client_secret)

    def ensure_client(self, client_id: str, secret: str, scopes=ALL_SCOPES, most: int | None = None) -> dict | None:
        """The client, registered now if new (None: not registered, `most` clients exist already)."""
        client = self.store.get_client(client_id)
        if client is None:
            salt = secrets.token_hex(8)
            # Two processes registering one id at once: the first one stored wins, for both.
            client = self.store.add_client({"client_id": client_id, "salt": salt,
                                            "secret_hash": _secret_hash(secret, salt), "scopes": list(scopes)}, most)
        return client

    def authenticate(self, client_id: str, secret: str) -> dict:
        client = self.store.get_client(client_id)
        if client is None and self.settings.open_registration:
            most = self.settings.limits.tenants
            client = self.ensure_client(client_id, secret, most=most)
            if client is None:
                raise OAuthError(403, "tenant_limit", f"this sandbox already serves {most} client ids, its limit "
                                 "(--max-tenants); use a client id it knows, or ask its operator to raise the limit",
                                 "client_id")
        expected = client["secret_hash"] if client else _secret_hash("", "unknown-client")
        presented = _secret_hash(secret, client["salt"] if client else "unknown-client")
        # Compare in constant time whether or not the client exists.
        if not hmac.compare_digest(expected, presented) or client is None:
            raise OAuthError(401, "invalid_client", "unknown client id or wrong client secret", "client_secret")
        return client

    def issue(self, form: dict, authorization: str | None) -> dict:
        client_id, secret = _client_credentials(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError(400, "invalid_request", "send grant_type=client_credentials in the form body",
                             "grant_type")
        if grant_type != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type",
                             f"grant_type must be client_credentials, not {grant_type[:40]!r}", "grant_type")
        client = self.authenticate(client_id, secret)
        requested = (form.get("scope") or "").replace(",", " ").split()
        unknown = [s for s in requested if s not in client["scopes"]]
        if unknown:
            raise OAuthError(400, "invalid_scope", f"scope {' '.join(unknown)} is not available to this client",
                             "scope")
        scopes = requested or client["scopes"]
        now = self.clock()
        token = {
            "access_token": secrets.token_urlsafe(32),
            "client_id": client["client_id"],
            "scopes": list(scopes),
            "expires_at": now + self.settings.token_ttl_seconds,
        }
        self.store.put_token(token, now, keep=self.settings.limits.client_tokens)
        return {
            "access_token": token["access_token"],
            "token_type": "bearer",
            "expires": int(token["expires_at"]),
            "expires_in": self.settings.token_ttl_seconds,
            "scope": " ".join(scopes),
        }

    def tenant_of_request(self, scope) -> str | None:
        """The client id of a request's valid bearer token, if it has one (for requests the token check never saw)."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                kind, _, token = value.decode("latin-1").partition(" ")
                if kind.lower() == "bearer" and token.strip():
                    known = self.store.cached_token(token.strip(), fresh=False)  # never waits: after the answer
                    if known is None or known["expires_at"] <= self.clock():
                        return None
                    return known["client_id"]
        return None

    async def verify(self, access_token: str) -> dict:
        """`check_token` from the event loop: a store on the network is asked through `offload.run`
        (its wait awaited), unless it knows the token already."""
        if self.store.cached_token(access_token) is None:  # to be read from the store
            return await offload.run(self.store, self.check_token, access_token)
        return self.check_token(access_token)  # from the cache: no wait

    def check_token(self, access_token: str) -> dict:
        """The token's info, or a 401 that tells an expired token from one the server never issued."""
        return self._info(self.store.get_token(access_token))

    def _info(self, token: dict | None) -> dict:
        if token is None:
            raise TokenRefused("invalid_token", "this access token was not issued by this server; "
                                                "get one from POST /oauth2/token")
        if token["expires_at"] <= self.clock():
            expired = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(token["expires_at"]))
            raise TokenRefused("token_expired", f"the access token expired at {expired}; "
                                                "get a new one from POST /oauth2/token")
        return {"sub": token["client_id"], "scope": token["scopes"]}


def _client_credentials(form: dict, authorization: str | None) -> tuple[str, str]:
    """Client id and secret from HTTP Basic (preferred) or from the form body."""
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
            client_id, secret = decoded.split(":", 1)
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "malformed HTTP Basic credentials", "Authorization") from None
        return _checked_client_id(unquote(client_id)), unquote(secret)
    client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id or secret is None:
        raise OAuthError(401, "invalid_client",
                         "send client_id and client_secret by HTTP Basic or in the form body", "client_id")
    return _checked_client_id(client_id), secret


def _checked_client_id(client_id: str) -> str:
    """A client id names a tenant: 1 to 200 printable characters, however it was sent."""
    if not client_id or len(client_id) > MAX_CLIENT_ID_LENGTH or not client_id.isprintable():
        raise OAuthError(401, "invalid_client", f"client_id must be 1 to {MAX_CLIENT_ID_LENGTH} printable characters "
                         "(no control characters such as NUL or newline)", "client_id")
    return client_id


def form_fields(form) -> dict:
    """A form's fields as a dict; of a repeated field, the first value counts."""
    return {name: form.getlist(name)[0] for name in form}
