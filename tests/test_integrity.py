"""Data integrity of the TinyDB file: damaged files are refused untouched, a torn last journal
line is dropped and logged, one process per file, `check` and `check --salvage`.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pokitdok_sandbox.cli import main
from pokitdok_sandbox.stores import StoreError
from pokitdok_sandbox.stores.tinydb import TinyDBStore

from .conftest import bearer, get_token, make_settings
from .helpers import APPOINTMENTS, create_slot
from pokitdok_sandbox.testing import SandboxServer, running_sandbox
from .helpers import ROOT

DEMO_TENANT = "sandbox-demo"


def _serve_briefly(db: Path, slots: int = 3) -> list[dict]:
    """A server on `db` that creates `slots` slots (one journal line each) and closes; the slots."""
    from pokitdok_sandbox.app import create_app

    app = create_app(make_settings(db_path=str(db)))
    try:
        with app.test_client() as client:
            headers = bearer(get_token(client))
            return [create_slot(client, headers) for _ in range(slots)]
    finally:
        app.sandbox.tenants.store.close()


def _reopen(db: Path) -> list[int]:
    """Open the file as a server would; answer the status of GET of each slot uuid in `_slots`."""
    from pokitdok_sandbox.app import create_app

    app = create_app(make_settings(db_path=str(db)))
    try:
        with app.test_client() as client:
            headers = bearer(get_token(client))
            return [client.get(f"{APPOINTMENTS}{uuid}", headers=headers).status_code for uuid in _slots]
    finally:
        app.sandbox.tenants.store.close()


_slots: list[str] = []


@pytest.fixture
def db(tmp_path) -> Path:
    """A database with a snapshot and a journal of several lines (the last three: three new slots)."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "d.json"
    _slots[:] = [slot["pd_appointment_uuid"] for slot in _serve_briefly(path)]
    journal = path.with_name("d.json.journal")
    assert path.stat().st_size > 0 and len(journal.read_bytes().splitlines()) >= 3
    return path


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def _insert_after_first_line(journal: Path, text: bytes) -> None:
    first, rest = journal.read_bytes().split(b"\n", 1)
    journal.write_bytes(first + b"\n" + text + b"\n" + rest)


DAMAGE = {
    "empty snapshot": lambda db: db.write_bytes(b""),
    "missing snapshot": lambda db: db.unlink(),
    "truncated snapshot": lambda db: db.write_bytes(db.read_bytes()[: db.stat().st_size // 2]),
    "garbage snapshot": lambda db: db.write_bytes(b"\x00\xffgarbage" * 10),
    "foreign JSON snapshot": lambda db: db.write_text('{"users": {"1": {"name": "x"}}}'),
    "snapshot of the wrong shape": lambda db: db.write_text('{"_meta": [1, 2]}'),
    "bad middle line": lambda db: _insert_after_first_line(db.with_name("d.json.journal"), b"#garbage#"),
    "wrong-shaped middle line": lambda db: _insert_after_first_line(db.with_name("d.json.journal"),
                                                                    b'[["put", "t"]]'),
    "foreign JSON line": lambda db: _insert_after_first_line(db.with_name("d.json.journal"), b'{"hello": 1}'),
    "unknown change": lambda db: _insert_after_first_line(db.with_name("d.json.journal"),
                                                          b'[["drop", "t", "k"]]'),
    "wrong-shaped last line": lambda db: db.with_name("d.json.journal").open("ab").write(b'["put"]\n'),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_database_is_refused_and_left_untouched(db, case):
    DAMAGE[case](db)
    before = _files(db.parent)
    with pytest.raises(StoreError) as refused:
        TinyDBStore(db)
    message = str(refused.value)
    assert str(db) in message
    assert "check --db" in message or "not a pokitdok-sandbox database" in message, message
    if "middle line" in case or case in ("foreign JSON line", "unknown change"):
        assert "line 2 " in message, message
    elif case == "wrong-shaped last line":
        assert "line " in message, message
    assert _files(db.parent) == before  # nothing written, truncated or created (no lock file left either)


@pytest.mark.parametrize("case", ["empty snapshot", "bad middle line", "wrong-shaped middle line"])
def test_serve_refuses_a_damaged_database_with_one_message(db, case):
    DAMAGE[case](db)
    before = _files(db.parent)
    result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", "--db", str(db), "--port", "9"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("pokitdok-sandbox: ") and str(db) in result.stderr
    assert "check --db" in result.stderr
    assert _files(db.parent) == before


def test_a_torn_last_line_is_dropped_logged_and_the_rest_kept(db, caplog):
    journal = db.with_name("d.json.journal")
    with journal.open("ab") as handle:
        handle.write(b'[["put","sandbox-demo/slots","x",{"pd_appoi')  # a crash mid-append
    with caplog.at_level(logging.WARNING, logger="pokitdok_sandbox"):
        statuses = _reopen(db)
    assert statuses == [200, 200, 200]
    assert any("torn last line" in record.getMessage() and str(journal) in record.getMessage()
               for record in caplog.records)
    assert journal.read_bytes().endswith(b"\n")


def test_an_emptied_snapshot_beside_its_journal_is_never_started_afresh(db):
    """The issue's reproduction: `: > d.json`, the journal still there."""
    db.write_bytes(b"")
    journal = db.with_name("d.json.journal").read_bytes()
    assert main(["reset", "--db", str(db)]) == 2
    assert db.read_bytes() == b"" and db.with_name("d.json.journal").read_bytes() == journal


# -- check and salvage ----------------------------------------------------------------------------

def test_check_reports_an_intact_file(db, capsys):
    assert main(["check", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "intact" in out and f"{DEMO_TENANT}:" in out and "1 clients" in out


@pytest.mark.parametrize("case", ["bad middle line", "wrong-shaped middle line", "truncated snapshot"])
def test_check_names_the_damage_and_salvage_keeps_every_valid_record(db, tmp_path, case, capsys):
    DAMAGE[case](db)
    before = _files(db.parent)
    assert main(["check", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "DAMAGED" in out and ("line 2" in out or "snapshot" in out)

    salvaged = tmp_path / "new.json"
    assert main(["check", "--db", str(db), "--salvage", str(salvaged)]) == 0
    assert f"into {salvaged}" in capsys.readouterr().out
    assert _files(db.parent) == before  # the original is kept as it was
    store = TinyDBStore(salvaged)  # opens: a whole, valid database
    try:
        with store.transaction(DEMO_TENANT) as tenant:
            found = [tenant.get("slots", uuid) for uuid in _slots]
    finally:
        store.close()
    if case != "truncated snapshot":  # the journal's later lines survive the bad one
        assert all(found), "a valid journal record was not salvaged"


def test_salvage_never_overwrites(db, capsys):
    target = db.with_name("taken.json")
    target.write_text("mine")
    assert main(["check", "--db", str(db), "--salvage", str(target)]) == 2
    assert target.read_text() == "mine"
    assert "exists already" in capsys.readouterr().err


def test_a_salvaged_truncated_snapshot_keeps_its_complete_records(tmp_path):
    from pokitdok_sandbox.stores.damage import _readable_prefix

    whole = {"a": {"1": {"n": 1}, "2": {"n": 2}}, "b": {"3": {"n": 3}}}
    raw = json.dumps(whole).encode()
    assert _readable_prefix(raw) == (whole, True)
    cut = raw[: raw.index(b'"3"') + 8]
    data, complete = _readable_prefix(cut)
    assert not complete and data["a"] == whole["a"] and data.get("b", {}) == {}


# -- one process per file -------------------------------------------------------------------------

def test_a_second_process_on_a_file_in_use_fails_at_once_naming_the_holder(tmp_path):
    db = tmp_path / "shared.json"
    with running_sandbox(db) as server:
        for command in (["serve", "--port", "9"], ["seed", "--slots", "5"], ["reset"], ["migrate"]):
            before = _files(tmp_path)
            started = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", *command, "--db", str(db)],
                                    cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert result.returncode == 2, (command, result.stdout, result.stderr)
            assert f"pid {server.process.pid}" in result.stderr and "in use" in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            assert time.monotonic() - started < 15
            assert _files(tmp_path) == before
        # The running server never noticed.
        token = server.token()
        assert httpx.get(f"{server.api}/schedule/schedulers/", headers=bearer(token)).status_code == 200
    # Once it has stopped, the file is free (the lock file goes with it).
    assert main(["reset", "--db", str(db)]) == 0
    assert not db.with_name("shared.json.lock").exists()


def test_the_lock_outlives_nothing_after_kill_9(tmp_path):
    db = tmp_path / "db.json"
    server = SandboxServer(db).start()
    server.kill9()
    assert main(["reset", "--db", str(db)]) == 0  # the OS dropped the dead process's lock


def test_one_process_cannot_open_a_file_twice(tmp_path):
    db = tmp_path / "db.json"
    first = TinyDBStore(db)
    try:
        with pytest.raises(StoreError) as refused:
            TinyDBStore(db)
        assert "in use" in str(refused.value)
    finally:
        first.close()
    TinyDBStore(db).close()
