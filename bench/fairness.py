"""Benchmark: one tenant's heavy searches beside another tenant's reads, on each store.

    python bench/fairness.py [--rounds 3] [--duration 5] [--slots 20000] [--searchers 4]
                             [--pg postgresql://postgres@127.0.0.1:5432/postgres | --no-pg]
                             [--beside DIR]

Tenant A seeds --slots slots and runs --searchers concurrent searches that read all of them
(`location=...&radius=5000mi&limit=1000`, the widest legal search); tenant B reads one
appointment by uuid, one request at a time. B's latency is measured quiet (A idle) and loaded
(A searching), in alternating rounds, every server up at once; the medians of the rounds'
p50/p99 are reported, with A's searches per second.

--beside DIR also runs the same measurements on the sandbox of another source tree (say an older
commit, `git archive <commit> | tar -x -C DIR`), side by side with this one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import ROOT, free_port, pg_database, serving, store_option  # noqa: E402

OPEN_SLOT = "ab21e95b-8fa6-41d4-98b9-9a1f6fcff0d2"  # the documentation's open slot, in every demo data set
EVERYWHERE = {"location": "37,-96", "radius": "5000mi", "limit": "1000"}


def importable(tree: Path, into: Path) -> Path:
    """A folder on which `python -m pokitdok_sandbox.cli` runs the sandbox of source tree `tree`."""
    package = into / "pokitdok_sandbox"
    shutil.copytree(tree / "sandbox", package)
    for name in ("fixtures", "contract_tests"):
        (package / name).unlink(missing_ok=True)
        (package / name).symlink_to(tree / name)
    return into


def server(store, path: Path | None, slots: int):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(path)) if path else None
    return serving([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", *store_option(store), "--port", str(port),
                    "--log-level", "warning", "--max-seed-slots", str(slots)], port, cwd=path or ROOT, env=env)


def token(origin: str, client_id: str) -> str:
    answer = httpx.post(f"{origin}/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, "secret"), timeout=60)
    answer.raise_for_status()
    return answer.json()["access_token"]


class Target:
    def __init__(self, port: int, slots: int):
        self.origin = f"http://127.0.0.1:{port}"
        self.heavy = {"Authorization": f"Bearer {token(self.origin, 'tenant-a')}"}
        self.reader = {"Authorization": f"Bearer {token(self.origin, 'tenant-b')}"}
        seeded = httpx.post(f"{self.origin}/api/v4/sandbox/seed", json={"slots": slots}, headers=self.heavy,
                            timeout=600)
        seeded.raise_for_status()
        with httpx.Client(timeout=60) as client:  # both tenants seeded and warm
            self.search(client)
            self.read(client)

    def search(self, client: httpx.Client) -> None:
        answer = client.get(f"{self.origin}/api/v4/schedule/appointments/", params=EVERYWHERE, headers=self.heavy)
        assert answer.status_code == 200 and len(answer.json()["data"]) == 1000, answer.text[:300]

    def read(self, client: httpx.Client) -> float:
        started = time.perf_counter()
        answer = client.get(f"{self.origin}/api/v4/schedule/appointments/{OPEN_SLOT}", headers=self.reader)
        took = time.perf_counter() - started
        assert answer.status_code == 200, answer.text[:300]
        return took * 1000

    def _searching(self, stop, searches) -> None:
        """One of tenant A's searchers (a process of its own: the measuring client's timings stay its own)."""
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                answer = client.get(f"{self.origin}/api/v4/schedule/appointments/", params=EVERYWHERE,
                                    headers=self.heavy)
                assert answer.status_code == 200, answer.text[:300]
                with searches.get_lock():
                    searches.value += 1

    def measure(self, duration: float, searchers: int) -> dict:
        stop, searches = multiprocessing.Event(), multiprocessing.Value("i", 0)
        processes = [multiprocessing.Process(target=self._searching, args=(stop, searches)) for _ in range(searchers)]
        for process in processes:
            process.start()
        time.sleep(1.0 if searchers else 0)
        latencies, started, before = [], time.perf_counter(), searches.value
        with httpx.Client(timeout=60) as client:
            while time.perf_counter() - started < duration:
                latencies.append(self.read(client))
        done = searches.value - before
        stop.set()
        for process in processes:
            process.join()
        latencies.sort()
        return {"p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
                "searches/s": done / (time.perf_counter() - started)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--slots", type=int, default=20_000)
    parser.add_argument("--searchers", type=int, default=4)
    parser.add_argument("--pg", default=os.environ.get("POKITDOK_SANDBOX_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--no-pg", action="store_true")
    parser.add_argument("--beside", type=Path, default=None, help="another source tree to measure side by side")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        codes = {"this tree": None}
        if args.beside:
            codes[f"{args.beside.name}"] = importable(args.beside.resolve(), tmp / "beside")
        targets = {}
        for code, path in codes.items():
            stores = {"TinyDB": tmp / f"{len(targets)}.json"}
            if not args.no_pg:
                url = stack.enter_context(pg_database(args.pg))
                if url:
                    stores["PostgreSQL"] = url
            for store_name, store in stores.items():
                port = stack.enter_context(server(store, path, args.slots))
                targets[(store_name, code)] = Target(port, args.slots)
        rounds: dict[tuple, list[dict]] = {}
        for _ in range(args.rounds):
            for key, target in targets.items():
                for phase, searchers in (("quiet", 0), ("loaded", args.searchers)):
                    rounds.setdefault((*key, phase), []).append(target.measure(args.duration, searchers))
        print(f"Tenant B's reads (one appointment by uuid) while tenant A runs {args.searchers} concurrent searches "
              f"over {args.slots:,} slots (radius=5000mi, limit=1000); medians of {args.rounds} rounds of "
              f"{args.duration:g} s\n")
        print("| store | code | A searching | B p50 ms | B p99 ms | A searches/s |")
        print("|---|---|---|---:|---:|---:|")
        for (store_name, code, phase), results in rounds.items():
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            searches = f"{med['searches/s']:.1f}" if phase == "loaded" else ""
            print(f"| {store_name} | {code} | {'yes' if phase == 'loaded' else 'no'} | {med['p50']:.1f} | "
                  f"{med['p99']:.1f} | {searches} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
