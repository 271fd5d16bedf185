"""Benchmark: the cost of a token check on PostgreSQL, from the process's cache and from the database.

    python bench/token_check.py --pg postgresql://postgres@127.0.0.1:5432/postgres [--checks 20000]

A cached token is read again once `TOKEN_RECHECK_SECONDS` have passed since it was last read (so a
token dropped by another process is refused everywhere within that time). This measures one check
through the authority served from the cache, and one that reads the database (the re-read), and
prints what the re-read adds per check for a token used at a few request rates. It works in a
scratch database it creates on that server and drops afterwards.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from urllib.parse import urlsplit, urlunsplit

import psycopg

from pokitdok_sandbox.auth import Authority
from pokitdok_sandbox.settings import Settings
from pokitdok_sandbox.stores import postgres
from pokitdok_sandbox.stores.postgres import PostgresStore


def timed(check, token: str, count: int) -> float:
    """The median microseconds of one check."""
    took = []
    for _ in range(count):
        started = time.perf_counter()
        check(token)
        took.append((time.perf_counter() - started) * 1e6)
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True)
    parser.add_argument("--checks", type=int, default=20000)
    args = parser.parse_args()
    name = f"pokitdok_sandbox_bench_{secrets.token_hex(4)}"
    with psycopg.connect(args.pg, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        cached, read, recheck = measure(urlunsplit(urlsplit(args.pg)._replace(path=f"/{name}")), args.checks)
    finally:
        postgres.close_pools()
        with psycopg.connect(args.pg, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}"')
    print("| check | median µs |\n|---|---:|")
    print(f"| from the cache | {cached:.1f} |\n| read from the database | {read:.1f} |")
    print(f"\nOne re-read per token every {recheck:g} s adds, per check:\n")
    print("| requests per second with one token | added µs per check | ratio to a cached check |\n|---:|---:|---:|")
    for rate in (1, 10, 100, 1000):
        added = read / max(rate * recheck, 1)
        print(f"| {rate:,} | {added:.1f} | {(cached + added) / cached:.2f} |")


def measure(url: str, checks: int) -> tuple[float, float, float]:
    """Median microseconds of a check from the cache and of one reading the database; the re-read interval."""
    store = PostgresStore(url)
    try:
        settings = Settings(db_path=None, store_url=url)
        authority = Authority(store, settings)
        form = {"grant_type": "client_credentials", "client_id": "bench-token-check", "client_secret": "s"}
        token = authority.issue(form, None)["access_token"]
        cached = timed(authority.check_token, token, checks)
        recheck = postgres.TOKEN_RECHECK_SECONDS
        postgres.TOKEN_RECHECK_SECONDS = 0.0  # every check reads the database
        read = timed(authority.check_token, token, max(checks // 20, 200))
        postgres.TOKEN_RECHECK_SECONDS = recheck
    finally:
        store.close()
    return cached, read, recheck


if __name__ == "__main__":
    main()
