"""Benchmark: issuing a token on the TinyDB store with none and with many live tokens.

    python bench/token_issuance.py [--live 0,30000] [--issue 300]

For each count, a fresh database file gets that many live tokens of other clients (written in one
journal entry), then `--issue` tokens are issued through the authority, as the token endpoint does;
the median and p99 time of one issuance are printed. Run it with PYTHONPATH naming another source
tree (see bench/fairness.py `importable`) to measure that tree the same way.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from pokitdok_sandbox.auth import Authority
from pokitdok_sandbox.settings import Settings
from pokitdok_sandbox.stores.tinydb import TOKENS_TABLE, TinyDBStore


def measure(live: int, issue: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = TinyDBStore(Path(tmp) / "db.json")
        try:
            settings = Settings(db_path=None)
            authority = Authority(store, settings)
            expires = time.time() + 3600
            tokens = [(secrets.token_urlsafe(32), f"client-{number % 500}") for number in range(live)]
            store.apply([("put", TOKENS_TABLE, token, {"access_token": token, "client_id": client,
                                                       "scopes": ["user_schedule"], "expires_at": expires})
                         for token, client in tokens])
            form = {"grant_type": "client_credentials", "client_id": settings.demo_client_id,
                    "client_secret": settings.demo_client_secret}
            authority.issue(form, None)
            took = []
            for _ in range(issue):
                started = time.perf_counter()
                authority.issue(form, None)
                took.append((time.perf_counter() - started) * 1000)
        finally:
            store.close()
    took.sort()
    return statistics.median(took), took[int(len(took) * 0.99)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live", default="0,30000")
    parser.add_argument("--issue", type=int, default=300)
    args = parser.parse_args()
    print("| live tokens | issuance p50 ms | p99 ms |")
    print("|---:|---:|---:|")
    for live in (int(count) for count in args.live.split(",")):
        p50, p99 = measure(live, args.issue)
        print(f"| {live:,} | {p50:.2f} | {p99:.2f} |")


if __name__ == "__main__":
    main()
