"""Does bulk work hold the event loop? One tenant seeds 100k slots over HTTP while another reads.

    python bench/seed_latency.py [--slots 100000] [--store postgresql://...]

Starts `pokitdok-sandbox serve` on a fresh TinyDB file (or the given store), warms tenant B,
then measures B's reads (open slots of a provider over a day, one slot by uuid) from 4 threads:
first alone, then while tenant A's `POST /api/v4/sandbox/seed {"slots": N}` runs. Prints p50,
p99 and max of each. Target: p99 under 100 ms while the seed runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pokitdok_sandbox.fixtures.doc_examples import OPEN_SLOT, PROVIDER_UUID  # noqa: E402
from pokitdok_sandbox.testing import free_port  # noqa: E402

READ_THREADS = 4


def _token(origin: str, client_id: str) -> str:
    answer = httpx.post(f"{origin}/oauth2/token", data={"grant_type": "client_credentials"},
                        auth=(client_id, "secret"), timeout=30)
    answer.raise_for_status()
    return answer.json()["access_token"]


def _reads(api: str, token: str, until: threading.Event, seconds: float | None = None) -> list[float]:
    """Latencies (ms) of B's reads from several threads, until `until` is set (or for `seconds`)."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds if seconds else None
    paths = [f"/schedule/appointments/?pd_provider_uuid={PROVIDER_UUID}"
             "&start_date=2026-12-07T00:00:00&end_date=2026-12-08T00:00:00",
             f"/schedule/appointments/{OPEN_SLOT}"]

    def loop():
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
            number = 0
            while not until.is_set() and (deadline is None or time.monotonic() < deadline):
                started = time.perf_counter()
                answer = client.get(paths[number % len(paths)])
                took = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, answer.text
                with lock:
                    latencies.append(took)
                number += 1

    threads = [threading.Thread(target=loop) for _ in range(READ_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def _summary(name: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{name:<28} {len(ordered):>6} reads  p50 {statistics.median(ordered):6.1f} ms  "
            f"p99 {p99:6.1f} ms  max {ordered[-1]:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=100_000)
    parser.add_argument("--store", default=None, help="a postgresql:// URL (default: a fresh TinyDB file)")
    args = parser.parse_args()

    port = free_port()
    origin, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api/v4"
    with tempfile.TemporaryDirectory() as directory:
        store = ["--store", args.store] if args.store else ["--db", str(Path(directory) / "bench.json")]
        server = subprocess.Popen([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", *store, "--port", str(port),
                                   "--log-level", "warning", "--max-seed-slots", str(args.slots),
                                   "--max-tenant-slots", str(args.slots + 1000)],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{origin}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            reader = _token(origin, f"bench-reader-{port}")
            seeder = _token(origin, f"bench-seeder-{port}")
            _reads(api, reader, threading.Event(), seconds=2)  # tenant B seeded and warm
            print(_summary("tenant B alone", _reads(api, reader, threading.Event(), seconds=5)))

            done, outcome = threading.Event(), {}

            def seed():
                started = time.perf_counter()
                answer = httpx.post(f"{api}/sandbox/seed", json={"seed": 1, "slots": args.slots},
                                    headers={"Authorization": f"Bearer {seeder}"}, timeout=600)
                outcome.update(status=answer.status_code, seconds=time.perf_counter() - started)
                done.set()

            threading.Thread(target=seed).start()
            during = _reads(api, reader, done)
            print(_summary(f"tenant B while A seeds {args.slots // 1000}k", during))
            print(f"tenant A's seed: HTTP {outcome['status']} in {outcome['seconds']:.1f} s")
            print(_summary("tenant B after", _reads(api, reader, threading.Event(), seconds=5)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
