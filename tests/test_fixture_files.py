"""Fixture files (docs/fixture-files.md): loaded over HTTP and by `seed --from`, written by export and
`GET /sandbox/export`, loaded again to the same data set; a file a rule refuses is named record by
record and changes nothing."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from pokitdok_sandbox import cli

from .helpers import APPOINTMENTS, ROOT, assert_error, data_of

CLINIC = ROOT / "examples" / "clinic.yaml"
SEED, EXPORT, RESET, DATASET = ("/api/v4/sandbox/seed", "/api/v4/sandbox/export", "/api/v4/sandbox/reset",
                                "/api/v4/sandbox/dataset")
PROVIDER = "b691b7f9-bfa8-486d-a689-214ae47ea6f8"
JOHN = "500ef469-2767-4901-b705-425e9b6f7f83"


def clinic() -> dict:
    return yaml.safe_load(CLINIC.read_text(encoding="utf-8"))


def test_a_fixture_loads_exports_and_loads_again_identically(client, auth):
    summary = data_of(client.post(SEED, json={"fixture": clinic()}, headers=auth))
    assert summary["fixture"] == "Harbor Clinic"
    assert (summary["providers"], summary["patients"], summary["slots"], summary["booked"]) == (1, 2, 2, 1)
    exported = data_of(client.get(EXPORT, headers=auth))
    data_of(client.post(SEED, json={"fixture": exported}, headers=auth))
    assert data_of(client.get(EXPORT, headers=auth)) == exported
    # what the file says is what the API answers: the booking by John, the open slot after it
    [booking] = data_of(client.get(APPOINTMENTS, params={"patient_uuid": JOHN}, headers=auth))
    assert (booking["start_date"], booking["patient"]["first_name"]) == ("2027-01-04T09:00:00.000000", "John")
    [open_slot] = data_of(client.get(APPOINTMENTS, params={"pd_provider_uuid": PROVIDER}, headers=auth))
    assert (open_slot["start_date"], open_slot["appointment_type"]) == ("2027-01-04T10:00:00.000000", "AT1")


def test_a_reset_comes_back_to_the_loaded_fixture(client, auth):
    data_of(client.post(SEED, json={"fixture": clinic()}, headers=auth))
    loaded = data_of(client.get(EXPORT, headers=auth))
    open_uuid = loaded["slots"][1]["pd_appointment_uuid"]
    assert client.delete(f"/api/v4/schedule/slots/{open_uuid}", headers=auth).status_code == 200
    assert data_of(client.get(EXPORT, headers=auth)) != loaded
    assert data_of(client.post(RESET, headers=auth))["fixture"] == "Harbor Clinic"
    assert data_of(client.get(EXPORT, headers=auth)) == loaded
    assert data_of(client.get(DATASET, headers=auth))["slots"] == 2


def _broken(change) -> dict:
    document = clinic()
    change(document)
    return document


def _overlap(document):
    document["slots"][1]["start_date"] = "2027-01-04T09:15:00"


def _unknown_provider(document):
    document["slots"][1]["pd_provider_uuid"] = "00000000-0000-4000-8000-000000000001"


def _missing_patient(document):
    document["slots"][0]["patient"] = "00000000-0000-4000-8000-000000000002"


def _misspelt_field(document):
    document["patients"][1]["frist_name"] = "Peg"


def _booking_patient_with_unknown_field(document):
    document["slots"][0]["patient"] = {"_uuid": JOHN, "notes": [[["kept?"]]]}


def _booking_patient_field_not_text(document):
    document["slots"][0]["patient"] = {"_uuid": JOHN, "first_name": {"given": "John"}}


def _type_code_the_api_refuses(document):
    document["appointment_types"][1]["type"] = "AT 1/x"
    document["slots"][1]["appointment_type"] = "AT 1/x"


BROKEN = [
    (_overlap, "slots[1]", "already has slot", "start_date"),
    (_unknown_provider, "slots[1]", "no provider with pd_provider_uuid 00000000-0000-4000-8000-000000000001",
     "pd_provider_uuid"),
    (_missing_patient, "slots[0]", "no patient with patient._uuid 00000000-0000-4000-8000-000000000002",
     "patient._uuid"),
    (_misspelt_field, "patients[1]", "unknown field(s) frist_name", "frist_name"),
    (_booking_patient_with_unknown_field, "slots[0]", "patient has unknown field(s) notes", "patient.notes"),
    (_booking_patient_field_not_text, "slots[0]", "patient.first_name must be text", "patient.first_name"),
    (_type_code_the_api_refuses, "appointment_types[1]", "is not an appointment type code", "type"),
]


@pytest.mark.parametrize("change, record, reason, field", BROKEN, ids=[b[0].__name__[1:] for b in BROKEN])
def test_a_broken_fixture_is_refused_naming_the_record_and_nothing_changes(client, auth, change, record, reason,
                                                                           field):
    before = data_of(client.get(EXPORT, headers=auth))
    errors = assert_error(client.post(SEED, json={"fixture": _broken(change)}, headers=auth), 422, field)
    assert errors["message"].startswith(f"fixture: {record}"), errors["message"]
    assert reason in errors["message"], errors["message"]
    assert data_of(client.get(EXPORT, headers=auth)) == before


def test_a_fixture_with_generated_settings_or_another_version_is_refused(client, auth):
    assert "not both" in assert_error(client.post(SEED, json={"fixture": clinic(), "seed": 3}, headers=auth),
                                      422, "fixture")["message"]
    newer = {**clinic(), "version": 2}
    assert "write version: 1" in assert_error(client.post(SEED, json={"fixture": newer}, headers=auth), 422,
                                              "version")["message"]


def test_the_generated_data_set_exports_and_loads_as_a_fixture(client, auth):
    generated = data_of(client.get(EXPORT, headers=auth))
    assert len(generated["slots"]) == data_of(client.get(DATASET, headers=auth))["slots"]
    data_of(client.post(SEED, json={"fixture": generated}, headers=auth))
    assert data_of(client.get(EXPORT, headers=auth)) == generated


# -- the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_seed_from_a_file_and_export_round_trip_on_the_command_line(tmp_path, capsys, suffix):
    first, second = tmp_path / f"first{suffix}", tmp_path / f"second{suffix}"
    assert cli.main(["seed", "--db", str(tmp_path / "a.json"), "--from", str(CLINIC)]) == 0
    assert cli.main(["export", "--db", str(tmp_path / "a.json"), "-o", str(first)]) == 0
    assert cli.main(["seed", "--db", str(tmp_path / "b.json"), "--from", str(first)]) == 0
    assert cli.main(["export", "--db", str(tmp_path / "b.json"), "-o", str(second)]) == 0
    assert first.read_text() == second.read_text()
    written = yaml.safe_load(first.read_text()) if suffix == ".yaml" else json.loads(first.read_text())
    assert written["format"] == "pokitdok-sandbox/tenant" and written["version"] == 1
    assert [s["booked"] for s in written["slots"]] == [True, False]
    assert "loaded" in capsys.readouterr().out


def test_a_broken_file_on_the_command_line_names_file_and_record_and_loads_nothing(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(_broken(_missing_patient)))
    db = tmp_path / "db.json"
    assert cli.main(["seed", "--db", str(db), "--from", str(broken)]) == 2
    message = capsys.readouterr().err
    assert f"{broken}: slots[0] (pd_appointment_uuid " in message
    assert "add that patient to the file" in message and "nothing was loaded" in message
    assert not db.exists()


def _clinic_json(change) -> str:
    return json.dumps(_broken(change))


def _lone_surrogate(document):
    document["patients"][1]["first_name"] = "\ud800"


def _nested(document):
    document["patients"][1]["member_id"] = json.loads("[" * 40 + "]" * 40)


def _alias_bomb(levels: int) -> bytes:
    """A YAML file whose patient's first_name stands for 10 ** (levels + 1) strings through aliases."""
    value = "&x0 [" + ", ".join(["a"] * 10) + "]"
    for i in range(1, levels + 1):
        value = f"&x{i} [{value}, " + ", ".join([f"*x{i - 1}"] * 9) + "]"
    return (f"format: pokitdok-sandbox/tenant\nversion: 1\npatients:\n- {{uuid: {JOHN}, first_name: {value}, "
            "last_name: D}\n").encode()


HOSTILE_FILES = [
    ("latin1.yaml", "format: pokitdok-sandbox/tenant\nversion: 1\ndescription: caf\xe9\n".encode("latin-1"),
     "not UTF-8 text"),
    ("surrogate.json", _clinic_json(_lone_surrogate).encode(), "lone UTF-16 surrogate"),
    ("nested.json", _clinic_json(_nested).encode(), "nest more than"),
    ("deeper-than-python.json", ("[" * 100_000 + "]" * 100_000).encode(), "nest more than"),
    ("version-true.json", json.dumps({**clinic(), "version": True}).encode(), "version True"),
    ("number-key.yaml", yaml.safe_dump({**clinic(), 5: "x"}).encode(), "unknown section(s) 5"),
    ("alias-bomb.yaml", _alias_bomb(8), "nest more than"),
    ("aliases.yaml", _alias_bomb(3), "first_name must be text"),
]


@pytest.mark.parametrize("name, content, reason", HOSTILE_FILES, ids=[h[0] for h in HOSTILE_FILES])
def test_a_hostile_file_on_the_command_line_is_refused_with_a_message_and_loads_nothing(tmp_path, capsys, name,
                                                                                         content, reason):
    hostile, db = tmp_path / name, tmp_path / "db.json"
    hostile.write_bytes(content)
    assert cli.main(["seed", "--db", str(db), "--from", str(hostile)]) == 2
    message = capsys.readouterr().err
    assert str(hostile) in message and reason in message and "nothing was loaded" in message, message
    assert len(message) < 2000, message
    assert not db.exists()


def test_the_fixture_functions_refuse_what_the_rules_refuse():
    from pokitdok_sandbox.fixture_files import FixtureError, load_document

    document = copy.deepcopy(clinic())
    document["slots"][1]["end_date"] = document["slots"][1]["start_date"]
    with pytest.raises(FixtureError) as refused:
        load_document(document, "clinic.yaml")
    assert refused.value.record.startswith("slots[1]") and "end_date must be after start_date" in refused.value.reason
