"""pokitdok-sandbox serve | reset | seed | export | migrate | check | contract."""

from __future__ import annotations

import argparse
import errno
import importlib.metadata
import ipaddress
import os
import secrets
import socket
import sys
from dataclasses import asdict, replace
from pathlib import Path
from urllib.parse import urlsplit

from pokitdok_sandbox.contract_tests import runner as contract_runner
from pokitdok_sandbox.fixtures import doc_examples as doc

from . import datasets, fixture_files, serving
from .datasets import SeedSettings
from .errors import SandboxError
from .extras.rate_limits import parse_limit
from .settings import DEFAULT_DB, MEMORY, Limits, Settings
from .stores import Store, StoreError, location_of, open_store, redact, store_class
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
    serve.add_argument("--port", type=int, default=8000,
                       help="port to listen on (default: 8000; 0: a free port, printed in the banner)")
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

    seed = commands.add_parser("seed", help="re-generate every tenant's data set (and the default for new ones), "
                               "or load a fixture file (--from)")
    _db_option(seed)
    seed.add_argument("--seed", type=int, default=None, help="Faker seed (default: 0)")
    seed.add_argument("--providers", type=int, default=None,
                      help="generated providers, beside the documentation's own, which every data set keeps "
                           "(default: 20)")
    seed.add_argument("--slots", type=int, default=None,
                      help="generated slots, beside the documentation's own (default: 200)")
    seed.add_argument("--from", dest="from_file", default=None, metavar="FILE",
                      help="load this fixture file (YAML or JSON, docs/fixture-files.md) instead of generated "
                           "records; a record the rules refuse is named and nothing is loaded")
    seed.add_argument("--tenant", action="append", default=None, metavar="CLIENT_ID",
                      help="only this tenant (client id; may be repeated; default: every tenant and the demo client)")

    export = commands.add_parser("export", help="write a tenant's data set as a fixture file (docs/fixture-files.md)")
    _db_option(export)
    export.add_argument("--tenant", default=None, metavar="CLIENT_ID", help="the tenant (default: the demo client)")
    export.add_argument("--output", "-o", default=None, metavar="FILE",
                        help="write here (YAML for .yaml/.yml, else JSON; default: JSON on standard output)")

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
        return {"serve": _serve, "reset": _reset, "seed": _seed, "export": _export, "migrate": _migrate,
                "check": _check, "contract": contract_runner.run_from_args}[args.command](args)
    except StoreError as exc:
        print(f"pokitdok-sandbox: {exc}", file=sys.stderr)
        return 2
    except fixture_files.FixtureError as exc:
        print(f"pokitdok-sandbox: {exc.message}; nothing was loaded", file=sys.stderr)
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
                        help=f"TinyDB file, or {MEMORY} for no file at all (env POKITDOK_SANDBOX_DB, "
                             f"default ./{DEFAULT_DB})")
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
        elif getattr(store, "migrated_from", None):
            print(f"{store.description}: rewritten in format {store.FORMAT_VERSION} from format {store.migrated_from}")
        else:
            print(f"{store.description}: format {store.FORMAT_VERSION}, up to date")
    finally:
        store.close()
    return 0


def _check(args) -> int:
    settings = _settings(args)
    report = store_class(settings).check(location_of(settings), args.salvage)
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
    # The port first: one in use is said before anything is opened or printed.
    try:
        listener = serving.listen(args.host, args.port)
    except OSError as exc:
        print(f"pokitdok-sandbox: {_listen_problem(args, exc)}", file=sys.stderr)
        return 2
    port = listener.getsockname()[1]  # the real one when --port 0 asked for any free port
    # The schema, the demo tenant and the demo client exist before any worker starts.
    try:
        app = create_app(settings)
    except BaseException:
        listener.close()
        raise
    base = f"http://{_url_host(args.host)}:{port}"
    print(_banner(base, settings, args.workers), flush=True)
    options = serving.uvicorn_options(args.host, port, args.log_level, args.access_log)
    if args.workers == 1:
        serving.run(app, listener, options)
        return 0
    # Worker processes build their own app from the environment (uvicorn needs an import string);
    # uvicorn binds the port itself for them, the one just found free.
    listener.close()
    app.sandbox.tenants.store.close()
    del app
    os.environ.update(settings.to_env())
    uvicorn.run("pokitdok_sandbox.app:create_app_from_env", factory=True, workers=args.workers, **options)
    return 0


def _listen_problem(args, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"port {args.port} on {args.host} is in use (another server, or a sandbox still running); "
                f"stop it, or give another port with --port (--port 0 picks a free one)")
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on port {args.port}; give a port above 1023 with --port"
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {args.host}: not an address of this machine; give another with --host"
    return f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}; try another --host or --port"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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
    if args.from_file is not None:
        return _load(args)
    if args.tenant:
        print("pokitdok-sandbox: --tenant goes with --from (generated data sets are seeded for every tenant)",
              file=sys.stderr)
        return 2
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
        print(f"seeded {tenant_id} with seed {chosen.seed}: {summary['providers']} providers ({chosen.providers} "
              f"generated, {len(doc.PROVIDERS)} from the documentation), {summary['slots']} slots ({chosen.slots} "
              f"generated, {len(doc.SLOTS)} from the documentation; {summary['booked']} booked)")
    store.close()
    return 0


def _load(args) -> int:
    if any(value is not None for value in (args.seed, args.providers, args.slots)):
        print("pokitdok-sandbox: --from loads a fixture file; --seed, --providers and --slots are for generated "
              "data sets, give one or the other", file=sys.stderr)
        return 2
    fixture = fixture_files.read_file(args.from_file)  # checked whole before the store is opened
    settings, store = _open(args)
    try:
        tenants = Tenants(store, settings.seed)
        targets = args.tenant or sorted(set(store.tenant_ids()) | {settings.demo_client_id})
        for tenant_id in targets:
            summary = tenants.load(tenant_id, fixture.dataset, fixture.description, Path(args.from_file).name)
            print(f"loaded {args.from_file} into {tenant_id}: {summary['providers']} providers, "
                  f"{summary['patients']} patients, {summary['slots']} slots ({summary['booked']} booked)")
    finally:
        store.close()
    return 0


def _export(args) -> int:
    settings, store = _open(args)
    try:
        tenant_id = args.tenant or settings.demo_client_id
        if not store.tenant_exists(tenant_id):
            print(f"pokitdok-sandbox: no tenant {tenant_id} in {store.description}; give a client id it serves "
                  f"with --tenant", file=sys.stderr)
            return 2
        remembered = store.tenant_settings(tenant_id) or {}
        with store.transaction(tenant_id) as tenant:
            document = fixture_files.export(tenant, remembered.get("description"))
    finally:
        store.close()
    yaml = args.output is not None and Path(args.output).suffix.lower() in (".yaml", ".yml")
    text = fixture_files.dump(document, yaml=yaml)
    if args.output is None:
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"exported {tenant_id} to {args.output}: {len(document['providers'])} providers, "
              f"{len(document['slots'])} slots", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
