"""Crash and resume through the outbox (the default way out): kill -9 `equip-mailer send`
while it writes its files, at random moments, then run it again with --retry-uncertain.

Files are created under their own name and written in one call (backends/outbox_files.py),
so a kill can land between the two: here each run of six kills typically left two to five
empty files (a kill in the middle of the one write is rarer; test_dispatch cuts a file
short on purpose). Such a file is no proof of sending (send/activity.py) and the retry
writes it again. In the end every reader has exactly one file, every file is whole and is
the reader's own, and nothing else is left in the folder.
"""

from __future__ import annotations

import email
import email.policy
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.link_secrets import LINK_SECRET
from support.send_project import demo_copy

from equip_mailer.store import ledger, open_store

CID = "2019-04-equip-training"
READERS = 3000  # synthetic practice staff, beside the demo's citizens
KILLS = 6


@pytest.fixture
def project(tmp_path):
    return demo_copy(tmp_path, staff=READERS, seed=25)


def start(project: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    spec = project / "campaigns" / f"{CID}.yaml"
    args = ["send", str(spec), "--allow-past", "--yes", "--backend", "outbox", *extra]
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("equip-mailer")), *args],
        cwd=project,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def files_in(folder: Path) -> int:
    try:
        return sum(1 for e in os.scandir(folder) if e.name.endswith(".eml"))
    except FileNotFoundError:
        return 0


def is_whole(data: bytes) -> bool:
    """Ends with the closing delimiter of its multipart body."""
    msg = email.message_from_bytes(data, policy=email.policy.default)
    boundary = msg.get_boundary()
    return bool(boundary) and data.rstrip(b"\r\n").endswith(f"--{boundary}--".encode())


def test_kill_minus_nine_mid_files_then_retry_leaves_one_whole_file_per_reader(project):
    seed = int(os.environ.get("EQUIP_CRASH_SEED") or time.time())
    rng = random.Random(seed)  # EQUIP_CRASH_SEED=<seed> repeats a run's kill points
    db = project / "crash.db"
    outbox = project / "outbox"
    folder = outbox / CID
    env = {
        "EQUIP_DATABASE_URL": f"sqlite:///{db}",
        "EQUIP_LINK_SECRET": LINK_SECRET,
        "EQUIP_OUTBOX": str(outbox),
        "EQUIP_BATCH_SIZE": "100",
        "XDG_CONFIG_HOME": str(project / "cfg"),
    }
    kills = 0
    for _ in range(KILLS):
        before = files_in(folder)
        proc = start(project, env)
        target = before + rng.randint(1, 400)
        deadline = time.monotonic() + 60
        while files_in(folder) < target and proc.poll() is None:
            assert time.monotonic() < deadline, "the send wrote nothing for a minute"
            time.sleep(0.001)
        time.sleep(rng.uniform(0, 0.01))
        proc.kill()  # SIGKILL
        code = proc.wait(timeout=60)
        if code == -signal.SIGKILL:
            kills += 1
        else:
            assert code in (0, 3), proc.stderr.read() if proc.stderr else code
            break
    assert kills >= 3, f"only {kills} runs were killed mid-send (seed {seed})"

    retry = start(project, env, "--retry-uncertain", "--now")
    _, err = retry.communicate(timeout=120)
    assert retry.returncode == 0, err
    again = start(project, env)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err

    engine = open_store(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(ledger.c.id, ledger.c.state)).all())
    engine.dispose()
    assert set(rows.values()) == {"sent"}, f"seed {seed}"
    names = sorted(e.name for e in os.scandir(folder) if e.is_file())
    assert names == [f"{i:06d}.eml" for i in sorted(rows)], "one file per reader, nothing else"
    for name in names:
        data = (folder / name).read_bytes()
        assert is_whole(data), f"{name} is cut short (seed {seed})"
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg["X-Equip-Recipient"] == str(int(name[:6]))
