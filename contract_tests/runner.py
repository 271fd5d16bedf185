"""`pokitdok-sandbox contract`: run the kit (a pytest suite) against a target and report.

    pokitdok-sandbox contract --base-url http://127.0.0.1:8000/api/v4 --client-id ID --client-secret SECRET
    pokitdok-sandbox contract                       # an in-process sandbox, nothing to start

Python:  `run(KitOptions(...))` answers a `KitResult` (exit code, failing tests, findings, summary);
`KitOptions(app=my_asgi_app)` tests an ASGI application in-process.

Only argparse and dataclasses are imported at module level: the sandbox CLI imports this module
to add the subcommand, and `serve` should not pay for pytest and Schemathesis.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .report import KitResult

PACKAGE_DIR = Path(__file__).resolve().parent

__all__ = ["KitResult", "run", "main", "add_arguments", "run_from_args", "pytest_args"]


class _Session:
    """Hands the options to the kit's plugin and collects the outcome."""

    def __init__(self, options):
        self.kit_options = options
        self.result: KitResult | None = None

    def pytest_unconfigure(self, config):
        from .plugin import collected_result

        self.result = collected_result(config)


def pytest_args(*, junit: str | None = None, keyword: str | None = None, exitfirst: bool = False,
                verbose: int = 0, quiet: bool = False) -> list[str]:
    args = [str(PACKAGE_DIR), "-c", str(PACKAGE_DIR / "pytest.ini"), "--rootdir", str(PACKAGE_DIR.parent)]
    if junit:
        args += ["--junitxml", junit]
    if keyword:
        args += ["-k", keyword]
    if exitfirst:
        args.append("-x")
    if quiet:
        args += ["-q", "--no-header", "-p", "no:warnings"]
    args += ["-v"] * verbose
    return args


def run(options, *, junit: str | None = None, keyword: str | None = None, exitfirst: bool = False,
        verbose: int = 0, quiet: bool = False) -> KitResult:
    """Run the whole kit once with these options (a `KitOptions`)."""
    import pytest

    session = _Session(options)
    code = pytest.main(pytest_args(junit=junit, keyword=keyword, exitfirst=exitfirst, verbose=verbose,
                                   quiet=quiet), plugins=[session])
    result = session.result or KitResult(exit_code=int(code))
    result.exit_code = int(code)
    return result


# -- command line ---------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from .options import OPTIONS, option_arguments

    for flags, dest, help_text, metavar in OPTIONS:
        parser.add_argument(flags, dest=dest, **option_arguments(dest, help_text, metavar))
    parser.add_argument("--junit", metavar="PATH", help="write a JUnit XML report (for CI) to PATH")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="only the tests matching this pytest -k expression (e.g. 'not properties')")
    parser.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failing test")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="list every test")


def run_from_args(args: argparse.Namespace) -> int:
    """The `contract` subcommand: exit status 0 when the target honours the contract."""
    import sys

    from .options import OPTIONS, from_values

    try:
        options = from_values({dest: getattr(args, dest, None) for _f, dest, _h, _m in OPTIONS})
    except ValueError as exc:
        print(f"pokitdok-sandbox contract: {exc}", file=sys.stderr)
        return 2
    result = run(options, junit=args.junit, keyword=args.keyword, exitfirst=args.exitfirst, verbose=args.verbose)
    return result.exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pokitdok_sandbox.contract_tests.runner", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
