"""The kit's options, run fixture and summary (see plugin.py): `pytest contract_tests --base-url URL ...`."""

from pokitdok_sandbox.contract_tests.plugin import *  # noqa: F401,F403  (hooks and fixtures are found by name)
