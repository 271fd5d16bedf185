"""pokitdok-sandbox serve | reset | seed | migrate | check | contract."""

from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import os
import secrets
import sys
from dataclasses import asdict, replace
from urllib.parse import urlsplit

from pokitdok_sandbox.contract_tests import runner as contract_runner

from . import datasets, serving
from .datasets import SeedSettings
from .errors import SandboxError
from .extras.rate_limits import parse_limit
from .settings import DEFAULT_DB, Limits, Settings
from .stores import Store, StoreError, open_store, redact, store_class
from .tenants import Tenants


def _version() -> str:
    try:
        return importlib.metadata.version("pokitdok-sandbox")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pokitdok-sandbox", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="start the sandbox server (seeds the database on first start)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default: 127.0.0.1; beyond loopback an admin token is required)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    _db_option(serve)
    serve.add_argument("--token-ttl", type=int, default=None, help="access token lifetime in seconds (default: 3600)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                       help="server log level (default: info)")
    serve.add_argument("--access-log", action="store_true",
                       help="log a line per request (default: off; GET /api/v4/sandbox/journal keeps each "
                            "tenant's last requests either way)")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes (default: 1; more only on the PostgreSQL store, the embedded "
                            "TinyDB store is single-process)")
    serve.add_argument("--rate-limit", default=None, metavar="N/PERIOD",
                       help="every tenant's requests per window, as the platform limited them, e.g. 1000/hour "
                            "(period: second, minute, hour or day; default: no limit; env "
                            "POKITDOK_SANDBOX_RATE_LIMIT); a tenant can set its own with PUT /api/v4/sandbox/rate-limit")
    serve.add_argument("--admin-token", default=None,
                       help="needed in X-Sandbox-Admin-Token for /sandbox/reset, /sandbox/seed and the other "
                            "sandbox changes (fault rules, clearing the request journal) "
                            "(env POKITDOK_SANDBOX_ADMIN_TOKEN; generated when listening beyond loopback)")
    serve.add_argument("--public-url", default=None, metavar="URL",
                       help="the URL clients reach this server at (e.g. behind a proxy), for the paging links "
                            "meta.next and meta.previous (env POKITDOK_SANDBOX_PUBLIC_URL; default: the address "
                            "it listens on; the request's Host header is never used)")
    defaults = Limits()
    for name, flag in Limits.NAMES.items():
        serve.add_argument(f"--{flag}", dest=f"limit_{name}", type=float if name == "radius_miles" else int,
                           default=None, metavar="N", help=f"{_LIMIT_HELP[name]} (default {getattr(defaults, name):g}; "
                           f"env POKITDOK_SANDBOX_{flag.upper().replace('-', '_')})")

    reset = commands.add_parser("reset", help="put every tenant back to its seeded state")
    _db_option(reset)

    seed = commands.add_parser("seed", help="re-generate every tenant's data set (and the default for new ones)")
    _db_option(seed)
    seed.add_argument("--seed", type=int, default=None, help="Faker seed (default: 0)")
    seed.add_argument("--providers", type=int, default=None, help="generated providers (default: 20)")
    seed.add_argument("--slots", type=int, default=None, help="generated slots (default: 200)")

    migrate = commands.add_parser("migrate", help="create or update the PostgreSQL schema (serve also does it)")
    _db_option(migrate)

    check = commands.add_parser("check", help="report what a TinyDB file holds and any damage; --salvage copies "
                                "every valid record into a new file (the original is left as it is)")
    _db_option(check)
    check.add_argument("--salvage", default=None, metavar="NEW_PATH",
                       help="write every valid record into this new database file (which must not exist)")

    contract = commands.add_parser("contract", help="run the contract test kit against a server "
                                   "(default: an in-process sandbox); see docs/contract-kit.md")
    contract_runner.add_arguments(contract)

    args = parser.parse_args(argv)
    try:
        return {"serve": _serve, "reset": _reset, "seed": _seed, "migrate": _migrate, "check": _check,
                "contract": contract_runner.run_from_args}[args.command](args)
    except StoreError as exc:
        print(f"pokitdok-sandbox: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise
        # The database went away or refused a statement mid-command: say so, without a traceback.
        where = redact(getattr(args, "store", None) or "") or "the PostgreSQL store"
        print(f"pokitdok-sandbox: PostgreSQL at {where} failed: {str(exc).strip().splitlines()[0]}",
              file=sys.stderr)
        return 2


_LIMIT_HELP = {
    "tenants": "client ids (tenants) the server registers; more unknown ids are refused",
    "tenant_slots": "slots one tenant may hold before creating a slot is refused",
    "seed_slots": "generated slots one POST /sandbox/seed may ask for",
    "seed_providers": "generated providers one POST /sandbox/seed may ask for",
    "radius_miles": "widest location search, in miles",
    "slots": "slots of all tenants together; seeds and new slots past it are refused",
    "client_tokens": "live access tokens per client id; issuing one more drops the client's oldest",
}


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="PATH",
                        help=f"TinyDB file (env POKITDOK_SANDBOX_DB, default ./{DEFAULT_DB})")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="postgresql://user[:password]@host[:port]/database for a store shared by several "
                             "processes, or a TinyDB path (env POKITDOK_SANDBOX_STORE; wins over --db)")


def _settings(args, **overrides) -> Settings:
    settings = Settings.from_env(db_path=args.db, store_url=args.store, **overrides)
    args.store = settings.store_url  # for error messages
    return settings


def _open(args) -> tuple[Settings, Store]:
    settings = _settings(args)
    return settings, open_store(settings)


def _migrate(args) -> int:
    settings = _settings(args)
    store = open_store(settings, create=False)  # refuses a store in use, damaged or not a sandbox's
    if store is None:
        print(f"{settings.store_description}: no database there yet; nothing to migrate")
        return 0
    try:
        if store.has_schema:
            print(f"{store.description}: schema version {store.migrate()}, up to date")
        else:
            print(f"{store.description}: nothing to migrate (this store's format has one version)")
    finally:
        store.close()
    return 0


def _check(args) -> int:
    settings = _settings(args)
    report = store_class(settings).check(settings.store_url or settings.db_path, args.salvage)
    print("\n".join(report.lines))
    return 0 if report.intact or args.salvage else 1


def _serve(args) -> int:
    # Reset and seed run on worker threads beside the event loop; a thread holding the GIL keeps the
    # loop waiting up to one switch interval each time it wants it back (5 ms by default, several
    # times per request). Measured with bench/seed_latency.py: reads' p50 during a 100k seed 35 -> 12 ms.
    sys.setswitchinterval(0.0005)
    import uvicorn

    from .app import create_app

    try:
        limits = {name: getattr(args, f"limit_{name}") for name in Limits.NAMES}
        settings = _settings(args, token_ttl_seconds=args.token_ttl, admin_token=args.admin_token,
                             rate_limit=args.rate_limit, limits=limits, public_url=args.public_url)
        parse_limit(settings.rate_limit, "--rate-limit")
        _check_public_url(settings.public_url)
    except ValueError as exc:
        print(f"pokitdok-sandbox: {exc}", file=sys.stderr)
        return 2
    except SandboxError as exc:
        print(f"pokitdok-sandbox: {exc.message}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("pokitdok-sandbox: --workers must be at least 1", file=sys.stderr)
        return 2
    if args.workers > 1 and not store_class(settings).multi_process:
        print(f"pokitdok-sandbox: the store {settings.store_description} is single-process; serve it with "
              "--workers 1 (one process answers every request on its event loop), or give a PostgreSQL store "
              "(--store postgresql://...) to run several workers", file=sys.stderr)
        return 2
    if settings.admin_token is None and not _is_loopback(args.host):
        settings = replace(settings, admin_token=secrets.token_urlsafe(24))
    # The schema, the demo tenant and the demo client exist before any worker starts.
    app = create_app(settings)
    base = f"http://{args.host}:{args.port}"
    print(_banner(base, settings, args.workers), flush=True)
    options = serving.uvicorn_options(args.host, args.port, args.log_level, args.access_log)
    if args.workers == 1:
        uvicorn.run(app, **options)
        return 0
    # Worker processes build their own app from the environment (uvicorn needs an import string).
    app.sandbox.tenants.store.close()
    del app
    os.environ.update(settings.to_env())
    uvicorn.run("pokitdok_sandbox.app:create_app_from_env", factory=True, workers=args.workers, **options)
    return 0


def _check_public_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"--public-url must be http(s)://host[:port][/path], not {url!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _banner(base: str, settings: Settings, workers: int = 1) -> str:
    processes = f", {workers} worker processes" if workers > 1 else ""
    return "\n".join([
        f"pokitdok-sandbox on {base}  (store: {settings.store_description}{processes})",
        f"  API base      {base}/api/v4",
        f"  token URL     {base}/oauth2/token",
        f"  Swagger UI    {base}/api/v4/ui/",
        f"  console       {base}/console",
        f"  demo client   id {settings.demo_client_id}  secret {settings.demo_client_secret}",
        *([f"  rate limit    {settings.rate_limit} per tenant"] if settings.rate_limit else []),
        *([f"  admin token   {settings.admin_token}  (X-Sandbox-Admin-Token for /sandbox/reset, /sandbox/seed "
                f"and the other sandbox changes)"]
          if settings.admin_token else []),
        "  try:",
        f"    TOKEN=$(curl -s -u {settings.demo_client_id}:{settings.demo_client_secret} "
        f"-d grant_type=client_credentials {base}/oauth2/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
        f"    curl -s -H \"Authorization: Bearer $TOKEN\" {base}/api/v4/schedule/schedulers/",
    ])


def _reset(args) -> int:
    settings, store = _open(args)
    tenants = Tenants(store, settings.seed)
    for tenant_id in store.tenant_ids() or [settings.demo_client_id]:
        summary = tenants.reset(tenant_id)
        print(f"reset {tenant_id}: {summary['slots']} slots ({summary['booked']} booked)")
    store.close()
    return 0


def _seed(args) -> int:
    settings, store = _open(args)
    current = datasets.remembered_defaults(store, settings.seed)
    chosen = SeedSettings(
        seed=current.seed if args.seed is None else args.seed,
        providers=current.providers if args.providers is None else args.providers,
        slots=current.slots if args.slots is None else args.slots,
    )
    if min(asdict(chosen).values()) < 0:
        print("pokitdok-sandbox: --seed, --providers and --slots must not be negative", file=sys.stderr)
        return 2
    datasets.remember_defaults(store, chosen)
    tenants = Tenants(store, chosen)  # no limits: the operator's own command
    for tenant_id in sorted(set(store.tenant_ids()) | {settings.demo_client_id}):
        summary = tenants.seed(tenant_id)
        print(f"seeded {tenant_id} with seed {chosen.seed}: {summary['providers']} providers, "
              f"{summary['slots']} slots ({summary['booked']} booked)")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
