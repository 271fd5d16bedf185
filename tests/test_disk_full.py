"""A failed write is a failed write (TinyDB journal): a full disk or a failed fsync leaves nothing of
the refused change in memory, in a buffer or on disk; writes get a 503 in the error shape (the token
endpoint too) while reads go on; `/healthz` says degraded; writing resumes once the disk takes writes
again; after a restart every acknowledged write is there and no refused one is.

The full disk is injected (`os.write` and `os.fsync` refusing, after part of a line) in-process, and,
when the tests run as root, real: a small tmpfs mounted for the test, filled until it refuses.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from pokitdok_sandbox.app import create_app

from .conftest import bearer, get_token, make_settings
from .helpers import (
    APPOINTMENTS, PEG, PROVIDER, SCHEDULERS, SLOTS, assert_error, book, create_slot, data_of,
    fresh_window, get_one, search, slot_body,
)
from pokitdok_sandbox.testing import DEMO, SandboxServer


class FullDisk:
    """`os.write` that takes `room` more bytes, then refuses with ENOSPC (`os.fsync` with EIO when `fsync_fails`)."""

    def __init__(self, monkeypatch, room: int = 0):
        self.room = room
        self.full = True
        self.fsync_fails = False
        real_write, real_fsync = os.write, os.fsync

        def write(fd, data):
            if not self.full:
                return real_write(fd, data)
            if self.room <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            taken = real_write(fd, bytes(data[:self.room]))
            self.room -= taken
            return taken

        def fsync(fd):
            if self.fsync_fails:
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)

    def free(self) -> None:
        self.full = False


def _open(db: Path):
    return create_app(make_settings(db_path=str(db)))


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if not p.name.endswith(".lock")}


def _slot_at(client, headers, start) -> list[dict]:
    """The slots of the documented provider starting at `start` (the window of a slot this test asked for)."""
    found = search(client, headers, {"pd_provider_uuid": PROVIDER, "start_date": start.isoformat(),
                                     "end_date": (start + timedelta(hours=1)).isoformat()})
    return [slot for slot in found if slot["start_date"].startswith(start.isoformat())]


def test_a_full_disk_refuses_writes_with_503_keeps_nothing_of_them_and_recovers(tmp_path, monkeypatch):
    db = tmp_path / "d.json"
    app = _open(db)
    acknowledged, refused = [], []
    with app.test_client() as client:
        headers = bearer(get_token(client))
        acknowledged += [create_slot(client, headers) for _ in range(3)]
        to_book = create_slot(client, headers)
        acknowledged.append(to_book)
        before = _files(tmp_path)

        disk = FullDisk(monkeypatch, room=7)  # the next line gets 7 bytes in, then the disk is full
        start, end = fresh_window()
        answer = client.post(SLOTS, headers=headers, json=slot_body(start, end))
        error = assert_error(answer, 503, None)
        assert error["error"] == "store_unavailable" and "full" in error["message"], error
        assert answer.headers["retry-after"] == "1"
        refused.append(start)
        assert _files(tmp_path) == before  # the 7 bytes were cut back off the journal
        assert _slot_at(client, headers, start) == []  # and nothing of it is in memory

        # Further writes are refused the same way, a booking and a token included; reads go on.
        assert_error(book(client, headers, to_book["pd_appointment_uuid"], PEG), 503, None)
        assert get_one(client, headers, to_book["pd_appointment_uuid"])["booked"] is False
        refused_token = client.post("/oauth2/token", data={"grant_type": "client_credentials"}, auth=DEMO)
        assert assert_error(refused_token, 503, None)["error"] == "store_unavailable"
        assert client.get(SCHEDULERS, headers=headers).status_code == 200
        health = client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "degraded", health.text
        assert health.json()["writes"] == "refused"
        start2, end2 = fresh_window()
        assert_error(client.post(SLOTS, headers=headers, json=slot_body(start2, end2)), 503, None)
        refused.append(start2)
        assert _files(tmp_path) == before

        disk.free()  # space again: the health check's probe sees it, and writes resume
        assert client.get("/healthz").json()["status"] == "ok"
        acknowledged.append(create_slot(client, headers))
        assert data_of(book(client, headers, to_book["pd_appointment_uuid"], PEG))["booked"] is True
    app.sandbox.tenants.store.close()

    restarted = _open(db)
    try:
        with restarted.test_client() as client:
            headers = bearer(get_token(client))
            lost = [slot for slot in acknowledged
                    if client.get(f"{APPOINTMENTS}{slot['pd_appointment_uuid']}", headers=headers).status_code != 200]
            visible = [start for start in refused if _slot_at(client, headers, start)]
            assert get_one(client, headers, to_book["pd_appointment_uuid"])["booked"] is True
    finally:
        restarted.sandbox.tenants.store.close()
    assert (len(lost), len(visible)) == (0, 0), (lost, visible)


def test_a_failed_fsync_rolls_back_what_it_covered_and_refuses_writes_until_restart(tmp_path, monkeypatch):
    db = tmp_path / "d.json"
    app = _open(db)
    with app.test_client() as client:
        headers = bearer(get_token(client))
        kept = create_slot(client, headers)
        slot = create_slot(client, headers)
        disk = FullDisk(monkeypatch)
        disk.free()
        disk.fsync_fails = True  # the booking is written and applied, but its fsync fails
        answer = book(client, headers, slot["pd_appointment_uuid"], PEG)
        error = assert_error(answer, 503, None)
        assert "rolled back" in error["message"], error
        disk.fsync_fails = False
        assert get_one(client, headers, slot["pd_appointment_uuid"])["booked"] is False  # undone in memory
        bookings = search(client, headers, {"patient_uuid": PEG})
        assert slot["pd_appointment_uuid"] not in {s["pd_appointment_uuid"] for s in bookings}  # and in the indexes
        assert_error(client.post(SLOTS, headers=headers, json=slot_body()), 503, None)  # until a restart
        health = client.get("/healthz")
        assert health.json()["status"] == "degraded" and "Restart" in health.json()["message"], health.text
    app.sandbox.tenants.store.close()

    restarted = _open(db)
    try:
        with restarted.test_client() as client:
            headers = bearer(get_token(client))
            assert get_one(client, headers, kept["pd_appointment_uuid"]) == kept
            assert get_one(client, headers, slot["pd_appointment_uuid"])["booked"] is False
            assert data_of(book(client, headers, slot["pd_appointment_uuid"], PEG))["booked"] is True
    finally:
        restarted.sandbox.tenants.store.close()


# -- a real full disk --------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs mounted for the test (root only; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; the injected full disk above still runs")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the injected full disk still runs")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_disk_loses_no_acknowledged_write_and_keeps_no_refused_one(small_disk, monkeypatch):
    monkeypatch.setenv("POKITDOK_SANDBOX_COMPACT_MIN_BYTES", "30000")  # compactions are tried on the full disk too
    db = small_disk / "d.json"
    server = SandboxServer(db).start()
    acknowledged, refused, answers = [], [], {}
    try:
        http = httpx.Client(base_url=server.api, headers=bearer(server.token()), timeout=30)
        free = shutil.disk_usage(small_disk).free
        filler = small_disk / "filler"
        filler.write_bytes(b"\0" * max(free - 40_000, 0))  # leave about 40 kB
        start, _ = fresh_window()
        for number in range(600):
            begin = start + timedelta(hours=number)
            answer = http.post("/schedule/slots/", json=slot_body(begin, begin + timedelta(minutes=30)))
            answers[answer.status_code] = answers.get(answer.status_code, 0) + 1
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 200:
                acknowledged.append(data_of(answer))
            else:
                assert_error(answer, 503, None)
                refused.append(begin)
                if len(refused) == 5:
                    break
        assert len(refused) == 5 and acknowledged, answers
        health = httpx.get(server.origin + "/healthz").json()
        assert health["status"] == "degraded", health
        # A token's line is shorter than a slot's: it may still fit. Never a 500.
        token = httpx.post(server.origin + "/oauth2/token", data={"grant_type": "client_credentials"}, auth=DEMO)
        assert token.status_code in (200, 503), token.text

        filler.unlink()  # room again
        assert httpx.get(server.origin + "/healthz").json()["status"] == "ok"
        later = start + timedelta(days=100)
        answer = http.post("/schedule/slots/", json=slot_body(later, later + timedelta(minutes=30)))
        acknowledged.append(data_of(answer))
        http.close()
    finally:
        server.kill9()

    restarted = SandboxServer(db).start()
    try:
        http = httpx.Client(base_url=restarted.api, headers=bearer(restarted.token()), timeout=30)
        lost = [slot for slot in acknowledged
                if http.get(f"/schedule/appointments/{slot['pd_appointment_uuid']}").status_code != 200]
        visible = []
        for begin in refused:
            found = http.get("/schedule/appointments/", params={
                "pd_provider_uuid": PROVIDER, "start_date": begin.isoformat(),
                "end_date": (begin + timedelta(hours=1)).isoformat()}).json()["data"]
            visible += [slot for slot in found if slot["start_date"].startswith(begin.isoformat())]
        http.close()
    finally:
        restarted.stop()
    print(f"\nreal full disk: {len(acknowledged)} acknowledged, {len(lost)} lost; {len(refused)} refused, "
          f"{len(visible)} visible after a restart")
    assert (len(lost), len(visible)) == (0, 0), (lost, visible)
