"""The contract kit against the correct sandbox, many times: false alarms and how long a run takes.

    python bench/kit_runs.py [--runs 20] [--target in-process|tinydb|postgresql] [--workers 4]
                             [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--max-examples 100]

Each run is what a user types, `pokitdok-sandbox contract` with the defaults and a fresh seed
(`--seed` from 1 upwards, so a failing run can be replayed): in-process (the default), or with
`--base-url` against one `pokitdok-sandbox serve` on a TinyDB file or on a throw-away PostgreSQL
database with `--workers` processes. Every run must pass; the report gives each run's exit
status, wall time and the CPU time of the kit's process, and keeps the summary of a failing run
next to the report. Nothing here is asserted by the test suite: it is a measurement.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pokitdok_sandbox.testing import free_port

COMMAND = shutil.which("pokitdok-sandbox") or "pokitdok-sandbox"


@contextmanager
def pg_database(admin_url: str):
    import psycopg

    name = f"pokitdok_kit_runs_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def served(store_args: list[str], workers: int, log: Path):
    port = free_port()
    command = [COMMAND, "serve", "--port", str(port), *store_args]
    if workers > 1:
        command += ["--workers", str(workers)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"the sandbox did not start: see {log}")
                    time.sleep(0.3)
            yield f"http://127.0.0.1:{port}/api/v4"
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def one_run(seed: int, base_url: str | None, max_examples: int, keep: Path) -> dict:
    command = [COMMAND, "contract", "--seed", str(seed), "--max-examples", str(max_examples)]
    if base_url:
        command += ["--base-url", base_url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        (keep / f"failed-seed-{seed}.txt").write_text(done.stdout + done.stderr)
    return {"seed": seed, "exit": done.returncode, "wall": wall, "cpu": cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="consecutive runs (20)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed of the first run (1); then +1 each")
    parser.add_argument("--target", choices=("in-process", "tinydb", "postgresql"), default="in-process",
                        help="in-process: `contract` alone; tinydb/postgresql: against `serve` (in-process)")
    parser.add_argument("--workers", type=int, default=4, help="server workers for --target postgresql (4)")
    parser.add_argument("--pg", default=os.environ.get("POKITDOK_SANDBOX_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server (a database is created and dropped)")
    parser.add_argument("--max-examples", type=int, default=100, help="the kit's --max-examples (100, its default)")
    parser.add_argument("--keep", type=Path, default=Path("kit-runs"),
                        help="folder for the summaries of failing runs (kit-runs)")
    args = parser.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def run_all(base_url):
            for seed in range(args.first_seed, args.first_seed + args.runs):
                result = one_run(seed, base_url, args.max_examples, args.keep)
                results.append(result)
                print(f"seed {seed:>4}  exit {result['exit']}  wall {result['wall']:6.1f} s  "
                      f"kit CPU {result['cpu']:6.1f} s", flush=True)

        if args.target == "in-process":
            run_all(None)
        elif args.target == "tinydb":
            with served(["--db", str(tmp / "sandbox.json")], 1, args.keep / "server.log") as base_url:
                run_all(base_url)
        else:
            with pg_database(args.pg) as url, served(["--store", url], args.workers,
                                                     args.keep / "server.log") as base_url:
                run_all(base_url)

    passed = sum(1 for r in results if r["exit"] == 0)
    walls = [r["wall"] for r in results]
    cpus = [r["cpu"] for r in results]
    load = os.getloadavg()[0]
    target = args.target + (f", {args.workers} workers" if args.target == "postgresql" else "")
    print(f"\n{passed}/{len(results)} runs passed ({target}, --max-examples {args.max_examples}); "
          f"wall median {statistics.median(walls):.1f} s (max {max(walls):.1f}), kit CPU median "
          f"{statistics.median(cpus):.1f} s; load average at the end {load:.1f}")
    if passed != len(results):
        print(f"failing runs: {[r['seed'] for r in results if r['exit'] != 0]}; summaries in {args.keep}/")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
