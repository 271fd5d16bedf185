"""The kit's options, run fixture and summary (see plugin.py): `pytest contract_tests --base-url URL ...`.

Registered by name, so a session that registered the kit's plugin already (the package's pytest
plugin does for `pytest --pyargs pokitdok_sandbox.contract_tests`) does not get its hooks twice.
"""

pytest_plugins = ["pokitdok_sandbox.contract_tests.plugin"]
