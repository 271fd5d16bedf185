"""The sandbox console: one static page (sandbox/static/console.*) that signs in as a client
and shows its data set, request journal and fault rules through the API. No build step.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse

from .errors import NotFound

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
HEADERS = {
    # The page talks to its own origin only, and runs no inline code.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


async def page(_request: Request):
    return FileResponse(STATIC / "console.html", media_type="text/html", headers=HEADERS)


async def asset(request: Request):
    name = request.path_params["name"]
    if name not in ASSETS:
        raise NotFound(f"the console has no {name!r}", "path")
    return FileResponse(STATIC / name, media_type=ASSETS[name], headers=HEADERS)


def register(app) -> None:
    """Add the console's routes to a Connexion app."""
    app.add_url_rule("/console", "console", page, methods=["GET"])
    app.add_url_rule("/console/{name}", "console_asset", asset, methods=["GET"])
