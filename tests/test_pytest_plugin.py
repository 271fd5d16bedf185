"""The package's pytest plugin and `running_sandbox()`, used the way a client developer would:
a test file of their own, run by pytest in another directory (in parallel), and a context manager."""

from __future__ import annotations

import shutil
import subprocess
import sys

import httpx
import pytest

from pokitdok_sandbox.testing import Sandbox, running_sandbox

from .helpers import ROOT

EXAMPLE = ROOT / "examples" / "test_booking_client.py"
CLINIC = ROOT / "examples" / "clinic.yaml"
PROVIDER = "b691b7f9-bfa8-486d-a689-214ae47ea6f8"


def _pytest(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_the_example_test_file_runs_in_parallel_from_a_copy(tmp_path):
    shutil.copy(EXAMPLE, tmp_path)
    result = _pytest("-n", "2", "-q", EXAMPLE.name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout


def test_a_fixture_file_option_loads_every_test_s_tenant_and_a_mark_overrides_it(tmp_path):
    shutil.copy(CLINIC, tmp_path)
    other = CLINIC.read_text().replace("Harbor Clinic", "Other Clinic").replace(
        'start_date: "2027-01-04T10:00:00"', 'start_date: "2027-01-04T10:30:00"')
    (tmp_path / "other.yaml").write_text(other)
    (tmp_path / "test_mine.py").write_text(
        "import pytest\n"
        "def test_the_file_s_records(pokitdok_tenant):\n"
        "    assert pokitdok_tenant.data('GET', '/sandbox/dataset')['fixture'] == 'Harbor Clinic'\n"
        "    assert [s['booked'] for s in pokitdok_tenant.slots()] == [True, False]\n"
        "    [first_open] = pokitdok_tenant.slots(booked=False)\n"
        "    pokitdok_tenant.delete('/schedule/slots/' + first_open['pd_appointment_uuid'])\n"
        "    assert len(pokitdok_tenant.slots()) == 1\n"
        "def test_another_test_has_them_all_again(pokitdok_tenant):\n"
        "    assert len(pokitdok_tenant.slots()) == 2\n"
        "@pytest.mark.sandbox_fixture('other.yaml')\n"
        "def test_a_marked_test_gets_its_own_file(pokitdok_tenant):\n"
        "    assert pokitdok_tenant.data('GET', '/sandbox/dataset')['fixture'] == 'Other Clinic'\n")
    result = _pytest("-q", "-p", "no:randomly", "--sandbox-fixture", "clinic.yaml", "test_mine.py", cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout


def test_a_broken_fixture_file_stops_the_session_naming_the_record(tmp_path):
    (tmp_path / "broken.yaml").write_text(CLINIC.read_text().replace("patient: 500ef469", "patient: 600ef469"))
    (tmp_path / "test_mine.py").write_text("def test_it(pokitdok_tenant):\n    pass\n")
    result = _pytest("-q", "--sandbox-fixture", "broken.yaml", "test_mine.py", cwd=tmp_path)
    assert result.returncode != 0
    assert "broken.yaml: slots[0]" in result.stdout and "no patient with patient._uuid 600ef469" in result.stdout


def test_running_sandbox_gives_tenants_that_do_not_see_each_other():
    with running_sandbox() as sandbox:
        first, second = sandbox.new_tenant(), sandbox.new_tenant()
        assert first.client_id != second.client_id
        slot = first.slots(booked=False, pd_provider_uuid=PROVIDER)[0]["pd_appointment_uuid"]
        patient = {"_uuid": "500ef469-2767-4901-b705-425e9b6f7f83"}
        assert first.data("PUT", f"/schedule/appointments/{slot}", json={"patient": patient})["booked"] is True
        assert _booked(second, slot) is False
        # the same server, named by its URL (an already running sandbox), and a tenant loaded from a file
        with running_sandbox(url=sandbox.api, fixture=CLINIC) as again:
            assert isinstance(again, Sandbox) and again.origin == sandbox.origin
            assert len(again.new_tenant().slots()) == 2
        assert _booked(first, slot) is True
        origin = sandbox.origin
    with pytest.raises(httpx.HTTPError):
        httpx.get(origin + "/", timeout=2)  # stopped at the end of the block


def _booked(tenant, slot: str) -> bool:
    [found] = [s for s in tenant.slots(pd_provider_uuid=PROVIDER) if s["pd_appointment_uuid"] == slot]
    return found["booked"]


def test_the_plugin_s_names_stay_clear_of_the_kit_s_and_the_project_s(tmp_path):
    # Both sets of options in one session: the kit's conftest with the installed plugin.
    result = subprocess.run([sys.executable, "-m", "pytest", "contract_tests", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--base-url" in result.stdout and "--sandbox-url" in result.stdout
    # The project's fixtures and the plugin's coexist: each name defined once.
    listed = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-q", "tests/test_admin_routes.py"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    for name in ("pokitdok_sandbox", "pokitdok_tenant", "client", "app"):
        assert sum(line.split(" ")[0] == name for line in listed.splitlines()) == 1, name


def test_the_session_sandbox_may_keep_its_data_in_postgresql(pg_url):
    with running_sandbox(pg_url, fixture=CLINIC) as sandbox:
        assert "(store: postgresql://" in sandbox.output
        first, second = sandbox.new_tenant(), sandbox.new_tenant()
        first.delete(f"/schedule/slots/{first.slots(booked=False)[0]['pd_appointment_uuid']}")
        assert (len(first.slots()), len(second.slots())) == (1, 2)


def test_the_kit_runs_by_pyargs_from_the_checkout():
    with running_sandbox() as sandbox:
        result = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "pokitdok_sandbox.contract_tests",
                                 "--base-url", sandbox.api, "--max-examples", "3", "-q", "-p", "no:cacheprovider",
                                 "-k", "documentation or auth"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "No contract violations found." in result.stdout
