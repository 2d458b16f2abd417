"""Who holds a campaign's send lock, and whether that process is still alive.

A lock names its owner as ``host:pid:start`` (the process's start time, so a reused pid is
not mistaken for the run that died). On this host liveness is checked directly; a lock from
another host counts as alive while its heartbeat is recent. A lock whose owner is dead is
taken over by the next run (ledger.py).
"""

from __future__ import annotations

import datetime as dt
import os
import socket

from equip_mailer.store import utcnow

STALE_FOREIGN_LOCK = dt.timedelta(minutes=30)  # a lock from another host without heartbeat


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), so a reused pid is not mistaken."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):  # zombie or dead: not running
        return "dead"
    return fields[19] if len(fields) > 19 else ""


def lock_owner_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid) or ''}"


def owner_alive(owner: str, lock_at: dt.datetime | None) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return lock_at is not None and utcnow() - lock_at < STALE_FOREIGN_LOCK
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now_start = _proc_start(pid)
    if now_start is None:
        return _answers_signals(pid)
    if now_start == "dead":
        return False
    return not start or now_start == start


def pid_alive(pid: int) -> bool:
    """Whether a process of this host runs under this pid (a zombie does not)."""
    start = _proc_start(pid)
    return _answers_signals(pid) if start is None else start != "dead"


def _answers_signals(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # OverflowError: no pid is that large
        return False
    except PermissionError:
        return True  # someone else's process
    return True
