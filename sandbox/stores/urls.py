"""Store locations fit to print. A leaf: the backends and the settings both use it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """A URL fit to print: the password (in the authority or as `?password=`) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.split(':', 1)[0]}:***@{host}")
    if parts.query:
        query = "&".join(f"{p.split('=', 1)[0]}=***" if p.split("=", 1)[0].lower() == "password" else p
                         for p in parts.query.split("&"))
        parts = parts._replace(query=query)
    return urlunsplit(parts)
