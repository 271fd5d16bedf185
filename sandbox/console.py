"""The sandbox console: one static page (sandbox/static/console.*) that signs in as a client
and shows its data set, request journal and fault rules through the API. No build step.
"""

from __future__ import annotations

from pathlib import Path

from flask import send_file

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


def page():
    response = send_file(STATIC / "console.html", mimetype="text/html", max_age=0)
    response.headers.update(HEADERS)
    return response


def asset(name: str):
    if name not in ASSETS:
        raise NotFound(f"the console has no {name!r}", "path")
    response = send_file(STATIC / name, mimetype=ASSETS[name], max_age=0)
    response.headers.update(HEADERS)
    return response


def register(app) -> None:
    """Add the console's routes to a Connexion FlaskApp."""
    app.add_url_rule("/console", "console", page)
    app.add_url_rule("/console/<name>", "console_asset", asset)
