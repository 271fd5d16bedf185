"""The contract (openapi.yaml) as the sandbox's own layers read it: loaded once, here.

The pipeline compiles its operations from it (`operations.py`), Connexion serves it (Swagger
UI, `openapi.json`); the facts the sandbox's layers need (which operations are documented rather
than sandbox administration, which methods each path allows, which paths end in a slash) come
from here.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml

# In the repository a link to the top-level openapi.yaml; in an installed wheel, a copy.
SPEC_PATH = Path(__file__).resolve().parent / "openapi.yaml"
API_BASE = "/api/v4"
TOKEN_PATH = "/oauth2/token"  # outside the API base, as on the original platform (also under it)
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@functools.cache
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


def _operations():
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            if method in _HTTP_METHODS:
                yield path, item, operation


@functools.cache
def documented_operations() -> frozenset[str]:
    """Operation ids of the platform's operations (not sandbox administration)."""
    return frozenset(operation["operationId"] for _path, _item, operation in _operations()
                     if "sandbox" not in operation.get("tags", ()))


@functools.cache
def methods_by_path() -> tuple[tuple[re.Pattern, str], ...]:
    """What a 405's Allow header lists for each path: every method the contract declares there."""
    rules = [(re.compile("^/$"), "GET")]
    for path, item in spec()["paths"].items():
        prefix = "" if item.get("servers") else API_BASE  # the token endpoint lives outside the base path
        template = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(prefix + path))
        rules.append((re.compile(f"^{template}$"), ", ".join(m.upper() for m in item if m in _HTTP_METHODS)))
    return tuple(rules)


@functools.cache
def slashless_paths() -> frozenset[str]:
    """`/api/v4/schedule/schedulers` and the like: documented collection paths without their trailing slash."""
    return frozenset(API_BASE + path.rstrip("/") for path in spec()["paths"]
                     if path.endswith("/") and "{" not in path)


@functools.cache
def _items_with_slash() -> re.Pattern:
    templates = [re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(API_BASE + path)) for path in spec()["paths"]
                 if "{" in path and not path.endswith("/")]
    return re.compile("^(?:" + "|".join(templates) + ")/$")


def is_item_path_with_slash(path: str) -> bool:
    """`/api/v4/schedule/appointments/<uuid>/`: a documented item path with a trailing slash it does not have."""
    return path.endswith("/") and _items_with_slash().match(path) is not None


@functools.cache
def list_parameters() -> frozenset[str]:
    """Names of the query parameters the contract declares as arrays (`location`)."""
    schemas = spec().get("components", {}).get("schemas", {})
    names = set()
    for _path, item, operation in _operations():
        for parameter in [*item.get("parameters", ()), *operation.get("parameters", ())]:
            if parameter.get("in") != "query":
                continue
            schema = parameter.get("schema", {})
            if "$ref" in schema:
                schema = schemas.get(schema["$ref"].rsplit("/", 1)[-1], {})
            if schema.get("type") == "array":
                names.add(parameter["name"])
    return frozenset(names)
