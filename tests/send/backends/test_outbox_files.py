"""outbox_files: every file lands whole, by several writers, new or over an old copy."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading

import pytest

from equip_mailer.send.backends import outbox_files
from equip_mailer.send.backends.outbox_files import FileLander


def _items(n: int, tag: bytes = b"") -> list[tuple[str, bytes]]:
    return [(f"{i:06d}.eml", tag + f"message {i}\r\n".encode() * (i % 50 + 1)) for i in range(n)]


@pytest.mark.parametrize("writers", [1, 2, 4])
def test_every_file_lands_whole_and_nothing_else_is_left(tmp_path, writers):
    lander = FileLander(str(tmp_path), writers=writers)
    items = _items(101)
    lander.land_all(items, lambda item: item)
    lander.close()
    assert sorted(os.listdir(tmp_path)) == [name for name, _ in items]
    for name, data in items:
        assert (tmp_path / name).read_bytes() == data


def test_a_resent_batch_replaces_its_files_instead_of_adding_copies(tmp_path):
    lander = FileLander(str(tmp_path))
    lander.land_all(_items(20, b"first "), lambda item: item)
    lander.land_all(_items(20, b"second "), lambda item: item)
    lander.close()
    assert len(os.listdir(tmp_path)) == 20
    assert (tmp_path / "000007.eml").read_bytes().startswith(b"second message 7")


def test_an_error_while_making_one_file_is_raised_and_the_others_stay_whole(tmp_path):
    lander = FileLander(str(tmp_path), writers=2)

    def make(item: tuple[str, bytes]) -> tuple[str, bytes]:
        if item[0] == "000010.eml":
            raise ValueError("cannot build this one")
        return item

    with pytest.raises(ValueError, match="cannot build this one"):
        lander.land_all(_items(40), make)
    lander.close()
    landed = sorted(os.listdir(tmp_path))
    assert "000010.eml" not in landed
    assert not [n for n in landed if not n.endswith(".eml")]  # no temporary names
    for name in landed:
        i = int(name[:6])
        assert (tmp_path / name).read_bytes() == f"message {i}\r\n".encode() * (i % 50 + 1)


@pytest.mark.parametrize("resent", [False, True])
def test_a_disk_that_fills_mid_file_leaves_no_part_of_it(tmp_path, monkeypatch, resent):
    """ENOSPC half way through a file: the error is raised and the part written is gone; a
    file being written again keeps its old whole copy."""
    lander = FileLander(str(tmp_path), writers=1)
    if resent:
        lander.land_all([("000001.eml", b"old whole copy\r\n")], lambda item: item)
    real_write = os.write

    def fill_up(fd: int, data) -> int:
        if len(data) > 100:  # the first half goes in, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(outbox_files.os, "write", fill_up)
    with pytest.raises(OSError, match="No space left"):
        lander.land_all([("000001.eml", b"new copy\r\n" * 100)], lambda item: item)
    monkeypatch.undo()
    lander.close()
    if resent:
        assert os.listdir(tmp_path) == ["000001.eml"]
        assert (tmp_path / "000001.eml").read_bytes() == b"old whole copy\r\n"
    else:
        assert os.listdir(tmp_path) == []


def test_a_folder_that_cannot_be_written_raises_oserror(tmp_path):
    missing = tmp_path / "gone"
    with pytest.raises(OSError):
        FileLander(str(missing)).land_all(_items(3), lambda item: item)


def test_one_name_given_to_both_writers_lands_one_whole_copy(tmp_path):
    """A test send names every copy test/<segment>.eml: when one batch holds several, the
    writers race for the name, and the folder ends with one whole copy and no temp file."""
    lander = FileLander(str(tmp_path), writers=2)
    copies = [("test.eml", f"copy {i}\r\n".encode() * 2000) for i in range(40)]
    lander.land_all(copies, lambda item: item)
    lander.close()
    assert os.listdir(tmp_path) == ["test.eml"]
    assert (tmp_path / "test.eml").read_bytes() in {data for _, data in copies}


def test_close_during_a_batch_waits_for_its_files_then_stops_the_writers(tmp_path, monkeypatch):
    """After Ctrl+C the send thread may still be starting a batch when the caller closes:
    close waits for that batch's files (all whole) and only then stops the writer threads,
    rather than finding no writers yet and leaving the ones the batch then starts."""
    started, release = threading.Event(), threading.Event()

    class SlowToStart(outbox_files.ThreadPoolExecutor):
        def __init__(self, *args, **kwargs):
            started.set()
            release.wait(5)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(outbox_files, "ThreadPoolExecutor", SlowToStart)
    lander = FileLander(str(tmp_path), writers=2)
    items = _items(10)
    sending = threading.Thread(target=lander.land_all, args=(items, lambda item: item))
    sending.start()
    assert started.wait(5)
    closing = threading.Thread(target=lander.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive(), "close returned while the batch was still being written"
    release.set()
    sending.join(5)
    closing.join(5)
    assert not closing.is_alive()
    assert sorted(os.listdir(tmp_path)) == [name for name, _ in items]
    assert not [t for t in threading.enumerate() if t.name.startswith("equip-outbox")]


def test_temporary_files_a_killed_run_left_are_swept_and_a_live_ones_kept(tmp_path):
    """A run killed while replacing a file (a re-sent batch) leaves its temporary file; the
    next batch into the folder removes it, but not one of a process still running."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".000001.eml.{dead.pid}.140000.tmp"
    live = tmp_path / f".000002.eml.{os.getppid()}.140000.tmp"
    mine = tmp_path / f".000003.eml.{os.getpid()}.140000.tmp"
    for path in (stale, live, mine):
        path.write_bytes(b"From: half a message")
    (tmp_path / ".hidden.tmp").write_bytes(b"not ours")
    lander = FileLander(str(tmp_path))
    lander.land_all(_items(3), lambda item: item)
    lander.close()
    assert not stale.exists()
    assert live.exists() and mine.exists() and (tmp_path / ".hidden.tmp").exists()
    assert sorted(p.name for p in tmp_path.glob("*.eml")) == [n for n, _ in _items(3)]


def test_an_error_only_close_reports_leaves_no_part_of_the_file(tmp_path, monkeypatch):
    """Network file systems may report a failed write only when the file is closed."""
    lander = FileLander(str(tmp_path), writers=1)
    real_close, calls = os.close, []

    def close_fails_once(fd: int) -> None:
        real_close(fd)
        calls.append(fd)
        if len(calls) == 1:  # the file's own close; the folder's comes after
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(outbox_files.os, "close", close_fails_once)
    with pytest.raises(OSError, match="Input/output error"):
        lander.land_all([("000001.eml", b"message\r\n" * 100)], lambda item: item)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_names_that_only_look_like_temporary_files_never_stop_a_batch(tmp_path):
    """A pid too large for the system, or digits that are not ASCII: left alone or swept,
    but the batch is written."""
    odd = [".x.99999999999999999999.1.tmp", ".x.\u00b2.1.tmp", ".x.9999999999.1.tmp"]
    for name in odd:
        (tmp_path / name).write_bytes(b"?")
    lander = FileLander(str(tmp_path))
    lander.land_all(_items(2), lambda item: item)
    lander.close()
    left = set(os.listdir(tmp_path))
    assert {n for n, _ in _items(2)} <= left
    assert odd[0] in left and odd[1] in left  # not a name the lander makes: kept
    assert odd[2] not in left  # no such process can exist: swept
