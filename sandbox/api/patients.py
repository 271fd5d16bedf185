"""POST /schedule/patient/: register a PokitDok user with a provider."""

from . import call, one, rules


async def register_patient(user, body):
    return one(await call(rules().register_patient, user, body["pd_patient_uuid"], body["pd_provider_uuid"], body.get("location")))
