"""pytest side of the kit: options, the run fixture, and the readable summary.

`contract_tests/conftest.py` imports everything here, so `pytest contract_tests --base-url ...`
and `pokitdok-sandbox contract --base-url ...` run the same suite with the same options.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from . import run as runs
from .api import Api
from .options import OPTIONS, KitOptions, from_values, option_arguments
from .report import ContractViolation, Finding, KitResult, excerpt, mask_secret
from .run import Run
from .schema import configure_schema, get_schema, wire_format
from .partitions import coverage_lines
from .target import KitError, Target, TargetUnreachable

__all__ = ["pytest_addoption", "pytest_configure", "pytest_unconfigure", "pytest_sessionstart",
           "pytest_sessionfinish", "pytest_collection_modifyitems", "pytest_runtest_setup",
           "pytest_exception_interact", "pytest_runtest_makereport", "pytest_terminal_summary",
           "contract_run", "target", "api", "patients", "resident_records"]

_OPTIONS_KEY = pytest.StashKey[KitOptions]()
_RUN_KEY = pytest.StashKey[Run]()
_FAILED_KEY = pytest.StashKey[dict]()
_LEFTOVERS_KEY = pytest.StashKey[list]()
_OUTER_RUN_KEY = pytest.StashKey[object]()
UNREACHABLE = "target unreachable"


def pytest_addoption(parser):
    group = parser.getgroup("pokitdok-contract", "PokitDok scheduling contract kit")
    for flags, dest, help_text, metavar in OPTIONS:
        group.addoption(flags, dest=f"contract_{dest}", **option_arguments(dest, help_text, metavar))


def pytest_configure(config):
    _hypothesis_home_in_cache()
    provided = [plugin for plugin in config.pluginmanager.get_plugins() if hasattr(plugin, "kit_options")]
    if provided:  # the runner's Python API (e.g. an ASGI app to test in-process)
        options = provided[0].kit_options
    else:
        try:
            options = from_values({dest: config.getoption(f"contract_{dest}") for _f, dest, _h, _m in OPTIONS})
        except ValueError as exc:
            raise pytest.UsageError(f"contract kit: {exc}") from None
    if not Path(options.spec).is_file():
        raise pytest.UsageError(f"contract kit: no contract at {options.spec} (pass --spec)")
    config.stash[_OPTIONS_KEY] = options
    config.stash[_FAILED_KEY] = {}


def _hypothesis_home_in_cache() -> None:
    """Hypothesis keeps its files (example database, Unicode tables) in `.hypothesis/` of the working
    directory: the kit's go to a cache directory instead (HYPOTHESIS_STORAGE_DIRECTORY still wins)."""
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
        return
    from hypothesis.configuration import set_hypothesis_home_dir

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    set_hypothesis_home_dir(base / "pokitdok-sandbox" / "hypothesis")


def pytest_unconfigure(config):
    # Put back the run this session interrupted, if any (a kit run started from inside another).
    if _RUN_KEY in config.stash and runs.active() is config.stash[_RUN_KEY]:
        runs.activate(config.stash.get(_OUTER_RUN_KEY, None))


def pytest_sessionstart(session):
    """Resolve the target and the tenant before collection: the coverage phase of Schemathesis
    generates (and authenticates) its explicit examples while the tests are collected."""
    config = session.config
    if _OPTIONS_KEY not in config.stash:
        return
    options = config.stash[_OPTIONS_KEY]
    wire = wire_format(options.spec)
    seed = options.seed if options.seed is not None else random.SystemRandom().randrange(2**31)
    try:
        target = Target(options, wire, seed=seed)
    except KitError as exc:  # said once, then the run ends before any suite
        message = mask_secret(f"contract kit: {exc}", options.client_secret)
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(message, red=True)
        else:
            print(message, file=sys.stderr)
        pytest.exit("contract kit: the run could not start", returncode=3)
    configure_schema(get_schema(options.spec), options, seed)
    run = Run(options=options, target=target, seed=seed, wire=wire)
    config.stash[_OUTER_RUN_KEY] = runs.activate(run)
    config.stash[_RUN_KEY] = run
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"contract kit: {target.describe()}; seed {seed}")


def pytest_sessionfinish(session, exitstatus):
    """Remove every slot the run created (cancelling bookings first)."""
    config = session.config
    run = config.stash.get(_RUN_KEY, None)
    if run is None:
        return
    try:
        if config.stash[_FAILED_KEY] and all(m == UNREACHABLE for m in config.stash[_FAILED_KEY].values()):
            config.stash[_LEFTOVERS_KEY] = []  # nothing answers: no point in trying to clean up
        else:
            config.stash[_LEFTOVERS_KEY] = run.target.cleanup()
    except (KitError, TargetUnreachable) as exc:
        config.stash[_LEFTOVERS_KEY] = [f"cleanup stopped: {exc}"]
    finally:
        run.target.close()


@pytest.fixture(scope="session")
def contract_run(request) -> Run:
    """The run: target resolved, tenant chosen, seed fixed (see pytest_sessionstart)."""
    return request.config.stash[_RUN_KEY]


@pytest.fixture(scope="session")
def target(contract_run) -> Target:
    return contract_run.target


@pytest.fixture(scope="session")
def api(contract_run) -> Api:
    return Api(contract_run)


@pytest.fixture(scope="session")
def resident_records(contract_run, api):
    """A few records of the run's, open and booked, kept while the generated and rule tests run: their
    searches are then checked both ways against them (model.py), not only against the filters."""
    from .model import Model, Record
    from .oracle import parse_datetime
    from .stateful import DISTANCES, MILES_PER_DEGREE_LATITUDE

    run, target = contract_run, contract_run.target
    model = Model()
    types = list(dict.fromkeys([target.appointment_type] + target.appointment_types))[:2]
    for index, miles in enumerate(DISTANCES[:3]):
        lat, lon = run.options.location
        place = (round(lat + miles / MILES_PER_DEGREE_LATITUDE, 6), lon)
        body = {**target.slot_body(), "location": list(place), "appointment_type": types[index % len(types)]}
        try:
            slot = target.create_slot(body=body)
        except ContractViolation:  # the tests that open slots say what is wrong; no residents then
            yield None
            return
        record = model.add(Record(uuid=slot["pd_appointment_uuid"].lower(), provider=run.options.provider_uuid,
                                  location=place, appointment_type=body["appointment_type"],
                                  start=parse_datetime(body["start_date"]), end=parse_datetime(body["end_date"])))
        record.learn(slot)
    first = next(iter(model.records.values()))
    patient = {"_uuid": run.options.patients[0].lower(), "first_name": "Resident", "last_name": "Record"}
    answer = target.request("PUT", f"/schedule/appointments/{first.uuid}", json={"patient": patient})
    if answer.status_code == 200:
        first.booked, first.patient = True, patient
    else:
        model.remove(first.uuid)
    run.model = model
    yield model
    run.model = None


@pytest.fixture(scope="session")
def patients(contract_run) -> tuple[str, str]:
    """Two different patients who book (documented ones unless --patient-uuid is given)."""
    return contract_run.options.patients


def pytest_collection_modifyitems(items):
    # Schemathesis names its per-operation items `test[GET /path]` but, on pytest 9, leaves the
    # operation out of the node id: put it back, so JUnit and -k see one test per operation.
    for item in items:
        label = getattr(item, "operation_label", None)
        if not label or item.nodeid.endswith("]"):
            continue
        node_id = getattr(item, "_id", None)
        if hasattr(node_id, "with_params"):  # pytest >= 9: structured node ids
            item._id = node_id.with_params(label)
        else:
            item._nodeid = f"{item.nodeid}[{label}]"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    run = runs.active()
    if run is not None:
        run.current_test = item.nodeid
        if run.unreachable:  # reported once: the tests after the first that could not reach it are skipped
            pytest.skip(f"{UNREACHABLE}: {run.unreachable}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        failures = item.config.stash[_FAILED_KEY]
        error = call.excinfo.value if call.excinfo is not None else None
        run = runs.active()
        unreachable = _unreachable(error) if error is not None else None
        if unreachable is not None:
            if run is not None and not run.unreachable:
                run.unreachable = str(unreachable)
                failures[item.nodeid] = UNREACHABLE
            else:
                report.outcome = "skipped"
                report.longrepr = (str(item.path), None, f"{UNREACHABLE}: {unreachable}")
            return report
        if isinstance(error, ContractViolation):
            finding = error.finding(item.nodeid)
            if run is not None and not error.recorded:
                run.findings.add(finding)
            report.longrepr = error.render()
            # JUnit writes the properties of the teardown report, which copies the item's.
            item.user_properties += [("operation", finding.operation), ("check", finding.check),
                                     ("request", finding.curl)]
        failures[item.nodeid] = excerpt(_first_line(error) if error is not None else str(report.longrepr), 400)
    return report


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node, call, report):
    """Schemathesis' own report (checks, answer, curl) rather than an exception-group traceback;
    after Schemathesis' hook, which sets a traceback."""
    error = call.excinfo.value if call.excinfo is not None else None
    groups = _schemathesis_groups(error) if error is not None else []
    if groups:
        notes = [note for note in getattr(error, "__notes__", []) if note.strip()]
        report.longrepr = "\n".join([group.message.rstrip() for group in groups] + ([""] + notes if notes else []))


def _schemathesis_groups(error: BaseException) -> list:
    """Schemathesis failure groups in an error (Hypothesis may wrap them, e.g. when flaky)."""
    from schemathesis.errors import FailureGroup

    if isinstance(error, FailureGroup):
        return [error]
    if isinstance(error, BaseExceptionGroup):
        return [group for inner in error.exceptions for group in _schemathesis_groups(inner)]
    return []


def _unreachable(error: BaseException):
    """The connection failure behind a test error, if that is what it is."""
    stack, seen = [error], set()
    while stack and len(seen) < 200:
        error = stack.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, (TargetUnreachable, KitError)) and "cannot reach" in str(error):
            return error
        if isinstance(error, BaseExceptionGroup):
            stack.extend(error.exceptions)
        stack += [error.__cause__, error.__context__]
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _RUN_KEY not in config.stash:
        return
    run = config.stash[_RUN_KEY]
    text = mask_secret(summary(run, config.stash[_FAILED_KEY], config.stash.get(_LEFTOVERS_KEY, [])),
                       run.options.client_secret)
    terminalreporter.write_sep("=", "contract kit summary", red=bool(config.stash[_FAILED_KEY]),
                               green=not config.stash[_FAILED_KEY])
    terminalreporter.write_line(text)
    if run.options.summary_path:
        Path(run.options.summary_path).write_text(text + "\n", encoding="utf-8")
        terminalreporter.write_line(f"(summary written to {run.options.summary_path})")


def collected_result(config) -> KitResult:
    """The outcome of a session, for `runner.run()`."""
    run = config.stash.get(_RUN_KEY, None)
    failed = dict(config.stash.get(_FAILED_KEY, {}))
    if run is None:
        return KitResult(exit_code=-1, failed=failed)
    text = summary(run, failed, config.stash.get(_LEFTOVERS_KEY, []))
    return KitResult(exit_code=-1, failed=failed, findings=run.findings.for_tests(set(failed)),
                     summary=mask_secret(text, run.options.client_secret), seed=run.seed,
                     partitions=set(run.partitions))


def replay_command(run: Run) -> str:
    """The command line that sends this run's requests again (its seed, its target and options)."""
    import shlex

    options = run.options
    words = ["pokitdok-sandbox", "contract"]
    if options.base_url:
        words += ["--base-url", options.base_url]
    if options.token_url:
        words += ["--token-url", options.token_url]
    defaults = KitOptions(thorough=options.thorough)
    for flag, name in (("--max-examples", "max_examples"), ("--isolation", "isolation"),
                       ("--provider-uuid", "provider_uuid"), ("--appointment-type", "appointment_type"),
                       ("--other-provider-uuid", "other_provider_uuid")):
        if getattr(options, name) != getattr(defaults, name):
            words += [flag, str(getattr(options, name))]
    for flag, name in (("--location", "location"), ("--other-location", "other_location")):
        value = getattr(options, name)
        if value != getattr(defaults, name) and value is not None:
            words += [flag, f"{value[0]!r},{value[1]!r}"]
    if options.patients != defaults.patients:
        for patient in options.patients:
            words += ["--patient-uuid", patient]
    if options.thorough:
        words.append("--thorough")
    words += ["--seed", str(run.seed)]
    return " ".join(shlex.quote(word) for word in words)


def summary(run: Run, failed: dict[str, str], leftovers: list[str]) -> str:
    """Every broken check: operation, check, expected vs actual, and the request as curl."""
    lines = [run.target.describe(), f"seed {run.seed}; replay the same requests: {replay_command(run)}"]
    lines += coverage_lines(run.partitions)
    if run.statuses:
        lines.append(f"generated requests: {sum(run.statuses.values())}")
        by_operation: dict[str, list[str]] = {}
        for (operation, status), count in sorted(run.statuses.items()):
            by_operation.setdefault(operation, []).append(f"{status}x{count}")
        lines += [f"  {operation:<55} {' '.join(counts)}" for operation, counts in by_operation.items()]
    if leftovers:
        lines.append(f"WARNING: {len(leftovers)} slot(s) the run created could not be removed: "
                     + ", ".join(leftovers[:10]))
    if run.unreachable:
        lines += ["", f"TARGET UNREACHABLE: {run.unreachable}",
                  "  the tests after the first one that could not reach it were skipped"]
    if not failed:
        lines.append("No contract violations found.")
        return "\n".join(lines)
    findings = run.findings.for_tests(set(failed))
    groups: dict[tuple, list[Finding]] = {}
    for finding in findings:  # one entry per cause (operation, check, rule), however many tests or values
        groups.setdefault((finding.operation, finding.check, finding.cause()), []).append(finding)
    lines.append(f"{len(failed)} failing test(s), {len(groups)} distinct violation(s):")
    explained = set()
    for same in groups.values():
        lines += ["", same[0].render(tests=[finding.test for finding in same])]
        explained.update(finding.test for finding in same)
    for test, message in failed.items():
        if test not in explained and message != UNREACHABLE:
            lines += ["", Finding(test=test, operation="-", check="test error", expected="the test to pass",
                                  actual=message).render()]
    return "\n".join(lines)
