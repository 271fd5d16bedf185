"""Installed like any tool: the wheel in a fresh virtual environment, used from another directory.

Builds the wheel, installs it (with PyPI's `fixtures` package beside it, and pytest-xdist) into a new
venv, and from an empty temporary directory runs `serve`, `seed`, `reset`, `check` and `contract`,
in-process and over HTTP, as a team checking its own server in CI would; then, as a client developer
would, a copy of the example test file through the pytest plugin (in parallel), and the kit with
`pytest --pyargs`. Slow (a venv and an install): one venv for both tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pokitdok_sandbox.testing import free_port

ROOT = Path(__file__).resolve().parent.parent


def _run(*command, cwd, timeout=600, check=True, env=None):
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} -> {result.returncode}\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the venv's bin folder, an empty working directory)."""
    base = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", base / "dist", ROOT, cwd=base)
    wheels = list((base / "dist").glob("pokitdok_sandbox-*.whl"))
    assert len(wheels) == 1, wheels
    _run(sys.executable, "-m", "venv", base / "venv", cwd=base)
    bin_dir = base / "venv" / "bin"
    try:
        _run(bin_dir / "pip", "install", "--quiet", wheels[0], "fixtures", "pytest-xdist", cwd=base)
    except AssertionError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip(f"cannot install the wheel's dependencies here (no package index?): {str(exc)[:300]}")
    work = base / "elsewhere"
    work.mkdir()
    return bin_dir, work


def test_the_wheel_works_from_any_directory(installed):
    bin_dir, work = installed
    cli = bin_dir / "pokitdok-sandbox"
    python = bin_dir / "python"

    # One import name of our own; PyPI's `fixtures` still imports as itself.
    names = _run(python, "-c", "import pokitdok_sandbox, fixtures, pokitdok_sandbox.fixtures as ours; "
                 "print(fixtures.__file__); print(ours.__file__)", cwd=work).stdout.split()
    assert "pokitdok_sandbox" not in names[0] and "pokitdok_sandbox" in names[1]
    site = Path(names[1]).parents[2]
    assert not any((site / name).exists() for name in ("sandbox", "contract_tests", "openapi.yaml"))
    # The contract, the seed document, the kit's Schemathesis settings and the console travel inside the package.
    for part in ("openapi.yaml", "static/console.html", "contract_tests/data/pokitdok-scheduling-v4.md",
                 "contract_tests/data/schemathesis.toml"):
        assert (site / "pokitdok_sandbox" / part).is_file(), part
    assert _run(cli, "--version", cwd=work).stdout.startswith("pokitdok-sandbox ")

    assert "slots" in _run(cli, "seed", "--slots", "30", cwd=work).stdout
    assert "reset sandbox-demo" in _run(cli, "reset", cwd=work).stdout
    assert _run(cli, "check", "--db", "pokitdok-sandbox.json", cwd=work).returncode == 0

    # serve, from this directory, on its default TinyDB file here
    port = free_port()
    server = subprocess.Popen([str(cli), "serve", "--port", str(port), "--log-level", "warning"], cwd=work,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        origin = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(origin + "/api/v4/openapi.json", timeout=2) as answer:
                    assert json.load(answer)["info"]["title"].startswith("PokitDok")
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read() if server.poll() else ""
                time.sleep(0.2)
        with urllib.request.urlopen(origin + "/console", timeout=5) as answer:
            assert b"<html" in answer.read().lower()
        over_http = _run(cli, "contract", "--base-url", f"{origin}/api/v4", "--max-examples", "5", cwd=work,
                         check=False)
        assert over_http.returncode == 0, over_http.stdout[-3000:] + over_http.stderr[-2000:]
    finally:
        server.terminate()
        server.wait(timeout=20)

    in_process = _run(cli, "contract", "--max-examples", "5", cwd=work, check=False)
    assert in_process.returncode == 0, in_process.stdout[-3000:] + in_process.stderr[-2000:]


def test_pytest_runs_the_plugin_s_fixtures_and_the_kit_from_the_wheel(installed):
    bin_dir, work = installed
    python = bin_dir / "python"
    mine = work / "client-tests"
    mine.mkdir()
    shutil.copy(ROOT / "examples" / "test_booking_client.py", mine)
    copied = _run(python, "-m", "pytest", "-n", "2", "-q", "test_booking_client.py", cwd=mine, check=False)
    assert copied.returncode == 0 and "5 passed" in copied.stdout, copied.stdout[-3000:] + copied.stderr[-2000:]

    server = subprocess.Popen([str(bin_dir / "pokitdok-sandbox"), "serve", "--port", "0", "--db", ":memory:",
                               "--log-level", "warning"], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        banner = server.stdout.readline()
        api = re.match(r"pokitdok-sandbox on (http://\S+)", banner).group(1) + "/api/v4"
        kit_dir = work / "kit-run"
        kit_dir.mkdir()
        kit = _run(python, "-m", "pytest", "--pyargs", "pokitdok_sandbox.contract_tests", "--base-url", api,
                   "--max-examples", "5", "-q", cwd=kit_dir, check=False)
        assert kit.returncode == 0, kit.stdout[-3000:] + kit.stderr[-2000:]
        assert "No contract violations found." in kit.stdout
        assert not (kit_dir / ".hypothesis").exists()  # the kit's Hypothesis files live in a cache directory
    finally:
        server.terminate()
        server.wait(timeout=20)
