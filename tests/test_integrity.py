"""Data integrity of the TinyDB file: damaged files are refused untouched, a torn last journal
line is dropped and logged, one process per file, `check` and `check --salvage`.
"""

from __future__ import annotations

import json
import os
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
    # Snapshot and journal belong together: the journal's header names the snapshot's generation, its
    # lines carry checksums chained from it, and the snapshot is sealed with its own checksum.
    "missing journal": lambda db: db.with_name("d.json.journal").unlink(),
    "foreign journal": lambda db: _foreign_journal(db),
    "older journal": lambda db: _older_journal(db),
    "changed byte in a journal line (JSON still valid)": lambda db: _change_byte(db.with_name("d.json.journal"), 4),
    "changed byte in the last journal line (JSON still valid)": lambda db: _change_byte(db.with_name("d.json.journal"),
                                                                                         -2),
    "dropped middle line": lambda db: _drop_line(db.with_name("d.json.journal"), 2),
    "changed byte in the snapshot (JSON still valid)": lambda db: _change_byte(_compacted(db), 0),
    "empty JSON object snapshot": lambda db: db.write_text("{}"),
    "seal removed from the snapshot": lambda db: _unsealed(_compacted(db)),
}


def _unsealed(db: Path) -> None:
    data = json.loads(db.read_bytes())
    del data["_seal"]
    db.write_text(json.dumps(data, separators=(",", ":")))


def _change_byte(path: Path, line: int) -> None:
    """Change one character inside a string on the given line (0: the first), so the JSON stays valid."""
    lines = path.read_bytes().split(b"\n")
    target = lines[line]
    position = target.index(b'"start_date":"') + 16  # the year's third digit
    changed = b"5" if target[position:position + 1] != b"5" else b"6"
    lines[line] = target[:position] + changed + target[position + 1:]
    path.write_bytes(b"\n".join(lines))
    journal = path.name.endswith(".journal")
    json.loads(lines[line][:-17] if journal else lines[line])  # still valid JSON


def _compacted(db: Path) -> Path:
    """The database with its journal folded into the snapshot."""
    store = TinyDBStore(db)
    store.db.storage.compact()
    store.close()
    return db


def _drop_line(path: Path, line: int) -> None:
    lines = path.read_bytes().split(b"\n")
    del lines[line - 1]
    path.write_bytes(b"\n".join(lines))


def _foreign_journal(db: Path) -> None:
    other = db.with_name("other.json")
    _serve_briefly(other, slots=1)
    db.with_name("d.json.journal").write_bytes(other.with_name("other.json.journal").read_bytes())


def _older_journal(db: Path) -> None:
    """A copy of the journal taken earlier, put back after more writes and a compaction."""
    journal = db.with_name("d.json.journal")
    copy = journal.read_bytes()
    store = TinyDBStore(db)
    try:
        with store.transaction(DEMO_TENANT) as tenant:
            slot = tenant.get("slots", _slots[0])
            tenant.replace("slots", {**slot, "description": "changed after the copy"})
        store.db.storage.compact()
    finally:
        store.close()
    journal.write_bytes(copy)


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
    elif case.startswith("changed byte in a journal line"):
        assert "line 5 " in message and "changed after it was written" in message, message
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
    # What is known, and no more: a crash mid-append leaves this (never acknowledged); a cut would not be.
    assert any("ends inside a line" in record.getMessage() and str(journal) in record.getMessage()
               and "never acknowledged" in record.getMessage() and "cut short" in record.getMessage()
               for record in caplog.records)
    assert journal.read_bytes().endswith(b"\n")


def test_an_emptied_snapshot_beside_its_journal_is_never_started_afresh(db):
    """The issue's reproduction: `: > d.json`, the journal still there."""
    db.write_bytes(b"")
    journal = db.with_name("d.json.journal").read_bytes()
    assert main(["reset", "--db", str(db)]) == 2
    assert db.read_bytes() == b"" and db.with_name("d.json.journal").read_bytes() == journal


# -- check and salvage ----------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["intact", "torn last line", *DAMAGE])
def test_check_agrees_with_serve(db, case, capsys):
    """`check` says intact exactly when the server opens the file, and otherwise gives the server's reason."""
    if case == "torn last line":
        db.with_name("d.json.journal").open("ab").write(b'[["put","sandbox-demo/slots","x",{"pd_appoi')
    elif case != "intact":
        DAMAGE[case](db)
    code = main(["check", "--db", str(db)])
    out = capsys.readouterr().out
    try:
        TinyDBStore(db).close()
        refusal = None
    except StoreError as exc:
        refusal = str(exc).split(" Nothing was changed")[0]
    assert (code == 0) == (refusal is None), (case, out, refusal)
    if refusal is not None:
        assert f"REFUSED: {refusal}" in out, (out, refusal)
    else:
        assert "intact" in out


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


def test_salvage_to_a_path_that_cannot_be_written_is_a_message(db, capsys):
    (db.parent / "plain").write_text("x")
    before = _files(db.parent)
    assert main(["check", "--db", str(db), "--salvage", str(db.parent / "plain" / "new.json")]) == 2
    assert "cannot be written" in capsys.readouterr().err
    assert _files(db.parent) == before


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


# -- a database of the previous version -------------------------------------------------------------

def _as_format_1(db: Path) -> None:
    """Rewrite a database as the previous version wrote it: an unsealed snapshot marked format 1, a
    journal of bare JSON lines (no header, no checksums)."""
    from pokitdok_sandbox.stores.journal import split_line

    data = json.loads(db.read_bytes())
    del data["_seal"]
    data["_meta"]["format"]["version"] = 1
    db.write_text(json.dumps(data, separators=(",", ":")))
    journal = db.with_name("d.json.journal")
    lines = journal.read_bytes().split(b"\n")[1:-1]
    journal.write_bytes(b"".join(split_line(line)[0] + b"\n" for line in lines))


def test_a_database_of_the_previous_format_opens_and_is_rewritten_in_the_current_one(db, capsys, caplog):
    _as_format_1(db)
    assert main(["check", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "format 1" in out and "intact" in out, out
    with caplog.at_level(logging.WARNING, logger="pokitdok_sandbox"):
        assert _reopen(db) == [200, 200, 200]
    assert any("format 1" in record.getMessage() and "rewritten in format 2" in record.getMessage()
               for record in caplog.records)
    snapshot = json.loads(db.read_bytes())
    assert snapshot["_meta"]["format"]["version"] == 2 and "_seal" in snapshot
    assert db.with_name("d.json.journal").read_bytes().startswith(b'{"journal":')
    assert _reopen(db) == [200, 200, 200]
    assert main(["check", "--db", str(db)]) == 0 and "format 1" not in capsys.readouterr().out


def test_migrate_rewrites_a_database_of_the_previous_format(db, capsys):
    _as_format_1(db)
    assert main(["migrate", "--db", str(db)]) == 0
    assert "from format 1" in capsys.readouterr().out
    assert json.loads(db.read_bytes())["_meta"]["format"]["version"] == 2
    assert main(["migrate", "--db", str(db)]) == 0
    assert "format 2, up to date" in capsys.readouterr().out


# -- where the file is ---------------------------------------------------------------------------

def test_a_second_server_through_a_symbolic_link_to_the_file_is_refused(tmp_path):
    db = tmp_path / "db.json"
    link = tmp_path / "link.json"
    with running_sandbox(db) as server:
        link.symlink_to(db)
        result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", "--db", str(link),
                                 "--port", "9"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (result.stdout, result.stderr)
        assert "in use" in result.stderr and f"pid {server.process.pid}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    # Served through the link, the file stays the file (a compaction renames over it, not over the link).
    store = TinyDBStore(link)
    try:
        store.db.storage.compact()
    finally:
        store.close()
    assert link.is_symlink() and link.resolve() == db.resolve()


@pytest.mark.parametrize("where", ["under a file", "a read-only directory"])
def test_a_database_path_that_cannot_be_written_is_a_message_not_a_traceback(tmp_path, where):
    if where == "under a file":
        (tmp_path / "plain").write_text("x")
        db = tmp_path / "plain" / "db.json"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        (tmp_path / "ro").mkdir(mode=0o555)
        db = tmp_path / "ro" / "db.json"
    result = subprocess.run([sys.executable, "-m", "pokitdok_sandbox.cli", "serve", "--db", str(db), "--port", "9"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("pokitdok-sandbox: ") and "cannot be opened for writing" in result.stderr


# -- salvage: clients and tenants kept, records that are not the sandbox's dropped and listed ---------

def test_salvage_drops_and_lists_garbled_records_and_keeps_the_rest(db, tmp_path, capsys):
    # A slot whose keys were garbled in a database of the previous format (no checksums): its JSON is valid.
    _as_format_1(db)
    journal = db.with_name("d.json.journal")
    bad = journal.read_bytes().replace(_slots[1].encode() + b'",{"pd_appointment_uuid"',
                                       _slots[1].encode() + b'",{"pd_appointmenX_uuid"', 1)
    assert bad != journal.read_bytes()
    journal.write_bytes(bad)
    salvaged = tmp_path / "new.json"
    assert main(["check", "--db", str(db), "--salvage", str(salvaged)]) == 0
    out = capsys.readouterr().out
    assert f"dropped: {DEMO_TENANT}/slots record {_slots[1]!r}" in out, out
    assert "1 dropped" in out
    store = TinyDBStore(salvaged)
    try:
        assert store.get_client(DEMO_TENANT) is not None and store.tenant_settings(DEMO_TENANT) is not None
        with store.transaction(DEMO_TENANT) as tenant:
            assert [tenant.get("slots", uuid) is not None for uuid in _slots] == [True, False, True]
    finally:
        store.close()


def test_salvage_of_a_database_whose_snapshot_is_lost_keeps_its_tenants_from_being_seeded_over(db, tmp_path,
                                                                                               capsys):
    """The client and tenant rows lived in the snapshot only; the journal holds the later slots."""
    db.write_text("{}")  # the tables the journal does not hold are gone
    store_rows = b'"_clients"', b'"_tenants"'
    journal = db.with_name("d.json.journal")
    kept = [line for line in journal.read_bytes().split(b"\n") if not any(row in line for row in store_rows)]
    journal.write_bytes(b"\n".join(kept))
    salvaged = tmp_path / "new.json"
    assert main(["check", "--db", str(db), "--salvage", str(salvaged)]) == 0
    out = capsys.readouterr().out
    assert f"added: tenant {DEMO_TENANT!r} had records but no settings row" in out, out
    assert _reopen(salvaged) == [200, 200, 200]  # the first token request did not seed over them
