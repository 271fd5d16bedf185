"""The pytest plugin installed with the package (entry point `pytest11`).

Fixtures (docs/testing.md):

* `pokitdok_sandbox` (session): a running sandbox (`testing.Sandbox`): started on a free port for
  the session (one per pytest-xdist worker), or the one `--sandbox-url` names.
* `pokitdok_tenant` (function): a fresh tenant for the test (`testing.Tenant`): base URL, client
  id and secret, a ready token and a small API helper; the `--sandbox-fixture` file (or the test's
  `@pytest.mark.sandbox_fixture(FILE)`) loaded into it. Tests never share data, so they need no
  reset and may run in parallel.

Nothing starts unless a test asks for a fixture, and the names (`pokitdok_*`, `--sandbox-*`) stay
clear of the contract kit's options and of the project's own test fixtures.

The plugin also lets `pytest --pyargs pokitdok_sandbox.contract_tests --base-url ...` run the
contract kit: pytest reads the options of a conftest only from the paths on its command line, so
for `--pyargs` the kit's plugin is registered here, before the command line is parsed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

KIT = "pokitdok_sandbox.contract_tests"
KIT_PLUGIN = KIT + ".plugin"
MARK = "sandbox_fixture"


def pytest_addoption(parser):
    group = parser.getgroup("pokitdok-sandbox", "PokitDok sandbox fixtures (pokitdok_sandbox, pokitdok_tenant)")
    group.addoption("--sandbox-url", dest="pokitdok_sandbox_url", default=None, metavar="URL",
                    help="use the sandbox already running there (origin or API base) instead of starting one")
    group.addoption("--sandbox-store", dest="pokitdok_sandbox_store", default=None, metavar="URL",
                    help="store of the sandbox the session starts: postgresql://... or a TinyDB file "
                         "(default: in memory)")
    group.addoption("--sandbox-fixture", dest="pokitdok_sandbox_fixture", default=None, metavar="FILE",
                    help="fixture file (YAML or JSON, docs/fixture-files.md) loaded into every test's tenant")
    group.addoption("--sandbox-admin-token", dest="pokitdok_sandbox_admin_token", default=None, metavar="TOKEN",
                    help="admin token of the --sandbox-url server, if it has one (env POKITDOK_SANDBOX_ADMIN_TOKEN)")
    for name, help_text in (("url", "default of --sandbox-url"), ("store", "default of --sandbox-store"),
                            ("fixture", "default of --sandbox-fixture (relative to the ini file)")):
        parser.addini(f"pokitdok_sandbox_{name}", help_text, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    namespace = early_config.known_args_namespace
    if getattr(namespace, "pyargs", False) and any(_names_kit(arg) for arg in namespace.file_or_dir or ()):
        early_config.pluginmanager.import_plugin(KIT_PLUGIN)


def _names_kit(arg: str) -> bool:
    name = str(arg).split("::")[0]
    return name == KIT or name.startswith(KIT + ".")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{MARK}(path): the fixture file loaded into this test's "
                                       "pokitdok_tenant (docs/fixture-files.md)")


def _setting(config, name: str):
    value = config.getoption(f"pokitdok_sandbox_{name}")
    if value is None:
        value = config.getini(f"pokitdok_sandbox_{name}") or None
        if value is not None and name == "fixture" and config.inipath is not None:
            value = str(config.inipath.parent / value)
    return value


@pytest.fixture(scope="session")
def pokitdok_sandbox(request):
    """A running sandbox for the session (`pokitdok_sandbox.testing.Sandbox`)."""
    from .testing import running_sandbox

    config = request.config
    with running_sandbox(_setting(config, "store"), url=_setting(config, "url"), fixture=_setting(config, "fixture"),
                         admin_token=config.getoption("pokitdok_sandbox_admin_token")) as sandbox:
        yield sandbox


@pytest.fixture
def pokitdok_tenant(request, pokitdok_sandbox):
    """A fresh tenant of the session's sandbox for this test (`pokitdok_sandbox.testing.Tenant`)."""
    marker = request.node.get_closest_marker(MARK)
    fixture = _marked_file(request, marker.args[0]) if marker is not None and marker.args else None
    tenant = pokitdok_sandbox.new_tenant(fixture=fixture)
    try:
        yield tenant
    finally:
        tenant.close()


def _marked_file(request, given) -> Path:
    """A marked fixture file: as given, else beside the test module."""
    path = Path(given)
    if not path.is_absolute() and not path.exists():
        beside = Path(request.node.path).parent / path
        if beside.exists():
            return beside
    return path

