"""Where a read costs CPU: the server's CPU time per request, by thread, TinyDB and PostgreSQL side by side.

    python bench/cpu_per_request.py [--pg postgresql://postgres@127.0.0.1:5432/postgres] [--rounds 2]
                                    [--duration 6] [--only schedulers]

One worker each, the read mix of `bench/run.py` (or only its requests whose path contains
`--only`), wrk with 16 connections. For each server and round: requests a second, and the CPU
seconds its process spent per request (from /proc), split into the event loop's thread and the
other threads (location searches, connections being opened, the watchdog). With one worker
process the server is bound by one core, so CPU per request is what sets its rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (bench/run.py: servers, seeding, mixes, wrk)

TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu(port: int) -> tuple[float, float]:
    """CPU seconds so far of the server on `port`: (its event loop's thread, every other thread)."""
    loop = others = 0.0
    for pid in bench.server_pids(port):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
            if tid == str(pid):
                loop += seconds
            else:
                others += seconds
    return loop, others


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", default=os.environ.get("POKITDOK_SANDBOX_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--only", default=None, help="keep only the mix's requests whose path contains this")
    args = parser.parse_args()
    wrk = bench.ensure_wrk()
    work = Path(tempfile.mkdtemp(prefix="pokitdok-cpu-"))
    mix = bench.read_mix(work / "read.tsv", 1000)
    if args.only:
        mix.write_text("".join(line + "\n" for line in mix.read_text().splitlines() if args.only in line))
    tinydb = work / "db.json"
    bench.seed(tinydb, 1000)
    with bench.pg_database(args.pg) as pg_url:
        if pg_url is None:
            return 1
        bench.seed(pg_url, 1000)
        with bench.sandbox_server(tinydb) as tiny_port, bench.sandbox_server(pg_url) as pg_port:
            servers = {"TinyDB": tiny_port, "PostgreSQL": pg_port}
            tokens = {name: bench.get_token(port) for name, port in servers.items()}
            for name, port in servers.items():
                bench.warm_up(wrk, port, lambda name=name: (bench.BENCH / "mix.lua", [str(mix), tokens[name]]), 16)
            print("| store | round | req/s | CPU µs/request: event loop | other threads | all |")
            print("|---|---:|---:|---:|---:|---:|")
            for number in range(1, args.rounds + 1):
                for name, port in servers.items():
                    before = thread_cpu(port)
                    rate = bench.run_wrk(wrk, port, lambda name=name: (bench.BENCH / "mix.lua",
                                                                       [str(mix), tokens[name]]),
                                         args.duration, 16)["rps"]
                    after = thread_cpu(port)
                    requests = rate * args.duration
                    loop, others = ((a - b) * 1e6 / requests for a, b in zip(after, before))
                    print(f"| {name} | {number} | {rate:,.0f} | {loop:.0f} | {others:.0f} | {loop + others:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
