"""Seed data: deterministic Faker data sets, the documented records, reset/seed over HTTP and the CLI."""

from collections import defaultdict
from datetime import datetime

import pytest

from pokitdok_sandbox.fixtures import doc_examples as doc
from pokitdok_sandbox.fixtures import generate_dataset
from pokitdok_sandbox.app import create_app
from pokitdok_sandbox.cli import main

from .conftest import DEMO, bearer, get_token, make_settings
from .helpers import (
    APPOINTMENT_TYPES, EVERYWHERE, PEG, SCHEDULERS, SLOTS, assert_error, book, create_slot, data_of, open_slots_of,
    search, world_view,
)

RESET = "/api/v4/sandbox/reset"
SEED = "/api/v4/sandbox/seed"


# -- the generator -------------------------------------------------------------------

def test_generation_is_deterministic_for_a_seed():
    assert generate_dataset(seed=5) == generate_dataset(seed=5)
    assert generate_dataset(seed=5, providers=3, slots=40) == generate_dataset(seed=5, providers=3, slots=40)


def test_another_seed_gives_another_data_set():
    five, six = generate_dataset(seed=5), generate_dataset(seed=6)
    assert five != six
    assert five["slots"] != six["slots"]
    assert five["patients"] != six["patients"]


def test_generation_does_not_depend_on_the_global_random_state():
    import random

    random.seed(1)
    first = generate_dataset(seed=9)
    random.seed(2)
    assert generate_dataset(seed=9) == first


def _by_key(records, key):
    return {r[key]: r for r in records}


@pytest.mark.parametrize("seed", [0, 5, 123])
def test_every_documented_record_is_in_every_data_set(seed):
    data = generate_dataset(seed=seed, providers=4, slots=30)
    schedulers = _by_key(data["schedulers"], "scheduler_uuid")
    for scheduler in doc.SCHEDULERS:
        assert schedulers[scheduler["scheduler_uuid"]] == scheduler
    assert {"PokitDok", "Greenway", "Athena"} <= {s["name"] for s in data["schedulers"]}
    kinds = _by_key(data["appointment_types"], "appointment_type_uuid")
    assert kinds["ef987693-0a19-447f-814d-f8f3abbf4860"]["type"] == "OV1"
    assert {"OV1", "PC1", "AT1", "SS1"} <= {k["type"] for k in data["appointment_types"]}
    providers = _by_key(data["providers"], "pd_provider_uuid")
    assert "b691b7f9-bfa8-486d-a689-214ae47ea6f8" in providers
    patients = _by_key(data["patients"], "uuid")
    assert patients["2773f6ff-00cb-460f-823f-5ff2208511e7"]["first_name"] == "Peg"
    slots = _by_key(data["slots"], "pd_appointment_uuid")
    assert slots["ef987691-0a19-447f-814d-f8f3abbf4859"]["booked"] is True
    assert slots["ab21e95b-8fa6-41d4-98b9-9a1f6fcff0d2"]["booked"] is False


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_records_are_consistent(seed):
    data = generate_dataset(seed=seed)
    codes = {k["type"] for k in data["appointment_types"]}
    providers = _by_key(data["providers"], "pd_provider_uuid")
    for kind, key in [("schedulers", "scheduler_uuid"), ("appointment_types", "appointment_type_uuid"),
                      ("providers", "pd_provider_uuid"), ("patients", "uuid"), ("slots", "pd_appointment_uuid")]:
        keys = [r[key] for r in data[kind]]
        assert len(keys) == len(set(keys)), f"duplicate {key} in {kind}"
    for slot in data["slots"]:
        assert slot["appointment_type"] in codes
        provider = providers[slot["pd_provider_uuid"]]
        assert slot["provider_scheduler_uuid"] == provider["provider_scheduler_uuid"]
        assert slot["location"] in provider["locations"]
        assert datetime.fromisoformat(slot["start_date"]) < datetime.fromisoformat(slot["end_date"])
        assert slot["booked"] == (slot["patient"] is not None)
        if slot["patient"]:
            assert "_uuid" in slot["patient"] and "uuid" not in slot["patient"]


@pytest.mark.parametrize("seed", [0, 3, 77])
def test_generated_slots_of_one_provider_never_overlap(seed):
    data = generate_dataset(seed=seed, providers=5, slots=400)
    calendars = defaultdict(list)
    for slot in data["slots"]:
        calendars[slot["pd_provider_uuid"]].append(
            (datetime.fromisoformat(slot["start_date"]), datetime.fromisoformat(slot["end_date"])))
    for provider, spans in calendars.items():
        spans.sort()
        for (_, end), (next_start, _) in zip(spans, spans[1:]):
            assert end <= next_start, f"provider {provider} has overlapping slots"


def test_about_three_in_ten_generated_slots_are_booked():
    documented = {s["pd_appointment_uuid"] for s in doc.SLOTS}
    for seed in (0, 1, 2):
        generated = [s for s in generate_dataset(seed=seed, slots=1000)["slots"]
                     if s["pd_appointment_uuid"] not in documented]
        assert len(generated) == 1000
        share = sum(s["booked"] for s in generated) / len(generated)
        assert 0.25 <= share <= 0.35, share


def test_counts_follow_the_arguments():
    data = generate_dataset(seed=1, providers=7, slots=33)
    assert len(data["providers"]) == len(doc.PROVIDERS) + 7
    assert len(data["slots"]) == len(doc.SLOTS) + 33
    assert generate_dataset(seed=1, providers=0, slots=0)["slots"] == [dict(s) for s in doc.SLOTS]


# -- reset and seed over HTTP ---------------------------------------------------------

def _change_everything(client, headers):
    created = create_slot(client, headers)
    assert data_of(book(client, headers, created["pd_appointment_uuid"], PEG))["booked"] is True
    assert data_of(client.delete(f"{SLOTS}{doc.DELETABLE_SLOT}", headers=headers))["pd_appointment_uuid"] == \
        doc.DELETABLE_SLOT
    assert data_of(client.delete(f"/api/v4/schedule/appointments/{doc.BOOKED_SLOT}", headers=headers))[
        "booked"] is False
    assert data_of(client.put(f"/api/v4/schedule/appointments/{doc.OPEN_SLOT}", headers=headers,
                              json={"description": "changed"}))["description"] == "changed"


def test_reset_restores_the_data_set_exactly(client, auth):
    before = world_view(client, auth)
    _change_everything(client, auth)
    assert world_view(client, auth) != before
    summary = data_of(client.post(RESET, headers=auth))
    assert summary["seed"] == 0
    assert summary["slots"] == len(generate_dataset()["slots"])
    assert summary["booked"] == sum(s["booked"] for s in generate_dataset()["slots"])
    assert world_view(client, auth) == before


def test_reset_twice_is_the_same_state(client, auth):
    first_summary = data_of(client.post(RESET, headers=auth))
    first = world_view(client, auth)
    assert data_of(client.post(RESET, headers=auth)) == first_summary
    assert world_view(client, auth) == first


def test_seed_changes_the_data_set_deterministically(client, auth):
    default_state = world_view(client, auth)
    summary = data_of(client.post(SEED, headers=auth, json={"seed": 7, "slots": 50}))
    expected = generate_dataset(seed=7, slots=50)
    assert summary["seed"] == 7
    assert summary["slots"] == len(expected["slots"]) == len(doc.SLOTS) + 50
    assert summary["booked"] == sum(s["booked"] for s in expected["slots"])
    assert summary["providers"] == len(expected["providers"])
    assert summary["patients"] == len(expected["patients"])
    seeded_state = world_view(client, auth)
    assert seeded_state != default_state
    expected_open = sorted(s["pd_appointment_uuid"] for s in expected["slots"] if not s["booked"])
    assert sorted(s["pd_appointment_uuid"] for s in seeded_state["open"]) == expected_open

    # Reset now returns to seed 7's state, not to the default one.
    _change_everything(client, auth)
    assert data_of(client.post(RESET, headers=auth)) == summary
    assert world_view(client, auth) == seeded_state

    # Seeding again with the same settings gives the same state.
    assert data_of(client.post(SEED, headers=auth, json={"seed": 7, "slots": 50})) == summary
    assert world_view(client, auth) == seeded_state


def test_seed_is_the_same_in_another_sandbox(auth):
    states = []
    for _ in range(2):
        app = create_app(make_settings())
        with app.test_client() as client:
            headers = bearer(get_token(client))
            data_of(client.post(SEED, headers=headers, json={"seed": 11, "providers": 3, "slots": 20}))
            states.append(world_view(client, headers))
    assert states[0] == states[1]


def test_seed_without_body_uses_the_defaults(client, auth):
    data_of(client.post(SEED, headers=auth, json={"seed": 7, "slots": 50}))
    summary = data_of(client.post(SEED, headers=auth))
    assert summary["seed"] == 0
    assert summary["slots"] == len(generate_dataset()["slots"])


@pytest.mark.parametrize("body, field", [({"seed": -1}, "seed"), ({"slots": 200001}, "slots"),
                                         ({"seed": "seven"}, "seed"), ({"seed": 1.5}, "seed"),
                                         ({"colour": "blue"}, "colour"), ([7], "body")])
def test_bad_seed_requests_are_422_and_change_nothing(client, auth, body, field):
    before = world_view(client, auth)
    assert_error(client.post(SEED, headers=auth, json=body), 422, field)
    assert world_view(client, auth) == before


def test_seed_keeps_the_catalogue(client, auth):
    schedulers = data_of(client.get(SCHEDULERS, headers=auth))
    types = data_of(client.get(APPOINTMENT_TYPES, headers=auth))
    data_of(client.post(SEED, headers=auth, json={"seed": 3, "providers": 1, "slots": 5}))
    assert data_of(client.get(SCHEDULERS, headers=auth)) == schedulers
    # The same appointment types (their uuids and codes are stable; a seed may vary other details).
    after = data_of(client.get(APPOINTMENT_TYPES, headers=auth))
    assert sorted((t["appointment_type_uuid"], t["type"]) for t in after) == sorted(
        (t["appointment_type_uuid"], t["type"]) for t in types)
    documented = {t["appointment_type_uuid"]: t for t in doc.APPOINTMENT_TYPES}
    assert [t for t in after if t["appointment_type_uuid"] in documented] == [
        t for t in types if t["appointment_type_uuid"] in documented]


# -- the CLI ------------------------------------------------------------------------

def _view_of_db(path) -> dict:
    app = create_app(make_settings(db_path=str(path)))
    try:
        with app.test_client() as client:
            return world_view(client, bearer(get_token(client)))
    finally:
        app.sandbox.tenants.store.close()  # the file is free for the next command


def test_cli_seed_then_reset(tmp_path, capsys):
    db = tmp_path / "db.json"
    assert main(["seed", "--db", str(db), "--seed", "3", "--slots", "30"]) == 0
    assert DEMO[0] in capsys.readouterr().out
    seeded = _view_of_db(db)
    expected = generate_dataset(seed=3, slots=30)
    assert sorted(s["pd_appointment_uuid"] for s in seeded["open"]) == sorted(
        s["pd_appointment_uuid"] for s in expected["slots"] if not s["booked"])

    # Change the data set through the API, then reset from the command line.
    app = create_app(make_settings(db_path=str(db)))
    with app.test_client() as client:
        _change_everything(client, bearer(get_token(client)))
    app.sandbox.tenants.store.close()
    assert _view_of_db(db) != seeded
    assert main(["reset", "--db", str(db)]) == 0
    assert _view_of_db(db) == seeded


def test_cli_seed_is_deterministic_across_files(tmp_path):
    views = []
    for name in ("one.json", "two.json"):
        db = tmp_path / name
        assert main(["seed", "--db", str(db), "--seed", "3", "--slots", "30"]) == 0
        views.append(_view_of_db(db))
    assert views[0] == views[1]
    other = tmp_path / "three.json"
    assert main(["seed", "--db", str(other), "--seed", "4", "--slots", "30"]) == 0
    assert _view_of_db(other) != views[0]


def test_cli_seed_reseeds_every_tenant(tmp_path):
    db = tmp_path / "db.json"
    app = create_app(make_settings(db_path=str(db)))
    with app.test_client() as client:
        headers = bearer(get_token(client, ("ci-job", "s3cret")))
        assert open_slots_of(client, headers)  # the tenant now exists
    app.sandbox.tenants.store.close()  # the file is free for the command line
    assert main(["seed", "--db", str(db), "--seed", "8", "--slots", "10"]) == 0
    app = create_app(make_settings(db_path=str(db)))
    with app.test_client() as client:
        headers = bearer(get_token(client, ("ci-job", "s3cret")))
        found = search(client, headers, EVERYWHERE)
    expected = generate_dataset(seed=8, slots=10)
    assert sorted(s["pd_appointment_uuid"] for s in found) == sorted(
        s["pd_appointment_uuid"] for s in expected["slots"] if not s["booked"])


def test_cli_refuses_a_foreign_file(tmp_path, capsys):
    db = tmp_path / "notes.json"
    db.write_text('{"x": 1}')
    assert main(["reset", "--db", str(db)]) != 0
    assert str(db) in capsys.readouterr().err
    assert db.read_text() == '{"x": 1}'


def test_cli_refuses_negative_counts(tmp_path):
    assert main(["seed", "--db", str(tmp_path / "db.json"), "--slots", "-1"]) != 0


def test_cli_seed_says_which_records_it_generated_and_which_are_the_documentations(tmp_path, capsys):
    """`--providers 0` generates none; the documented provider every data set keeps is counted apart."""
    db = tmp_path / "db.json"
    assert main(["seed", "--db", str(db), "--providers", "0", "--slots", "3"]) == 0
    out = capsys.readouterr().out
    documented = len(doc.PROVIDERS)
    assert f"{documented} providers (0 generated, {documented} from the documentation)" in out, out
    assert f"{len(doc.SLOTS) + 3} slots (3 generated, {len(doc.SLOTS)} from the documentation;" in out, out
