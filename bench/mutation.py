"""Mutation score of the contract kit: how many deliberately broken sandboxes the kit notices.

    pip install -e ".[bench]"                      # cosmic-ray, in the venv that runs this script
    python bench/mutation.py prepare --workdir DIR [--kit-ref REF]
    python bench/mutation.py run     --workdir DIR [--sample N --seed S] [--modules M ...] [--timeout T]
                                     [--first-from DIR2 ...] [--then-unrun-in DIR2 ...] [--max-minutes M]
    python bench/mutation.py report  --workdir DIR [--markdown] [--compare DIR2]
    python bench/mutation.py probe   --workdir DIR MODULE OPERATOR [--line L | --occurrence K]

`prepare` exports the sandbox as committed at `--code-ref` (default HEAD) into DIR/src, a private
copy that nobody else imports, takes `contract_tests/` from `--kit-ref` (default: the same
commit), and makes DIR/venv with an editable install of that copy, so the kit run from DIR/venv
imports the mutated code and nothing else does.

`run` lists every mutant cosmic-ray makes of the rule and wire modules (MODULES below), leaves out
the mutants inside type annotations (never evaluated here: every module but one defers them; in the
one that does not, they only break the import), draws a deterministic sample (`--sample N --seed S`,
spread over the modules in proportion to their mutants, at least `--min-per-module` each) and runs
the kit alone against each sampled mutant: `pokitdok-sandbox contract -x --seed K` in process,
stopping at the first failure, with `--timeout` seconds per mutant. The kit first runs once on the
unmutated copy and must pass. Results go to DIR/session.sqlite (a cosmic-ray session: mutants not
in the sample are marked skipped there), so an interrupted run resumes where it stopped;
`--max-minutes` stops starting new mutants after that long.

A mutant is *killed* when the kit fails, *timeout* when the kit did not finish in time (counted as
detected), *incompetent* when the mutated sandbox does not even import or start (checked after a
failure: these say nothing about the kit), *survived* when the kit passed. A survivor may be
annotated in bench/mutation-equivalent.toml (module, line, operator, occurrence, class, reason) as
`equivalent` (no client can tell it from the original) or `outside-contract` (it changes behaviour
the contract does not state). The score is

    (killed + timeout) / (sampled - incompetent - equivalent - outside-contract)

per module and overall. `report --compare DIR2` puts a second kit's run of the same sample beside.
`probe` runs one mutation (any cosmic-ray operator, `core/NoOp` included) outside the session, to
check the plumbing. Nothing here is run by the test suite: it is a measurement.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
ANNOTATIONS = ROOT / "bench" / "mutation-equivalent.toml"
# The rules and everything a client reads on the wire: with the one request pipeline, parameters,
# bodies and errors are checked and rendered by the sandbox's own operations.py, errors.py and answers.py.
MODULES = ["sandbox/scheduling.py", "sandbox/slot_search.py", "sandbox/geo.py", "sandbox/timefmt.py",
           "sandbox/auth.py", "sandbox/validation.py", "sandbox/envelope.py", "sandbox/operations.py",
           "sandbox/errors.py", "sandbox/answers.py", "sandbox/views.py", "sandbox/api/*.py"]
KIT_DEFAULT_ARGS = "-x --seed 1 --shrink-seconds 1"
VERDICT = "MUTANT-VERDICT:"
OUTPUT_TAIL = 120  # lines of the kit's output kept per mutant
# What the kit's in-process target does before its first request: import the sandbox, build the app.
START_CHECK = ("import importlib, pkgutil, pokitdok_sandbox.api as api\n"
               "for m in pkgutil.iter_modules(api.__path__): importlib.import_module(f'{api.__name__}.{m.name}')\n"
               "from pokitdok_sandbox.contract_tests.target import in_process_sandbox\n"
               "in_process_sandbox()\n")


# --- the private copy -------------------------------------------------------------------------

def git(*args: str, cwd: Path = ROOT) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True).stdout


def extract(ref: str, dest: Path, *paths: str) -> None:
    with tarfile.open(fileobj=io.BytesIO(git("archive", ref, *paths))) as archive:
        archive.extractall(dest, filter="data")


def venv_python(workdir: Path) -> Path:
    return workdir / "venv" / "bin" / "python"


def cmd_prepare(args) -> None:
    workdir = args.workdir.resolve()
    src = workdir / "src"
    code = git("rev-parse", args.code_ref).decode().strip()
    kit = git("rev-parse", args.kit_ref or args.code_ref).decode().strip()
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    extract(code, src)
    if kit != code:
        for path in args.kit_paths:
            target = src / path
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            extract(kit, src, path)
    if not venv_python(workdir).exists():
        subprocess.run([sys.executable, "-m", "venv", str(workdir / "venv")], check=True)
    subprocess.run([str(venv_python(workdir)), "-m", "pip", "install", "-q", "-e", str(src)], check=True)
    where = subprocess.run([str(venv_python(workdir)), "-c", "import pokitdok_sandbox; print(pokitdok_sandbox.__file__)"],
                           check=True, capture_output=True, text=True, cwd="/").stdout.strip()
    if not Path(where).resolve().is_relative_to(src):
        raise SystemExit(f"{workdir / 'venv'} imports the sandbox from {where}, not from {src}")
    (workdir / "prepared.json").write_text(json.dumps(
        {"code_ref": args.code_ref, "code": code, "kit_ref": args.kit_ref or args.code_ref, "kit": kit,
         "kit_paths": args.kit_paths if kit != code else [],
         "prepared": datetime.now(timezone.utc).isoformat(timespec="seconds")}, indent=2))
    print(f"{src}: sandbox at {code[:10]}, kit at {kit[:10]}; {workdir / 'venv'} imports {where}")


def prepared(workdir: Path) -> dict:
    try:
        return json.loads((workdir / "prepared.json").read_text())
    except FileNotFoundError:
        raise SystemExit(f"{workdir} is not prepared: run `bench/mutation.py prepare --workdir {workdir}` first")


def restore_pristine(workdir: Path, modules: list[str]) -> None:
    """Put back any module a killed run left mutated, and drop byte code that could be stale."""
    facts = prepared(workdir)
    src = workdir / "src"
    for module in modules:
        original = git("show", f"{facts['code']}:{module}")
        if (src / module).read_bytes() != original:
            print(f"restoring {module} (left mutated by an interrupted run)")
            (src / module).write_bytes(original)
    for cache in (src / "sandbox").rglob("__pycache__"):
        shutil.rmtree(cache)


# --- the population and the sample -------------------------------------------------------------

def expand_modules(src: Path, patterns: list[str]) -> list[str]:
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(str(p.relative_to(src)) for p in src.glob(pattern)) if "*" in pattern else [pattern]
        for module in matches:
            if not (src / module).is_file():
                raise SystemExit(f"no module {module} in {src}")
            if module not in found:
                found.append(module)
    return found


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions (line, column) of every type annotation in a module."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        hints = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            every = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            every += [a for a in (node.args.vararg, node.args.kwarg) if a]
            hints = [a.annotation for a in every if a.annotation] + ([node.returns] if node.returns else [])
        elif isinstance(node, ast.AnnAssign):
            hints = [node.annotation]
        spans += [((h.lineno, h.col_offset), (h.end_lineno, h.end_col_offset)) for h in hints]
    return spans


def key_of(mutation) -> str:
    return f"{mutation.module_path}:{mutation.operator_name}:{mutation.occurrence}"


def population(src: Path, modules: list[str]):
    """Every mutant of the modules, with a stable job id, and the annotation-only ones apart."""
    from cosmic_ray.commands.init import _all_work_items
    from cosmic_ray.work_item import WorkItem

    kept, annotations = [], []
    cwd = os.getcwd()
    os.chdir(src)
    try:
        spans = {m: annotation_spans(Path(m).read_text()) for m in modules}
        for item in _all_work_items([Path(m) for m in modules], {}):
            mutation = item.mutations[0]
            item = WorkItem.single(hashlib.sha1(key_of(mutation).encode()).hexdigest()[:16], mutation)
            inside = any(a <= tuple(mutation.start_pos) and tuple(mutation.end_pos) <= b
                         for a, b in spans[str(mutation.module_path)])
            (annotations if inside else kept).append(item)
    finally:
        os.chdir(cwd)
    return kept, annotations


def draw_sample(items: list, size: int | None, seed: int, least: int) -> list:
    """A deterministic sample: per module, proportional to its mutants (largest remainders), at least
    `least` each; within a module a seeded draw over the mutants in a fixed order."""
    by_module: dict[str, list] = {}
    for item in sorted(items, key=lambda i: (str(i.mutations[0].module_path), i.mutations[0].operator_name,
                                             i.mutations[0].occurrence)):
        by_module.setdefault(str(item.mutations[0].module_path), []).append(item)
    if size is None or size >= len(items):
        chosen = [i for group in by_module.values() for i in group]
    else:
        quota = {m: min(len(g), least) for m, g in by_module.items()}
        left = size - sum(quota.values())
        if left < 0:
            raise SystemExit(f"--sample {size} is below {sum(quota.values())} (--min-per-module for every module)")
        spare = {m: len(g) - quota[m] for m, g in by_module.items()}
        total_spare = sum(spare.values())
        shares = {m: left * s / total_spare for m, s in spare.items()}
        for m in shares:
            quota[m] += int(shares[m])
        for m in sorted(shares, key=lambda m: (-(shares[m] - int(shares[m])), m))[:left - sum(int(v) for v in shares.values())]:
            quota[m] += 1
        chosen = []
        for m, group in by_module.items():
            chosen += random.Random(f"{seed}:{m}").sample(group, quota[m])
    # Run order: mixed across modules, so a partial run already says something about each.
    return sorted(chosen, key=lambda i: hashlib.sha1(f"{seed}:{i.job_id}".encode()).hexdigest())


# --- running the kit against a mutant ------------------------------------------------------------

def freeze_wrapper(workdir: Path) -> None:
    """The per-mutant command runs a copy of this script taken when the run starts: editing the
    script during a run must not change how its mutants are judged."""
    shutil.copyfile(SCRIPT, workdir / "kit_wrapper.py")


def kit_command(workdir: Path, kit_args: str) -> str:
    return f"{shlex.quote(str(venv_python(workdir)))} {shlex.quote(str(workdir / 'kit_wrapper.py'))} _kit -- {kit_args}"


def cmd_kit(args) -> None:
    """The per-mutant test command (runs in DIR/venv): the kit, then, if it failed, whether the
    mutated sandbox starts at all. Prints the tail of the kit's output and a verdict line."""
    command = [str(Path(sys.executable).with_name("pokitdok-sandbox")), "contract", *args.kit_args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    kit = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd="/tmp")
    lines = kit.stdout.decode(errors="replace").splitlines()
    print("\n".join(lines[-OUTPUT_TAIL:]))
    print(f"kit exit status {kit.returncode} after {time.monotonic() - started:.1f} s")
    if kit.returncode == 0:
        print(f"{VERDICT} survived")
        sys.exit(0)
    check = subprocess.run([sys.executable, "-c", START_CHECK], capture_output=True, text=True, env=env, cwd="/tmp")
    if check.returncode != 0:
        print(check.stderr[-3000:])
        print(f"{VERDICT} incompetent (the mutated sandbox does not import or start)")
    else:
        print(f"{VERDICT} killed")
    sys.exit(1)


def classify(result) -> str:
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    if result.worker_outcome == WorkerOutcome.SKIPPED:
        return "skipped"
    if result.worker_outcome == WorkerOutcome.NO_TEST:
        return "no-test"
    if result.test_outcome == TestOutcome.INCOMPETENT:
        return "incompetent"
    if result.test_outcome == TestOutcome.SURVIVED:
        return "survived"
    if (result.output or "").strip() == "timeout":
        return "timeout"
    return "killed"


def test_one(workdir: Path, item, kit_args: str, timeout: float):
    """Mutate the private copy, run the kit, put the code back (cosmic-ray does the three)."""
    from cosmic_ray.mutating import mutate_and_test
    from cosmic_ray.work_item import TestOutcome, WorkResult

    cwd = os.getcwd()
    os.chdir(workdir / "src")
    try:
        result = mutate_and_test(item.mutations, kit_command(workdir, kit_args), timeout)
    finally:
        os.chdir(cwd)
    if result.output and f"{VERDICT} incompetent" in result.output:
        result = WorkResult(worker_outcome=result.worker_outcome, output=result.output,
                            test_outcome=TestOutcome.INCOMPETENT, diff=result.diff)
    return result


def describe(item) -> str:
    m = item.mutations[0]
    return f"{m.module_path}:{m.start_pos[0]} {m.operator_name} #{m.occurrence}"


def session_paths(workdir: Path) -> tuple[Path, Path]:
    return workdir / "session.sqlite", workdir / "session.json"


def cmd_run(args) -> None:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    workdir = args.workdir.resolve()
    facts = prepared(workdir)
    db_path, meta_path = session_paths(workdir)
    src = workdir / "src"
    modules = expand_modules(src, args.modules)
    wanted = {"modules": modules, "sample": args.sample, "seed": args.seed, "min_per_module": args.min_per_module,
              "kit_args": args.kit_args, "timeout": args.timeout, "code": facts["code"], "kit": facts["kit"]}
    restore_pristine(workdir, modules)
    freeze_wrapper(workdir)
    if args.fresh:
        db_path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        differs = {k: (meta["settings"].get(k), v) for k, v in wanted.items() if meta["settings"].get(k) != v}
        if differs:
            raise SystemExit(f"{db_path} was made with other settings {differs}: add --fresh to start over")
    else:
        kept, annotation_only = population(src, modules)
        sample = draw_sample(kept, args.sample, args.seed, args.min_per_module)
        print(f"{len(kept) + len(annotation_only)} mutants, {len(annotation_only)} inside type annotations left out; "
              f"sample of {len(sample)}; clean run of the kit first")
        clean_started = time.monotonic()
        clean = subprocess.run(shlex.split(kit_command(workdir, args.kit_args)), capture_output=True, text=True,
                               timeout=args.timeout)
        clean_seconds = time.monotonic() - clean_started
        if clean.returncode != 0:
            print(clean.stdout[-5000:])
            raise SystemExit("the kit fails on the unmutated sandbox: no mutant can be judged")
        print(f"clean run passed in {clean_seconds:.1f} s")
        db_path.unlink(missing_ok=True)
        chosen = {i.job_id for i in sample}
        with use_db(str(db_path), WorkDB.Mode.create) as db:
            db.add_work_items(kept + annotation_only)
            order = {item.job_id: n for n, item in enumerate(sample)}
            skip = [i.job_id for i in kept if i.job_id not in chosen]
            db.set_multiple_results(skip, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not in the sample"))
            db.set_multiple_results([i.job_id for i in annotation_only],
                                    WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="inside a type annotation"))
        meta = {"settings": wanted, "order": order, "population": len(kept), "annotation_only": len(annotation_only),
                "population_per_module": {m: sum(1 for i in kept if str(i.mutations[0].module_path) == m)
                                          for m in modules},
                "clean_run_seconds": round(clean_seconds, 1), "wall_seconds": 0.0,
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": []}
        meta_path.write_text(json.dumps(meta, indent=1))

    started = time.monotonic()
    invocation = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mutants": 0}
    meta["runs"].append(invocation)
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        first = set().union(*(survivor_ids(d.resolve(), load_annotations(args.annotations)) for d in args.first_from))
        unrun = {i for d in args.then_unrun_in for i in meta["order"] if i not in judged_ids(d.resolve())}
        pending = sorted(db.pending_work_items, key=lambda i: (i.job_id not in first, i.job_id not in unrun,
                                                               meta["order"].get(i.job_id, 1 << 30)))
        total = len(meta["order"])
        print(f"{total - len(pending)} of {total} sampled mutants done, {len(pending)} to go")
        for item in pending[:args.limit]:
            if args.max_minutes and time.monotonic() - started > args.max_minutes * 60:
                print(f"--max-minutes {args.max_minutes} reached: stopping (run again to resume)")
                break
            t0 = time.monotonic()
            result = test_one(workdir, item, args.kit_args, args.timeout)
            db.set_result(item.job_id, result)
            invocation["mutants"] += 1
            meta["wall_seconds"] = round(meta["wall_seconds"] + time.monotonic() - t0, 1)
            invocation["ended"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            meta_path.write_text(json.dumps(meta, indent=1))
            verdict = classify(result)
            print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {verdict:11} {time.monotonic() - t0:5.1f} s  {describe(item)}",
                  flush=True)
            if verdict in ("survived", "no-test"):
                print("    " + (result.diff or "").replace("\n", "\n    "), flush=True)
    print(render_report(workdir, load_annotations(args.annotations)))


def cmd_probe(args) -> None:
    """One mutation outside the session: does the kit kill it?"""
    from cosmic_ray.mutating import MutationVisitor  # noqa: F401  (checks cosmic-ray is there)
    from cosmic_ray.plugins import get_operator
    from cosmic_ray.ast import ast_nodes, get_ast_from_path
    from cosmic_ray.work_item import MutationSpec, WorkItem

    workdir = args.workdir.resolve()
    restore_pristine(workdir, [args.module])
    freeze_wrapper(workdir)
    operator = get_operator(args.operator)()
    positions = [(s, e) for node in ast_nodes(get_ast_from_path(workdir / "src" / args.module))
                 for s, e in operator.mutation_positions(node)]
    if args.line is not None:
        matching = [n for n, (s, _) in enumerate(positions) if s[0] == args.line]
        if not matching:
            raise SystemExit(f"{args.operator} has no position on {args.module}:{args.line}")
        occurrence = matching[0]
    else:
        occurrence = args.occurrence
    start, end = positions[occurrence]
    item = WorkItem.single("probe", MutationSpec(args.module, args.operator, occurrence, start, end))
    t0 = time.monotonic()
    result = test_one(workdir, item, args.kit_args, args.timeout)
    print(f"{classify(result)} in {time.monotonic() - t0:.1f} s: {describe(item)}")
    print(result.diff or "(no change to the code)")
    if args.verbose:
        print(result.output)


# --- the report ---------------------------------------------------------------------------------

def load_annotations(path: Path) -> list[dict]:
    if not path.exists():
        return []
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import toml as tomllib  # cosmic-ray's own dependency
    return tomllib.loads(path.read_text()).get("mutant", [])


def annotation_for(annotations: list[dict], item) -> dict | None:
    m = item.mutations[0]
    for a in annotations:
        if (a["module"], a["line"], a["operator"], a["occurrence"]) == (str(m.module_path), m.start_pos[0],
                                                                         m.operator_name, m.occurrence):
            return a
    return None


COLUMNS = ["sampled", "killed", "timeout", "survived", "equivalent", "outside", "incompetent", "pending"]


def tally(workdir: Path, annotations: list[dict], only: set[str] | None = None):
    """Per-module counts of a session's sampled mutants (or of `only` those), its survivors, the
    annotations its results contradict and those that match no mutant of its code."""
    from cosmic_ray.work_db import WorkDB, use_db

    db_path, meta_path = session_paths(workdir)
    meta = json.loads(meta_path.read_text())
    rows = {m: dict.fromkeys(COLUMNS, 0) for m in meta["settings"]["modules"]}
    survivors, contradicted = [], []
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        done = {item.job_id: (item, result) for item, result in db.completed_work_items}
        items = {item.job_id: item for item in db.work_items}
    for job_id in meta["order"]:
        if only is not None and job_id not in only:
            continue
        item = items[job_id]
        row = rows[str(item.mutations[0].module_path)]
        row["sampled"] += 1
        if job_id not in done:
            row["pending"] += 1
            continue
        result = done[job_id][1]
        verdict = classify(result)
        note = annotation_for(annotations, item)
        if verdict == "survived" and note:
            verdict = "outside" if note["class"] == "outside-contract" else "equivalent"
        elif note and verdict != "survived":
            contradicted.append((item, verdict, note))
        if verdict == "no-test":
            verdict = "incompetent"
        row[verdict] += 1
        if verdict in ("survived", "equivalent", "outside"):
            survivors.append((item, result, verdict, note))
    keys = {(str(i.mutations[0].module_path), i.mutations[0].start_pos[0], i.mutations[0].operator_name,
             i.mutations[0].occurrence) for i in items.values()}
    stale = [a for a in annotations if (a["module"], a["line"], a["operator"], a["occurrence"]) not in keys
             and a["module"] in rows]
    return meta, rows, survivors, contradicted, stale


def score(row: dict) -> str:
    judged = row["sampled"] - row["pending"] - row["incompetent"] - row["equivalent"] - row["outside"]
    return f"{100 * (row['killed'] + row['timeout']) / judged:.0f}%" if judged else "-"


def table(rows: dict, after: dict | None = None) -> list[str]:
    shown = [c for c in COLUMNS if c != "pending" or after is None]
    head = ["module", *shown, "score"]
    if after is not None:
        head = ["module", *(f"before: {c}" for c in shown[1:]), "before: score",
                *(f"after: {c}" for c in shown[1:]), "after: score"]
        head.insert(1, "mutants")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for module, row in [*rows.items(), ("all", total_row(rows))]:
        if after is None:
            cells = [module, *(str(row[c]) for c in shown), score(row)]
        else:
            other = after.get(module) if module != "all" else total_row(after)
            if not row["sampled"]:
                continue
            cells = [module, str(row["sampled"]), *(str(row[c]) for c in shown[1:]), score(row),
                     *(str(other[c]) for c in shown[1:]), score(other)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def judged_ids(workdir: Path) -> set[str]:
    """The sampled mutants a session has a verdict for."""
    from cosmic_ray.work_db import WorkDB, use_db

    db_path, meta_path = session_paths(workdir)
    order = json.loads(meta_path.read_text())["order"]
    with use_db(str(db_path), WorkDB.Mode.open) as db:
        return {job_id for job_id, _ in db.results if job_id in order}


def total_row(rows: dict) -> dict:
    return {c: sum(r[c] for r in rows.values()) for c in COLUMNS}


def render_report(workdir: Path, annotations: list[dict], compare: Path | None = None) -> str:
    meta, rows, survivors, contradicted, stale = tally(workdir, annotations)
    facts = prepared(workdir)
    s = meta["settings"]
    out = [f"Session {workdir}: sandbox {facts['code'][:10]}, kit {facts['kit'][:10]} ({facts['kit_ref']}); "
           f"sample {len(meta['order'])} of {meta['population']} mutants (seed {s['seed']}; "
           f"{meta['annotation_only']} inside type annotations left out); kit `contract {s['kit_args']}`, "
           f"timeout {s['timeout']:.0f} s; clean run {meta['clean_run_seconds']} s; "
           f"mutant runs {meta['wall_seconds'] / 60:.1f} min", ""]
    out += table(rows)
    every = total_row(rows)
    run = every["sampled"] - every["pending"] - every["incompetent"]
    out += ["", "Score: (killed + timeout) / (sampled - incompetent - equivalent - outside), of the mutants run. "
            f"Before any survivor is excused: {every['killed'] + every['timeout']} / {run}"
            + (f" = {100 * (every['killed'] + every['timeout']) / run:.0f}%." if run else "."), ""]
    if compare:
        both = judged_ids(workdir) & judged_ids(compare)
        before, after = tally(workdir, annotations, both)[1], tally(compare, annotations, both)[1]
        out += [f"Beside {compare} (kit {prepared(compare)['kit'][:10]}, {prepared(compare)['kit_ref']}): the "
                f"{len(both)} mutants run in both sessions, before and after", ""]
        out += table(before, after)
        out.append("")
    if survivors:
        out.append("Survivors (file:line, operator #occurrence, class; the diff):")
        for item, result, verdict, note in sorted(survivors, key=lambda s: describe(s[0])):
            reason = f" ({note['reason']})" if note else ""
            out.append(f"- {describe(item)}: {verdict}{reason}")
            diff = [line for line in (result.diff or "").splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            out += [f"      {line}" for line in diff]
    for item, verdict, note in contradicted:
        out.append(f"! {describe(item)} is annotated {note['class']} but was {verdict}: check the annotation")
    for note in stale:
        out.append(f"! the annotation {note['module']}:{note['line']} {note['operator']} #{note['occurrence']} "
                   "matches no mutant of this code: re-check it")
    return "\n".join(out)


def survivor_ids(workdir: Path, annotations: list[dict]) -> set[str]:
    """Job ids (the same for the same mutant in every session) of another session's survivors that
    no annotation excuses: the mutants a better kit should now kill."""
    return {item.job_id for item, _, verdict, _ in tally(workdir, annotations)[2] if verdict == "survived"}


def cmd_report(args) -> None:
    print(render_report(args.workdir.resolve(), load_annotations(args.annotations),
                        args.compare.resolve() if args.compare else None))


def cmd_survivors(args) -> None:
    """The survivors as JSON (for notes and annotations)."""
    _, _, survivors, _, _ = tally(args.workdir.resolve(), load_annotations(args.annotations))
    print(json.dumps([{"module": str(i.mutations[0].module_path), "line": i.mutations[0].start_pos[0],
                       "operator": i.mutations[0].operator_name, "occurrence": i.mutations[0].occurrence,
                       "class": v, "diff": r.diff} for i, r, v, _ in survivors], indent=1))


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_kit"]:
        rest = argv[1:]
        cmd_kit(argparse.Namespace(kit_args=rest[1:] if rest[:1] == ["--"] else rest))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p, kit=True):
        p.add_argument("--workdir", type=Path, required=True, help="the private copy, its venv and its session")
        p.add_argument("--annotations", type=Path, default=ANNOTATIONS, help="equivalent / outside-contract survivors")
        if kit:
            p.add_argument("--kit-args", default=KIT_DEFAULT_ARGS,
                           help=f"options of `pokitdok-sandbox contract` (default {KIT_DEFAULT_ARGS!r})")
            p.add_argument("--timeout", type=float, default=150.0, help="seconds per mutant (default 150)")

    p = commands.add_parser("prepare", help="export the code into WORKDIR/src and make its venv")
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--code-ref", default="HEAD", help="commit of the sandbox to mutate (default HEAD)")
    p.add_argument("--kit-ref", help="commit whose kit is the test suite (default: --code-ref)")
    p.add_argument("--kit-paths", nargs="+", default=["contract_tests"], help="what --kit-ref provides")
    p.set_defaults(func=cmd_prepare)

    p = commands.add_parser("run", help="run (or resume) the sampled mutants")
    common(p)
    p.add_argument("--modules", nargs="+", default=MODULES, help="modules to mutate (globs allowed)")
    p.add_argument("--sample", type=int, help="how many mutants (default: all)")
    p.add_argument("--seed", type=int, default=1, help="seed of the sample (default 1)")
    p.add_argument("--min-per-module", type=int, default=2)
    p.add_argument("--limit", type=int, help="run at most this many mutants now")
    p.add_argument("--max-minutes", type=float, help="start no mutant after this many minutes")
    p.add_argument("--fresh", action="store_true", help="drop the session and start over")
    p.add_argument("--first-from", type=Path, nargs="+", default=[],
                   help="other sessions' WORKDIRs: run first the mutants that survived in any of them (unexcused)")
    p.add_argument("--then-unrun-in", type=Path, nargs="+", default=[],
                   help="other sessions' WORKDIRs: run next the sampled mutants one of them never ran")
    p.set_defaults(func=cmd_run)

    p = commands.add_parser("report", help="per-module table and survivors")
    common(p, kit=False)
    p.add_argument("--compare", type=Path, help="another session's WORKDIR (the same sample, another kit)")
    p.set_defaults(func=cmd_report)

    p = commands.add_parser("survivors", help="the survivors as JSON")
    common(p, kit=False)
    p.set_defaults(func=cmd_survivors)

    p = commands.add_parser("probe", help="one mutation, outside the session")
    common(p)
    p.add_argument("module")
    p.add_argument("operator", help="e.g. core/ReplaceComparisonOperator_Lt_Gt or core/NoOp")
    p.add_argument("--line", type=int, help="the first position of the operator on this line")
    p.add_argument("--occurrence", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true", help="print the kit's output")
    p.set_defaults(func=cmd_probe)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
