"""Sandbox administration: reset or re-seed the caller's own data set.

When the server has an admin token (always, when it listens beyond loopback),
these also need it in the X-Sandbox-Admin-Token header.
"""

import hmac

from .. import fixture_files
from ..context import current, request
from ..errors import SandboxError, Unprocessable
from . import one

ADMIN_HEADER = "X-Sandbox-Admin-Token"


def _require_admin() -> None:
    expected = current().settings.admin_token
    if expected is None:
        return
    presented = request.headers.get(ADMIN_HEADER, "")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise SandboxError(403, f"this server needs its admin token (printed when it started) in the {ADMIN_HEADER} "
                                "header for sandbox administration", ADMIN_HEADER, "admin_token_required")


# Reset and seed are bulk work (a seed may write 100k slots): plain functions, which the pipeline
# runs on a worker thread, so the event loop goes on answering other requests meanwhile.

def reset_tenant(user):
    _require_admin()
    return one(current().tenants.reset(user))  # its reset hooks clear what the extras keep for the tenant


def seed_tenant(user, body=None):
    _require_admin()
    body = dict(body or {})
    fixture = body.pop("fixture", None)
    if fixture is None:
        return one(current().tenants.seed(user, **body))
    if body:
        raise Unprocessable(f"give either fixture or {', '.join(sorted(body))}, not both", "fixture")
    loaded = fixture_files.load_document(fixture, "fixture")
    return one(current().tenants.load(user, loaded.dataset, loaded.description))


def get_dataset(user):
    tenants = current().tenants
    tenants.open(user)
    return one(tenants.summary(user))


def export_tenant(user):
    tenants = current().tenants
    settings = tenants.store.tenant_settings(user) or {}
    with tenants.transaction(user) as tenant:
        document = fixture_files.export(tenant, settings.get("description"))
    return one(document)
