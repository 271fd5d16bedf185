"""The journaled TinyDB storage: durable appends, torn-line recovery, compaction."""

import json

from pokitdok_sandbox.stores import journal
from pokitdok_sandbox.stores.journal import JournaledJSONStorage


def _reopen(path):
    return JournaledJSONStorage(path).read()


def test_applied_changes_survive_reopening_without_a_snapshot_rewrite(tmp_path):
    path = tmp_path / "db.json"
    storage = JournaledJSONStorage(path)
    storage.write({"t": {}})
    snapshot = path.read_bytes()
    storage.apply([("put", "t", "a", {"n": 1})])
    storage.apply([("put", "t", "b", {"n": 2}), ("del", "t", "a")])
    assert path.read_bytes() == snapshot  # the snapshot was not rewritten
    assert _reopen(path) == {"t": {"b": {"n": 2}}}


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path):
    path = tmp_path / "db.json"
    storage = JournaledJSONStorage(path)
    storage.apply([("put", "t", "a", {"n": 1})])
    storage.close()
    with open(storage.journal_path, "ab") as handle:
        handle.write(b'[["put","t","b",{"n":')  # a crash mid-append
    assert _reopen(path) == {"t": {"a": {"n": 1}}}
    assert storage.journal_path.read_bytes().endswith(b"\n")


def test_the_journal_is_folded_into_the_snapshot_when_it_grows(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 200)
    path = tmp_path / "db.json"
    storage = JournaledJSONStorage(path)
    for number in range(50):
        storage.apply([("put", "t", f"k{number}", {"n": number})])
    storage.close()  # waits for a compaction under way
    # Folded on a background thread whenever it outgrows both the minimum and the snapshot.
    assert len(json.loads(path.read_text())["t"]) >= 10  # folded at least once
    assert len(storage.journal_path.read_bytes().splitlines()) < 50
    assert _reopen(path)["t"] == {f"k{n}": {"n": n} for n in range(50)}
    assert not list(tmp_path.glob(".*.tmp"))


def test_writes_during_a_compaction_are_kept(tmp_path):
    """The journal keeps what was appended while the snapshot was being written."""
    path = tmp_path / "db.json"
    storage = JournaledJSONStorage(path)
    storage.apply([("put", "t", "a", {"n": 1})])
    original = storage._write_snapshot

    def slow_snapshot(data, folded, previous):
        storage.apply([("put", "t", "during", {"n": 2})])  # a write between the copy and the swap
        original(data, folded, previous)

    storage._write_snapshot = slow_snapshot
    storage.compact()
    storage._write_snapshot = original
    storage.close()
    assert "during" not in json.loads(path.read_text())["t"]  # not in the copy ...
    assert _reopen(path)["t"] == {"a": {"n": 1}, "during": {"n": 2}}  # ... but kept by the journal


def test_a_crash_between_snapshot_and_journal_replacement_is_finished_on_the_next_open(tmp_path):
    """The new snapshot made it to disk, the journal it folded was not yet replaced (a crash, or a
    full disk): the snapshot names that journal, so the next open replays only what it did not fold."""
    path = tmp_path / "db.json"
    storage = JournaledJSONStorage(path)
    storage.apply([("put", "t", "a", {"n": 1}), ("put", "t", "b", {"n": 2})])
    storage.apply([("del", "t", "a"), ("put", "t", "b", {"n": 3})])
    original = storage._write_snapshot

    def then_an_append(data, folded, previous):
        storage.apply([("put", "t", "c", {"n": 4})])  # appended while the copy is written: not folded
        original(data, folded, previous)

    def crash(tail, generation):
        raise OSError(28, "No space left on device")

    storage._write_snapshot = then_an_append
    storage._replace_journal = crash
    storage.compact()
    del storage._replace_journal
    storage._write_snapshot = original
    storage.close()
    snapshot = json.loads(path.read_text())
    assert snapshot["t"] == {"b": {"n": 3}}  # the new snapshot ...
    assert snapshot["_seal"]["snapshot"]["previous"]["folded"] > 0
    assert len(storage.journal_path.read_bytes().splitlines()) == 4  # ... beside the old journal: header + 3 lines
    assert _reopen(path) == {"t": {"b": {"n": 3}, "c": {"n": 4}}}
    assert len(storage.journal_path.read_bytes().splitlines()) == 2  # finished: header + the line not folded
    assert _reopen(path) == {"t": {"b": {"n": 3}, "c": {"n": 4}}}
