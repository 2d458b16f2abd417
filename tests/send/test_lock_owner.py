"""Telling a live lock from a dead one: this process, an exited one, a reused pid, and a
lock from another host judged by its heartbeat."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys

from equip_mailer.send.lock_owner import STALE_FOREIGN_LOCK, lock_owner_id, owner_alive
from equip_mailer.store import utcnow


def test_this_process_is_alive_and_one_that_exited_is_not():
    me = lock_owner_id()
    assert me.startswith(f"{socket.gethostname()}:{os.getpid()}:")
    assert owner_alive(me, None)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    assert not owner_alive(f"{socket.gethostname()}:{dead}:1", None)
    assert not owner_alive(f"{socket.gethostname()}:not-a-pid:", None)


def test_a_reused_pid_is_not_the_run_that_held_the_lock():
    host, pid, start = lock_owner_id().split(":")
    assert start, "the start time is read from /proc on Linux"
    assert not owner_alive(f"{host}:{pid}:{int(start) + 1}", None)


def test_a_lock_from_another_host_lives_while_its_heartbeat_is_recent():
    other = "otherhost-not-this-one:1:1"
    now = utcnow()
    assert owner_alive(other, now - dt.timedelta(minutes=5))
    assert not owner_alive(other, now - STALE_FOREIGN_LOCK - dt.timedelta(seconds=1))
    assert not owner_alive(other, None)
