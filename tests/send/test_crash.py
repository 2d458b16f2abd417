"""Crash and resume (issue 3.7 / 7.1): kill -9 `equip-mailer send` at random moments while it
sends through the local SendGrid-compatible server, run it again, and count.

Every recipient must have received exactly one copy, except recipients of batches the
ledger reports *uncertain* (in flight when the process died), who received 0 or 1.
Nobody may be left pending, and nobody may get two copies.

Normal suite: >= 30 killed runs; EQUIP_LONG_TESTS=1: 100. The sends run as separate
processes, forked from a helper that has already imported the send path (a fresh
interpreter costs over a second of imports); two cycles use the installed script itself.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.fake_sendgrid import start_server
from support.link_secrets import LINK_SECRET

from equip_mailer.store import ledger, open_store

ROOT = Path(__file__).resolve().parents[2]
CID = "2019-04-equip-training"
KEY = "SG.crash-test-key"
LONG = os.environ.get("EQUIP_LONG_TESTS") == "1"
KILLS_WANTED = 100 if LONG else 30
KILLS_PER_CYCLE = 4


class Runner:
    """Talks to tests/support/fork_runner.py."""

    def __init__(self, cwd: Path):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "support" / "fork_runner.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def _ask(self, msg: dict) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def start(self, args: list[str], env: dict[str, str], log: Path) -> int:
        return self._ask({"run": args, "env": env, "log": str(log)})["pid"]

    def wait(self, pid: int) -> int:
        return self._ask({"wait": pid})["status"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


class Exec:
    """The installed `equip-mailer` script, started fresh (slower, same result)."""

    def __init__(self, cwd: Path):
        self.cwd, self.procs = cwd, {}

    def start(self, args: list[str], env: dict[str, str], log: Path) -> int:
        fh = log.open("a")
        p = subprocess.Popen(
            [str(Path(sys.executable).with_name("equip-mailer")), *args],
            cwd=self.cwd,
            env={**os.environ, **env},
            stdout=fh,
            stderr=fh,
        )
        self.procs[p.pid] = (p, fh)
        return p.pid

    def wait(self, pid: int) -> int:
        p, fh = self.procs.pop(pid)
        code = p.wait(timeout=120)
        fh.close()
        return code


@pytest.fixture(scope="module")
def crash_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("crash")
    for folder in ("campaigns", "lists", "templates"):
        shutil.copytree(ROOT / folder, root / folder)
    return root


def ledger_rows(db: Path) -> dict[int, tuple[str, str]]:
    engine = open_store(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = {
            r.id: (r.email_key, r.state)
            for r in conn.execute(sa.select(ledger.c.id, ledger.c.email_key, ledger.c.state))
        }
    engine.dispose()
    return rows


def test_kill_minus_nine_then_resume_loses_and_duplicates_nothing(crash_project, tmp_path):
    seed = int(os.environ.get("EQUIP_CRASH_SEED") or time.time())
    rng = random.Random(seed)
    url, server = start_server(KEY, delay=0.01)
    spec = str(crash_project / "campaigns" / f"{CID}.yaml")
    args = ["send", spec, "--allow-past", "--yes"]
    base_env = {
        "SENDGRID_API_KEY": KEY,
        "SENDGRID_API_HOST": url,
        "EQUIP_SENDGRID_TIMEOUT": "10",
        "EQUIP_LINK_SECRET": LINK_SECRET,
        "EQUIP_BATCH_SIZE": "8",
        "EQUIP_MAX_BAD_BATCHES": "1000",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    fork = Runner(crash_project)
    execs = Exec(crash_project)
    log = tmp_path / "sends.log"
    figures = Counter()
    started = time.monotonic()
    cycle = 0
    try:
        while figures["kills"] < KILLS_WANTED:
            cycle += 1
            runner = execs if cycle <= 2 else fork  # the real script, then fast forks
            db = tmp_path / f"cycle{cycle}.db"
            env = {**base_env, "EQUIP_DATABASE_URL": f"sqlite:///{db}"}
            server.clear()
            kills_here = 0
            while True:
                seen = server.requests
                pid = runner.start(args, env, log)
                figures["runs"] += 1
                if kills_here < KILLS_PER_CYCLE:
                    # Kill after a random number of requests (0 = maybe before any), plus a
                    # random slice of a request's time: mid-claim, mid-request, mid-record.
                    target = seen + rng.randint(0, 12)
                    deadline = time.monotonic() + 60
                    while server.requests < target and time.monotonic() < deadline:
                        time.sleep(0.002)
                    time.sleep(rng.uniform(0, 0.03))
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    status = runner.wait(pid)
                    if status == -signal.SIGKILL:
                        figures["kills"] += 1
                        kills_here += 1
                        continue
                    assert status == 0, f"send exited {status}; see {log}"
                    figures["finished_before_kill"] += 1
                    break
                status = runner.wait(pid)
                assert status == 0, f"the completing run exited {status}; see {log}"
                break
            # One more run must find nothing left to send.
            pid = runner.start(args, env, log)
            assert runner.wait(pid) == 0
            rows = ledger_rows(db)
            got = server.emails()
            states = Counter(state for _, state in rows.values())
            assert states.keys() <= {"sent", "uncertain"}, states
            uncertain_keys = {k for k, s in rows.values() if s == "uncertain"}
            sent_keys = {k for k, s in rows.values() if s == "sent"}
            duplicates = sum(1 for k, n in got.items() if n > 1)
            lost = sum(1 for k in sent_keys if got[k] != 1)
            strangers = set(got) - {k for k, _ in rows.values()}
            assert duplicates == 0, f"seed {seed}: {duplicates} recipients got two copies"
            assert lost == 0, f"seed {seed}: {lost} recipients marked sent have no copy"
            assert not strangers
            assert all(got[k] in (0, 1) for k in uncertain_keys)
            figures["recipients"] += len(rows)
            figures["uncertain_recipients"] += len(uncertain_keys)
            figures["uncertain_delivered"] += sum(got[k] for k in uncertain_keys)
            figures["cycles"] += 1
            figures["duplicates"] += duplicates
            figures["lost"] += lost
            with open_store(f"sqlite:///{db}").connect() as conn:
                figures["uncertain_batches"] += conn.execute(
                    sa.text("select count(*) from batches where state = 'uncertain'")
                ).scalar()
    finally:
        fork.close()
        server.stop()
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test (seed {seed}): {figures['cycles']} cycles, {figures['runs']} send runs, "
        f"{figures['kills']} killed with SIGKILL ({figures['finished_before_kill']} finished "
        f"before their kill), {figures['recipients']} recipient-rows checked; uncertain batches "
        f"{figures['uncertain_batches']} ({figures['uncertain_recipients']} recipients, "
        f"{figures['uncertain_delivered']} of them delivered before the kill); duplicates "
        f"{figures['duplicates']}, lost {figures['lost']}; {elapsed:.1f} s"
    )
    assert figures["kills"] >= KILLS_WANTED
    assert figures["duplicates"] == 0 and figures["lost"] == 0
