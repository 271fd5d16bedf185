"""Benchmark: the sandbox beside its alternatives, and at growing data sizes, in one run.

    python bench/run.py [--duration 4] [--rounds 5] [--connections 16] [--sizes 1000,10000,100000]
                        [--pg-sizes 1000000] [--no-prism]
                        [--pg postgresql://postgres@127.0.0.1:5432/postgres | --no-pg] [--baseline-python PY]

Every server runs on loopback and takes the same request mix from wrk (one
thread; the server gets the other cores); one worker unless a row says otherwise:
  * reads:    the schedulers, the appointment types, one appointment by uuid, a provider's
              appointments over a month (in turn; bench/mix.lua);
  * searches: open slots by provider and by location over one day, two appointments by uuid;
  * writes:   open a slot, book an open slot, update another slot's description, cancel a
              booking and delete a slot the run made (in turn; bench/writes.lua reads the uuids
              to cancel and delete from the answers).

Part 1 compares, at the smallest size, the sandbox with a bare ASGI app answering a
static body (the ceiling) and Stoplight Prism mocking the same openapi.yaml, on each mix.
Part 2 runs the sandbox at each size and reports p50/p99 of each mix and the server's
resident memory, on TinyDB and, in throw-away databases of the --pg server, on PostgreSQL
with 1 and 4 workers (--pg-sizes: sizes for PostgreSQL only, e.g. 1000000), with each
database's size; seeding is timed, then the PostgreSQL databases are VACUUM (ANALYZE)d.
The machine is shared and noisy, so what is compared is measured side by side:
all the servers of a table are up at once and take their measurements in
alternating rounds (--rounds, --duration seconds each); a row reports the
medians of its rounds. Absolute numbers move between runs; the ratios much less.

wrk (Debian) and Prism (npm) are installed when absent.
"""

from __future__ import annotations

import argparse
import functools
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

from pokitdok_sandbox.testing import free_port

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
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections (16)")
    parser.add_argument("--sizes", default="1000,10000,100000", help="slots per tenant for part 2")
    parser.add_argument("--pg-sizes", default="", help="more sizes for the PostgreSQL rows only (e.g. 1000000)")
    parser.add_argument("--parts", default="1,2", help="which parts to run (1: against Prism and the ceiling, "
                                                      "2: as data grows)")
    parser.add_argument("--no-prism", action="store_true", help="skip Prism (no npm)")
    parser.add_argument("--output", type=Path, default=None, help="also write the report (Markdown) here")
    parser.add_argument("--pg", default=os.environ.get("POKITDOK_SANDBOX_TEST_PG",
                                                       "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="PostgreSQL server for the PostgreSQL rows (databases are created and dropped)")
    parser.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL rows")
    parser.add_argument("--baseline-python", default=None,
                        help="part 1 also measures, side by side, the sandbox this Python interpreter imports "
                             "(e.g. a virtualenv of another branch) on a copy of the same TinyDB data")
    args = parser.parse_args()

    wrk = ensure_wrk()
    parts = {part.strip() for part in args.parts.split(",")}
    prism = None if args.no_prism or "1" not in parts else ensure_prism()
    sizes = [int(size) for size in args.sizes.split(",")]
    pg_sizes = sorted(set(sizes) | {int(size) for size in args.pg_sizes.split(",") if size})
    lines = [f"# Benchmark ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             machine_description(args.rounds, args.duration, args.connections), ""]

    def side_by_side(targets: dict) -> dict:
        return measure_side_by_side(wrk, targets, args.rounds, args.duration, args.connections)

    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        tmp = Path(tmp)
        # One throw-away database per PostgreSQL row and size: each server has its own copy of the data,
        # as the TinyDB rows do, so one row's writes (and the autovacuum after them) do not land in
        # another row's measurements.
        pg = {1: {}, 4: {}}
        for workers in () if args.no_pg else (1, 4):
            for size in pg_sizes:
                pg[workers][size] = stack.enter_context(pg_database(args.pg))
                if pg[workers][size] is None:  # no server: said once, no PostgreSQL rows
                    pg = {}
                    break
            if not pg:
                break
        stores = {"TinyDB": (lambda size: tmp / f"size-{size}.json", 1, sizes)}
        if pg:
            stores.update({"PostgreSQL": (pg[1].get, 1, pg_sizes), "PostgreSQL, 4 workers": (pg[4].get, 4, pg_sizes)})

        # Seeding, timed: each store location once.
        seeding = {}
        for store_of, _workers, store_sizes in stores.values():
            for size in store_sizes:
                location = str(store_of(size))
                if location not in seeding:
                    seeding[location] = seed(store_of(size), size)
                    print(f"seeded {size:,} slots in {seeding[location]:.1f} s ({location.split('/')[-1]})",
                          file=sys.stderr)
        # Then as a database that has been up a while finds them: autovacuum has visited the freshly
        # loaded tables (otherwise it does so, for a million rows, in the middle of the measurements).
        for location in seeding:
            vacuum(location)
        mixes = {size: {"reads": read_mix(tmp / f"reads-{size}.tsv", size),
                        "searches": search_mix(tmp / f"searches-{size}.tsv", size),
                        "writes": write_mix(tmp / f"writes-{size}.tsv", size)}
                 for size in pg_sizes}
        compare_size = sizes[0]

        # Part 1: the sandbox against the ceiling and Prism, each mix, smallest size; every server up
        # at once, measured in alternating rounds.
        if "1" in parts:
            with ExitStack() as servers:
                sandboxes, targets = {}, {}
                for name, (store_of, workers, _sizes) in stores.items():
                    port = servers.enter_context(sandbox_server(store_of(compare_size), workers))
                    label = (TINYDB_LABEL if name == "TinyDB"
                             else f"sandbox on {name}" if workers > 1 else f"sandbox on {name}, 1 worker")
                    sandboxes[label] = (port, get_token(port))
                if args.baseline_python:
                    copy, seeded = tmp / "baseline.json", stores["TinyDB"][0](compare_size)
                    for suffix in ("", ".journal"):  # the snapshot and its journal belong together
                        if Path(f"{seeded}{suffix}").exists():
                            shutil.copyfile(f"{seeded}{suffix}", f"{copy}{suffix}")
                    port = servers.enter_context(sandbox_server(copy, python=args.baseline_python))
                    sandboxes[BASELINE_LABEL] = (port, get_token(port))
                ceiling = servers.enter_context(ceiling_server())
                mock = servers.enter_context(prism_server(prism)) if prism else None
                for mix in ("reads", "searches", "writes"):
                    for label, (port, token) in sandboxes.items():
                        targets[(mix, label)] = target(mixes[compare_size][mix], port, token)
                    if mix != "writes":
                        targets[(mix, CEILING)] = target(mixes[compare_size][mix], ceiling, "static")
                    if mock:
                        # Prism serves the paths without the spec's server prefix.
                        targets[(mix, PRISM)] = target(mixes[compare_size][mix], mock, "any-token", prism=True)
                rows = side_by_side(targets)
            for mix, title in (("reads", "Read mix"), ("searches", "Search mix"), ("writes", "Write mix")):
                mix_rows = {label: row for (row_mix, label), row in rows.items() if row_mix == mix}
                lines += [f"## {title} at {compare_size:,} slots, one worker each unless said", "",
                          *table(mix_rows, ("req/s", "p50 ms", "p99 ms", "non-2xx")), ""]
                sandbox_rps = mix_rows[TINYDB_LABEL]["rps"]
                for label, row in mix_rows.items():
                    if label.startswith("sandbox"):
                        if prism:
                            lines.append(f"- {label} / Prism throughput: {row['rps'] / mix_rows[PRISM]['rps']:.2f}")
                if BASELINE_LABEL in mix_rows:
                    lines.append(f"- sandbox (TinyDB) / baseline throughput: "
                                 f"{sandbox_rps / mix_rows[BASELINE_LABEL]['rps']:.2f} (baseline: "
                                 f"{args.baseline_python})")
                if CEILING in mix_rows:
                    lines.append(f"- sandbox (TinyDB) / ceiling throughput: {sandbox_rps / mix_rows[CEILING]['rps']:.2f}")
                lines.append("")

        # Part 2: per store, one server per size, all up at once, measured in alternating rounds.
        if "2" in parts:
            scaled = {}
            for name, (store_of, workers, store_sizes) in stores.items():
                with ExitStack() as servers:
                    targets, ports = {}, {}
                    for size in store_sizes:
                        port = ports[size] = servers.enter_context(sandbox_server(store_of(size), workers))
                        token = get_token(port)
                        for mix in ("reads", "searches", "writes"):
                            targets[(size, mix)] = target(mixes[size][mix], port, token)
                    results = side_by_side(targets)
                    for size in store_sizes:
                        scaled[(name, size)] = {mix: results[(size, mix)] for mix in ("reads", "searches", "writes")}
                        scaled[(name, size)]["seed_s"] = seeding[str(store_of(size))]
                        scaled[(name, size)]["rss_mb"] = rss_mb(ports[size])
                        scaled[(name, size)]["db_mb"] = database_mb(store_of(size))
            lines += ["## The sandbox as data grows (slots in the tenant)", "",
                      "p50 / p99 in ms. RSS: the server's resident memory after the rounds (all its processes, "
                      "workers included; not PostgreSQL's). DB: the PostgreSQL database's size on disk.", "",
                      "| store | slots | seed s | RSS MiB | DB MiB | reads req/s | reads p50 / p99 | searches req/s | "
                      "searches p50 / p99 | writes req/s | writes p50 / p99 | non-2xx |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
            for name, (_store_of, _workers, store_sizes) in stores.items():
                for size in store_sizes:
                    result = scaled[(name, size)]
                    cells = [f"{result[mix]['rps']:.0f} | {result[mix]['p50']:.1f} / {result[mix]['p99']:.1f}"
                             for mix in ("reads", "searches", "writes")]
                    db_mb = "" if result["db_mb"] is None else f"{result['db_mb']:.0f}"
                    lines.append(f"| {name} | {size:,} | {result['seed_s']:.1f} | {result['rss_mb']:.0f} | {db_mb} | "
                                 f"{' | '.join(cells)} | {sum(result[mix]['non_2xx'] for mix in MIXES)} |")
            lines += ["", f"Ratios to {sizes[0]:,} slots (target: p99 at most 1.5):"]
            for name, (_store_of, _workers, store_sizes) in stores.items():
                small = scaled[(name, store_sizes[0])]
                for size in store_sizes[1:]:
                    large = scaled[(name, size)]
                    ratios = ", ".join(f"{mix} p50 {large[mix]['p50'] / small[mix]['p50']:.2f} "
                                       f"p99 {large[mix]['p99'] / small[mix]['p99']:.2f}" for mix in MIXES)
                    lines.append(f"- {name}, {size:,}: {ratios}")

    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)
    return 0


MIXES = ("reads", "searches", "writes")
TINYDB_LABEL = "sandbox (TinyDB, full validation)"
BASELINE_LABEL = "sandbox, baseline (TinyDB, --baseline-python)"
CEILING = "bare ASGI, static JSON (ceiling)"
PRISM = "Stoplight Prism mock of openapi.yaml"


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


def machine_description(rounds: int, duration: int, connections: int) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU")
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "0")
    return (f"Machine: {os.cpu_count()} cores ({cpu}), {int(memory) // 1024 // 1024} GiB, "
            f"Python {sys.version.split()[0]}; wrk with 1 thread and {connections} connections; each server on loopback, 1 worker unless a row says "
            f"otherwise. Each row: the medians of {rounds} rounds of {duration} s, alternating with the other rows "
            "of its table.")


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


_PROCESSES: dict[int, subprocess.Popen] = {}  # port -> the server's process


@contextmanager
def serving(command: list[str], port: int, **kwargs):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    _PROCESSES[port] = process
    try:
        wait_until_up(port, process)
        yield port
    finally:
        _PROCESSES.pop(port, None)
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def server_pids(port: int) -> list[int]:
    """The server on `port`: its process first, then every process below it (workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    pids, todo = [], [_PROCESSES[port].pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo += children.get(pid, [])
    return pids


def rss_mb(port: int) -> float:
    """Resident memory of the server on `port`: its process and every process below it (workers), MiB."""
    total = 0
    for pid in server_pids(port):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def store_option(store: Path | str) -> list[str]:
    return ["--store", store] if str(store).startswith("postgresql:") else ["--db", str(store)]


# Above every size measured, so the write mix's new slots are not refused by the per-tenant limit.
MAX_TENANT_SLOTS = 100_000_000


def sandbox_server(store: Path | str, workers: int = 1, python: str = sys.executable):
    port = free_port()
    return serving([python, "-m", "pokitdok_sandbox.cli", "serve", *store_option(store), "--port", str(port),
                    "--workers", str(workers), "--log-level", "warning",
                    "--max-tenant-slots", str(MAX_TENANT_SLOTS)], port, cwd=ROOT)


def vacuum(store: Path | str) -> None:
    """VACUUM (ANALYZE) a PostgreSQL database (what autovacuum does after a large load); nothing for TinyDB."""
    if not str(store).startswith("postgresql:"):
        return
    import psycopg

    with psycopg.connect(str(store), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def database_mb(store: Path | str) -> float | None:
    """The size of a PostgreSQL database (tables, indexes, TOAST) in MiB; None for a TinyDB file."""
    if not str(store).startswith("postgresql:"):
        return None
    import psycopg

    with psycopg.connect(str(store), autocommit=True) as conn:
        return conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2 ** 20


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


@functools.lru_cache(maxsize=1)  # the three mixes of a size in turn: a million slots are generated once
def _dataset(size: int) -> dict:
    """The seeded data set: the generator is deterministic, so the bench knows its records."""
    from pokitdok_sandbox.fixtures import generate_dataset

    return generate_dataset(slots=size)


def _open_slots(size: int) -> list[dict]:
    return [slot for slot in _dataset(size)["slots"] if not slot["booked"]]


def read_mix(path: Path, size: int) -> Path:
    """The schedulers, the appointment types, one appointment by uuid, a provider's appointments over a month."""
    rng = random.Random(1)
    slots = _open_slots(size)
    lines = []
    for _ in range(300):
        slot = rng.choice(slots)
        month = slot["start_date"][:7]
        year, number = int(month[:4]), int(month[5:])
        following = f"{year + number // 12}-{number % 12 + 1:02d}"
        lines.append("GET\t/api/v4/schedule/schedulers/")
        lines.append("GET\t/api/v4/schedule/appointmenttypes/")
        lines.append(f"GET\t/api/v4/schedule/appointments/{rng.choice(slots)['pd_appointment_uuid']}")
        lines.append(f"GET\t/api/v4/schedule/appointments/?pd_provider_uuid={slot['pd_provider_uuid']}"
                     f"&start_date={month}-01T00:00:00&end_date={following}-01T00:00:00")
    path.write_text("\n".join(lines) + "\n")
    return path


def search_mix(path: Path, size: int) -> Path:
    """Open slots by provider and by location over one day, two appointments by uuid."""
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


def write_mix(path: Path, size: int) -> dict:
    """What bench/writes.lua needs: open slots to book, others to describe, whose calendar gets new slots."""
    dataset = _dataset(size)
    slots = [slot for slot in dataset["slots"] if not slot["booked"]]
    half = min(300, len(slots) // 2)
    path.write_text("".join(f"B\t{slot['pd_appointment_uuid']}\n" for slot in slots[:half])
                    + "".join(f"D\t{slot['pd_appointment_uuid']}\n" for slot in slots[half:2 * half]))
    provider = dataset["providers"][-1]
    lat, lon = provider["locations"][0]
    return {"file": path, "provider": provider["pd_provider_uuid"], "lat": lat, "lon": lon, "type": "AT1"}


# New slots of the write mix: each wrk run its own two years from 2100 on, so runs never collide.
_NEW_SLOTS_FROM = 4102444800  # 2100-01-01T00:00:00Z
_runs = iter(range(10 ** 6))


def target(mix, port: int, token: str, prism: bool = False) -> tuple:
    """(port, a function of nothing answering wrk's script and its arguments) for one mix."""
    if isinstance(mix, dict):  # the write mix
        def arguments():
            base = _NEW_SLOTS_FROM + next(_runs) * 2 * 366 * 86400
            return BENCH / "writes.lua", [str(mix["file"]), token, "" if prism else "/api/v4", mix["provider"],
                                          str(mix["lat"]), str(mix["lon"]), mix["type"], str(base),
                                          "1" if prism else "0"]
        return port, arguments
    if prism:
        unprefixed = mix.with_name(mix.stem + "-prism.tsv")
        unprefixed.write_text(mix.read_text().replace("\t/api/v4/", "\t/"))
        mix = unprefixed
    return port, lambda: (BENCH / "mix.lua", [str(mix), token])


def warm_up(wrk: str, port: int, arguments, connections: int) -> None:
    """Lazily built validators, caches and database connection pools, before anything is measured.

    Many connections, so that every worker of a multi-worker server gets some, for long enough
    that each worker's pool grows to what the load needs (after 2 s the 4-worker PostgreSQL rows
    still showed half-second stalls of pool growth in their p99).
    """
    run_wrk(wrk, port, arguments, 5, max(32, connections))


def run_wrk(wrk: str, port: int, arguments, duration: int, connections: int) -> dict:
    script, script_args = arguments()
    command = [wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "-s", str(script),
               f"http://127.0.0.1:{port}", "--", *script_args]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result = json.loads(output.strip().splitlines()[-1])
    return {"rps": result["requests"] / (result["duration_us"] / 1e6), "p50": result["p50_us"] / 1000,
            "p99": result["p99_us"] / 1000, "non_2xx": result["non_2xx"] + result["socket_errors"]}


def measure_side_by_side(wrk: str, targets: dict, rounds: int, duration: int, connections: int) -> dict:
    """Each target is (port, arguments): warm each up, then measure them in turn, `rounds` times over,
    so that whatever else the machine does falls on all of them alike; answer each one's medians."""
    for port, arguments in targets.values():
        warm_up(wrk, port, arguments, connections)
    measured = {key: [] for key in targets}
    for _ in range(rounds):
        for key, (port, arguments) in targets.items():
            measured[key].append(run_wrk(wrk, port, arguments, duration, connections))
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
