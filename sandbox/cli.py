"""pokitdok-sandbox serve | reset | seed | contract."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import sys
from dataclasses import asdict, replace

from contract_tests import runner as contract_runner

from . import datasets
from .datasets import SeedSettings
from .settings import DEFAULT_DB, Settings
from .store import Store, StoreError

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pokitdok-sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="start the sandbox server (seeds the database on first start)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    _db_option(serve)
    serve.add_argument("--token-ttl", type=int, default=None, help="access token lifetime in seconds (3600)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--workers", type=int, default=1,
                       help="server processes; the embedded TinyDB store is single-process, so only 1")
    serve.add_argument("--admin-token", default=None,
                       help="needed in X-Sandbox-Admin-Token for /sandbox/reset, /sandbox/seed and the other "
                            "sandbox changes (fault rules, clearing the request journal) "
                            "(env POKITDOK_SANDBOX_ADMIN_TOKEN; generated when listening beyond loopback)")

    reset = commands.add_parser("reset", help="put every tenant back to its seeded state")
    _db_option(reset)

    seed = commands.add_parser("seed", help="re-generate every tenant's data set (and the default for new ones)")
    _db_option(seed)
    seed.add_argument("--seed", type=int, default=None, help="Faker seed (0)")
    seed.add_argument("--providers", type=int, default=None, help="generated providers (20)")
    seed.add_argument("--slots", type=int, default=None, help="generated slots (200)")

    contract = commands.add_parser("contract", help="run the contract test kit against a server "
                                   "(default: an in-process sandbox); see docs/contract-kit.md")
    contract_runner.add_arguments(contract)

    args = parser.parse_args(argv)
    try:
        return {"serve": _serve, "reset": _reset, "seed": _seed, "contract": contract_runner.run_from_args}[
            args.command](args)
    except StoreError as exc:
        print(f"pokitdok-sandbox: {exc}", file=sys.stderr)
        return 2


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=None, metavar="PATH",
                        help=f"TinyDB file (env POKITDOK_SANDBOX_DB, default ./{DEFAULT_DB})")


def _open(args) -> tuple[Settings, Store]:
    settings = Settings.from_env(db_path=args.db)
    return settings, Store(settings.db_path)


def _serve(args) -> int:
    import uvicorn

    from .app import create_app

    if args.workers != 1:
        print("pokitdok-sandbox: the embedded TinyDB store is single-process; serve it with --workers 1 "
              "(one process handles requests concurrently on threads)", file=sys.stderr)
        return 2
    settings = Settings.from_env(db_path=args.db, token_ttl_seconds=args.token_ttl, admin_token=args.admin_token)
    if settings.admin_token is None and not _is_loopback(args.host):
        settings = replace(settings, admin_token=secrets.token_urlsafe(24))
    app = create_app(settings)
    base = f"http://{args.host}:{args.port}"
    print(_banner(base, settings), flush=True)
    # h11's default 16 KiB line limit would answer a long query string with a bare
    # text 400; let it through so the sandbox refuses it in its own error shape.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                h11_max_incomplete_event_size=1024 * 1024)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _banner(base: str, settings: Settings) -> str:
    return "\n".join([
        f"pokitdok-sandbox on {base}  (database: {settings.db_path})",
        f"  API base      {base}/api/v4",
        f"  token URL     {base}/oauth2/token",
        f"  Swagger UI    {base}/api/v4/ui/",
        f"  console       {base}/console",
        f"  demo client   id {settings.demo_client_id}  secret {settings.demo_client_secret}",
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
    defaults = datasets.remembered_defaults(store, settings.seed)
    tenants = store.tenant_ids() or [settings.demo_client_id]
    for tenant_id in tenants:
        summary = datasets.reset_tenant(store, tenant_id, defaults)
        print(f"reset {tenant_id}: {summary['slots']} slots ({summary['booked']} booked)")
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
    for tenant_id in sorted(set(store.tenant_ids()) | {settings.demo_client_id}):
        summary = datasets.seed_tenant(store, tenant_id, chosen)
        print(f"seeded {tenant_id} with seed {chosen.seed}: {summary['providers']} providers, "
              f"{summary['slots']} slots ({summary['booked']} booked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
