"""Benchmark: the sandbox beside its alternatives, and at growing data sizes, in one run.

    python bench/run.py [--duration 4] [--rounds 5] [--connections 8] [--sizes 1000,10000,100000]
                        [--no-prism] [--pg postgresql://postgres@127.0.0.1:5432/postgres | --no-pg]

Every server runs on loopback and takes the same request mix from wrk (one
thread; the server gets the other cores); one worker unless a row says otherwise:
  * reads:  list open slots by provider and by location over one day, get by uuid;
  * writes: book an open slot, cancel a booking made a few requests earlier.

Part 1 compares, at the smallest size, the sandbox with a bare ASGI app answering a
static body (the ceiling) and Stoplight Prism mocking the same openapi.yaml.
Part 2 runs the sandbox at each size and reports p50/p99 of reads and writes,
on TinyDB and, in throw-away databases of the --pg server, on PostgreSQL
with 1 and 4 workers.
The machine is shared and noisy, so what is compared is measured side by side:
all the servers of a table are up at once and take their measurements in
alternating rounds (--rounds, --duration seconds each); a row reports the
medians of its rounds. Absolute numbers move between runs; the ratios much less.

wrk (Debian) and Prism (npm) are installed when absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PRISM_HOME = Path(os.environ.get("PRISM_HOME", Path.home() / ".cache" / "pokitdok-sandbox-bench" / "prism"))
PRISM_BIN = PRISM_HOME / "node_modules" / ".bin" / "prism"
PATIENT = {"_uuid": "500ef469-2767-4901-b705-425e9b6f7f83", "first_name": "John", "last_name": "Doe",
           "email": "john@hondoe.com", "phone": "800-555-1212", "birth_date": "1970-01-01", "member_id": "M000001"}
CANCEL_LAG = 64  # a booking is cancelled this many requests after it was made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement round (4)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per measurement; medians are reported (5)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (8)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="slots per tenant for part 2")
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (no npm)")
    parser.add_argument("--output", type=Path, default=None, help="also write the report (Markdown) here")
    parser.add_argument("--pg", default=os.environ.get("POKITDOK_SANDBOX_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server for the PostgreSQL rows (databases are created and dropped)")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    args = parser.parse_args()

    wrk = ensure_wrk()
    prism = None if args.no_prism else ensure_prism()
    sizes = [int(size) for size in args.sizes.split(",")]
    lines = [f"# Benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             machine_description(args.rounds, args.duration), ""]

    def side_by_side(targets: dict) -> dict:
        return measure_side_by_side(wrk, targets, args.rounds, args.duration, args.connections)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        pg = {}  # one throw-away database per size
        for size in [] if args.no_pg else sizes:
            pg[size] = stack.enter_context(pg_database(args.pg))
            if pg[size] is None:  # no server: said once, no PostgreSQL rows
                pg = {}
                break
        stores = {"TinyDB": (lambda size: tmp / f"size-{size}.json", 1)}
        if pg:
            stores.update({"PostgreSQL": (pg.get, 1), "PostgreSQL, 4 workers": (pg.get, 4)})

        # Seeding, timed: each store location once (the 4-worker rows use the databases seeded for 1 worker).
        seeding = {}
        for store_of, _workers in stores.values():
            for size in sizes:
                location = str(store_of(size))
                if location not in seeding:
                    seeding[location] = seed(store_of(size), size)
        reads = {size: write_read_mix(tmp / f"reads-{size}.tsv", size) for size in sizes}
        compare_size = sizes[0]

        # Part 1: the sandbox against the ceiling and Prism, read mix, smallest size; every server up
        # at once, measured in alternating rounds.
        with ExitStack() as servers:
            targets = {}
            for name, (store_of, workers) in stores.items():
                port = servers.enter_context(sandbox_server(store_of(compare_size), workers))
                label = ("sandbox (Connexion + TinyDB, full validation)" if name == "TinyDB"
                         else f"sandbox on {name}" if workers > 1 else f"sandbox on {name}, 1 worker")
                targets[label] = (port, reads[compare_size], get_token(port))
            port = servers.enter_context(ceiling_server())
            targets["bare ASGI, static JSON (ceiling)"] = (port, reads[compare_size], "static")
            if prism:
                port = servers.enter_context(prism_server(prism))
                # Prism serves the paths without the spec's server prefix.
                unprefixed = tmp / "reads-prism.tsv"
                unprefixed.write_text(reads[compare_size].read_text().replace("\t/api/v4/", "\t/"))
                targets["Stoplight Prism mock of openapi.yaml"] = (port, unprefixed, "any-token")
            rows = side_by_side(targets)
        lines += [f"## Read mix at {compare_size:,} slots, one worker each unless said", "",
                  *table(rows, ("req/s", "p50 ms", "p99 ms", "non-2xx")), ""]
        sandbox_rps = rows["sandbox (Connexion + TinyDB, full validation)"]["rps"]
        lines.append(f"- sandbox / ceiling throughput: {sandbox_rps / rows['bare ASGI, static JSON (ceiling)']['rps']:.2f}")
        if prism:
            lines.append(f"- sandbox / Prism throughput: {sandbox_rps / rows['Stoplight Prism mock of openapi.yaml']['rps']:.2f}")
        lines.append("")

        # Part 2: per store, one server per size, all up at once, measured in alternating rounds.
        scaled = {}
        for name, (store_of, workers) in stores.items():
            with ExitStack() as servers:
                targets = {}
                for size in sizes:
                    port = servers.enter_context(sandbox_server(store_of(size), workers))
                    token = get_token(port)
                    writes = write_write_mix(tmp / f"writes-{name}-{size}.tsv", size, port, token)
                    targets[(size, "reads")] = (port, reads[size], token)
                    targets[(size, "writes")] = (port, writes, token)
                results = side_by_side(targets)
            for size in sizes:
                scaled[(name, size)] = {"reads": results[(size, "reads")], "writes": results[(size, "writes")],
                                        "seed_s": seeding[str(store_of(size))]}
        lines += ["## The sandbox as data grows (slots in the tenant)", "",
                  "| store | slots | seed s | reads req/s | reads p50 ms | reads p99 ms | writes req/s | writes p50 ms | writes p99 ms | non-2xx |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, size in ((name, size) for name in stores for size in sizes):
            result = scaled[(name, size)]
            r, w = result["reads"], result["writes"]
            lines.append(f"| {name} | {size:,} | {result['seed_s']:.1f} | {r['rps']:.0f} | {r['p50']:.1f} | "
                         f"{r['p99']:.1f} | {w['rps']:.0f} | {w['p50']:.1f} | {w['p99']:.1f} | "
                         f"{r['non_2xx'] + w['non_2xx']} |")
        if len(sizes) > 1:
            lines += ["", f"Ratios {sizes[-1]:,} / {sizes[0]:,} slots (target: at most 1.5):"]
            for name in stores:
                small, large = scaled[(name, sizes[0])], scaled[(name, sizes[-1])]
                for mix in ("reads", "writes"):
                    lines.append(f"- {name}, {mix}: p50 {large[mix]['p50'] / small[mix]['p50']:.2f}, "
                                 f"p99 {large[mix]['p99'] / small[mix]['p99']:.2f}")

    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


# -- tools ---------------------------------------------------------------------

def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def ensure_prism() -> Path | None:
    if PRISM_BIN.exists():
        return PRISM_BIN
    if not shutil.which("npm"):
        print("npm not found: skipping Prism", file=sys.stderr)
        return None
    print(f"installing @stoplight/prism-cli into {PRISM_HOME} ...", file=sys.stderr)
    PRISM_HOME.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "@stoplight/prism-cli@5"],
                   cwd=PRISM_HOME, check=True)
    return PRISM_BIN


def machine_description(rounds: int, duration: int) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    return (f"Machine: {os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, "
            f"Python {sys.version.split()[0]}; wrk with 1 thread; each server on loopback, 1 worker unless a row says "
            f"otherwise. Each row: the medians of {rounds} rounds of {duration} s, alternating with the other rows "
            "of its table.")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(port: int, process: subprocess.Popen, path: str = "/", timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start within {timeout}s")


@contextmanager
def serving(command: list[str], port: int, **kwargs):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    try:
        wait_until_up(port, process)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def store_option(store: Path | str) -> list[str]:
    return ["--store", store] if str(store).startswith("postgresql:") else ["--db", str(store)]


def sandbox_server(store: Path | str, workers: int = 1):
    port = free_port()
    return serving([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", *store_option(store), "--port", str(port),
                    "--workers", str(workers), "--log-level", "warning"], port, cwd=ROOT)


@contextmanager
def pg_database(server_url: str | None):
    """A throw-away database on the PostgreSQL server (None: no PostgreSQL rows)."""
    if server_url is None:
        yield None
        return
    import psycopg
    from urllib.parse import urlsplit, urlunsplit

    name = f"pokitdok_sandbox_bench_{random.randrange(16 ** 8):08x}"
    try:
        with psycopg.connect(server_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL unavailable ({str(exc).strip().splitlines()[0]}): skipping its rows", file=sys.stderr)
        yield None
        return
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ceiling_server():
    port = free_port()
    return serving([sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--port", str(port), "--workers", "1",
                    "--log-level", "warning", "--no-access-log"], port, cwd=ROOT)


def prism_server(prism: Path):
    port = free_port()
    return serving([str(prism), "mock", str(ROOT / "openapi.yaml"), "-h", "127.0.0.1", "-p", str(port)], port)


def seed(store: Path | str, slots: int) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "seed", *store_option(store), "--slots", str(slots)],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


# -- the request mixes -----------------------------------------------------------

def get_token(port: int) -> str:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/oauth2/token", method="POST",
                                     data=b"grant_type=client_credentials&client_id=sandbox-demo"
                                          b"&client_secret=sandbox-demo-secret",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())["access_token"]


def _open_slots(size: int) -> list[dict]:
    """The seeded data set's open slots: the generator is deterministic, so the bench knows them."""
    from pokitdok_sandbox.fixtures import generate_dataset

    return [slot for slot in generate_dataset(slots=size)["slots"] if not slot["booked"]]


def write_read_mix(path: Path, size: int) -> Path:
    rng = random.Random(1)
    slots = _open_slots(size)
    lines = []
    for _ in range(300):
        slot = rng.choice(slots)
        day = slot["start_date"][:10]
        window = f"start_date={day}T00:00:00&end_date={day}T23:59:59"
        lat, lon = slot["location"]
        lines.append(f"GET\t/api/v4/schedule/appointments/?pd_provider_uuid={slot['pd_provider_uuid']}&{window}")
        lines.append(f"GET\t/api/v4/schedule/appointments/{slot['pd_appointment_uuid']}")
        lines.append(f"GET\t/api/v4/schedule/appointments/{rng.choice(slots)['pd_appointment_uuid']}")
        lines.append(f"GET\t/api/v4/schedule/appointments/?location={lat}&location={lon}&{window}")
    path.write_text("\n".join(lines) + "\n")
    return path


def write_write_mix(path: Path, size: int, port: int, token: str) -> Path:
    slots = [slot["pd_appointment_uuid"] for slot in _open_slots(size)][:600]
    body = json.dumps({"patient": PATIENT})
    # The first cancels target bookings of the previous lap: make those now.
    for slot in slots[-CANCEL_LAG:]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v4/schedule/appointments/{slot}",
                                         method="PUT", data=body.encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=60).close()
    lines = []
    for number, slot in enumerate(slots):
        lines.append(f"PUT\t/api/v4/schedule/appointments/{slot}\t{body}")
        lines.append(f"DELETE\t/api/v4/schedule/appointments/{slots[(number - CANCEL_LAG) % len(slots)]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def warm_up(wrk: str, port: int, mix: Path, token: str, connections: int) -> None:
    """Lazily built validators, caches and database connection pools, before anything is measured.

    Many connections, so that every worker of a multi-worker server gets some, for long enough
    that each worker's pool grows to what the load needs (after 2 s the 4-worker PostgreSQL rows
    still showed half-second stalls of pool growth in their p99).
    """
    run_wrk(wrk, port, mix, token, 5, max(32, connections))


def run_wrk(wrk: str, port: int, mix: Path, token: str, duration: int, connections: int) -> dict:
    command = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(BENCH / "mix.lua"),
               f"http://127.0.0.1:{port}", "--", str(mix), token]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return {"rps": result["requests"] / (result["duration_us"] / 1e6), "p50": result["p50_us"] / 1000,
            "p99": result["p99_us"] / 1000, "non_2xx": result["non_2xx"] + result["socket_errors"]}


def measure_side_by_side(wrk: str, targets: dict, rounds: int, duration: int, connections: int) -> dict:
    """Each target is (port, mix, token): warm each up, then measure them in turn, `rounds` times over,
    so that whatever else the machine does falls on all of them alike; answer each one's medians."""
    for port, mix, token in targets.values():
        warm_up(wrk, port, mix, token, connections)
    measured = {key: [] for key in targets}
    for _ in range(rounds):
        for key, (port, mix, token) in targets.items():
            measured[key].append(run_wrk(wrk, port, mix, token, duration, connections))
    return {key: {metric: statistics.median(result[metric] for result in results) if metric != "non_2xx"
                  else sum(result[metric] for result in results)
                  for metric in ("rps", "p50", "p99", "non_2xx")}
            for key, results in measured.items()}


def table(rows: dict, headers: tuple) -> list[str]:
    out = ["| server | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    for name, r in rows.items():
        out.append(f"| {name} | {r['rps']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} | {r['non_2xx']} |")
    return out


if __name__ == "__main__":
    sys.exit(main())
