"""POST /schedule/patient/: register a PokitDok user with a provider."""

from . import rules


async def register_patient(user, body):
    return rules().register_patient(user, body["pd_patient_uuid"], body["pd_provider_uuid"], body.get("location"))
