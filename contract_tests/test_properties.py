"""Property-based: every operation of the contract with generated valid and invalid data, and
stateful scenarios that follow the contract's links (create slot -> get / book -> cancel -> delete
-> get 404).

Checks: Schemathesis' own as data/schemathesis.toml sets them (not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection (invalid data is refused with the contract's
status: 422, or as the operation says), positive_data_acceptance (valid data is not refused, 404,
409 and 422 aside), ignored_auth (requests without or with a bad token are refused),
unsupported_method and allow_header_conformance (undeclared methods answer 405 with Allow),
ensure_resource_availability (stateful)), plus every kit check (checks.py), e.g.
deleted_slot_is_gone (a deleted slot answers 404). use_after_free is off: DELETE on an appointment
cancels the booking, the slot stays.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.errors import FlakyStrategyDefinition

from pokitdok_sandbox.contract_tests.run import current
from pokitdok_sandbox.contract_tests.schema import get_schema
from pokitdok_sandbox.contract_tests.steer import guard

# Searches are checked both ways against a few records the run keeps (plugin.resident_records).
pytestmark = pytest.mark.usefixtures("resident_records")

SCHEMA = get_schema(current().options.spec)


@SCHEMA.parametrize()
def test_operation_honours_the_contract(case, contract_run, api):
    base_url = contract_run.base_url_for(case.operation)
    if base_url is None:
        pytest.skip("the token URL does not end in /oauth2/token; its own tests cover it (test_auth.py)")
    guard(case)
    case.call_and_validate(session=contract_run.target.session, base_url=base_url, additional_checks=api.checks)


def test_stateful_workflows_through_the_contract_links(contract_run, api):
    run = contract_run

    class Workflows(SCHEMA.as_state_machine()):
        def before_call(self, case):
            guard(case)

        def get_call_kwargs(self, case):
            return {"session": run.target.session, "base_url": run.base_url_for(case.operation)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            super().validate_response(response, case, additional_checks=[*(additional_checks or []), *api.checks],
                                      **kwargs)


    Workflows._hypothesis_internal_use_seed = run.seed
    try:
        Workflows.run(settings=settings(max_examples=max(5, run.options.max_examples // 10),
                                        stateful_step_count=run.options.workflow_steps, deadline=None,
                                        database=None, suppress_health_check=list(HealthCheck)))
    except FlakyStrategyDefinition:
        pytest.fail("the target answered the same sequence of requests differently when it was replayed "
                    f"(every scenario works on slots it creates itself); rerun with --seed {run.seed}",
                    pytrace=False)
