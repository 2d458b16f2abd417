"""Crash and resume (issue 3.7 / 7.1, issue 16): kill -9 `equip-mailer send` at random
moments while it sends through the local SendGrid-compatible server, run it again, and count.

Every recipient must have received exactly one copy, except recipients of batches the
ledger reports *uncertain* (in flight when the process died), who received 0 or 1.
Nobody may be left pending, and nobody may get two copies.

Meanwhile the stand-in posts signed webhook events for what it accepted to the real
tracking service (tests/support/event_feed.py): some late, some lost, many before the
ledger has marked their batch uncertain. Each cycle ends with ``--retry-uncertain`` (the
settling period set to 0 once the feed has drained): it must re-send only recipients with
no evidence, so duplicates are 0 for every recipient whose events arrived and nobody is
lost. Every other cycle the Email Activity API is "not on the account" (403), so the
events alone must do it; duplicates among recipients whose events were lost are counted
(they are what a retry without evidence can cost) and printed.

Normal suite: >= 30 killed runs; EQUIP_LONG_TESTS=1: 100. At the scale of the trial in
issue 16 (5 campaigns x 5,000 recipients, 64 kills): EQUIP_CRASH_RECIPIENTS=5000
EQUIP_CRASH_BATCH=100 EQUIP_CRASH_KILLS=64 EQUIP_CRASH_KILLS_PER_CYCLE=13 (the demo's
content, its staff list replaced by that many synthetic readers). The sends run as separate
processes, forked from a helper that has already imported the send path (a fresh
interpreter costs over a second of imports); two cycles use the installed script itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.event_feed import EventFeed
from support.fake_sendgrid import start_server
from support.link_secrets import LINK_SECRET
from support.send_project import demo_copy
from support.service import start_app
from support.tracking_data import SendGridKey, load_signer

from equip_mailer.config import Settings
from equip_mailer.store import ledger, open_store
from equip_mailer.track.app import create_app

ROOT = Path(__file__).resolve().parents[2]
CID = "2019-04-equip-training"
KEY = "SG.crash-test-key"
LONG = os.environ.get("EQUIP_LONG_TESTS") == "1"
KILLS_WANTED = int(os.environ.get("EQUIP_CRASH_KILLS") or (100 if LONG else 30))
KILLS_PER_CYCLE = int(os.environ.get("EQUIP_CRASH_KILLS_PER_CYCLE") or 4)
RECIPIENTS = int(os.environ.get("EQUIP_CRASH_RECIPIENTS") or 0)  # 0: the demo's lists
BATCH = os.environ.get("EQUIP_CRASH_BATCH") or "8"


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
    return demo_copy(tmp_path_factory.mktemp("crash"), staff=RECIPIENTS, seed=16)


def ledger_rows(db: Path) -> dict[int, tuple[str, str, str | None]]:
    engine = open_store(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = {
            r.id: (r.email_key, r.state, r.evidence)
            for r in conn.execute(
                sa.select(ledger.c.id, ledger.c.email_key, ledger.c.state, ledger.c.evidence)
            )
        }
    engine.dispose()
    return rows


def tail(log: Path, lines: int = 25) -> str:
    """The end of the sends' log, for a failure message (pytest removes old tmp folders)."""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def tracking_service(db: Path, public_key: str):
    """The real service (uvicorn) over this cycle's store, verifying the feed's signatures."""
    settings = Settings(
        database_url=f"sqlite:///{db}",
        link_secret=LINK_SECRET,
        public_url="https://equip.example.org",
        sendgrid_webhook_public_key=public_key,
    )
    return start_app(create_app(settings))


def test_kill_minus_nine_then_resume_loses_and_duplicates_nothing(crash_project, tmp_path):
    seed = int(os.environ.get("EQUIP_CRASH_SEED") or time.time())
    rng = random.Random(seed)
    url, server = start_server(KEY, delay=0.01)
    sg_key = SendGridKey(load_signer())
    feed = EventFeed(sg_key, random.Random(seed + 1), lost=0.1, late=1.0)
    server.on_accept = feed.accept
    spec = str(crash_project / "campaigns" / f"{CID}.yaml")
    args = ["send", spec, "--allow-past", "--yes"]
    base_env = {
        "SENDGRID_API_KEY": KEY,
        "SENDGRID_API_HOST": url,
        "EQUIP_SENDGRID_TIMEOUT": "10",
        "EQUIP_LINK_SECRET": LINK_SECRET,
        # a real send's pre-flight: public https links, the demo's sender domain named
        "EQUIP_PUBLIC_URL": "https://equip.example.org",
        "EQUIP_SENDER_DOMAIN": "example.org",
        "EQUIP_BATCH_SIZE": BATCH,
        "EQUIP_MAX_BAD_BATCHES": "1000",
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    fork = Runner(crash_project)
    execs = Exec(crash_project)
    log = tmp_path / "sends.log"
    figures = Counter()
    started = time.monotonic()
    cycle = 0
    stop_service = None
    try:
        while figures["kills"] < KILLS_WANTED:
            cycle += 1
            runner = execs if cycle <= 2 else fork  # the real script, then fast forks
            db = tmp_path / f"cycle{cycle}.db"
            env = {**base_env, "EQUIP_DATABASE_URL": f"sqlite:///{db}"}
            server.clear()
            feed.reset()
            server.activity = "403" if cycle % 2 else "200"  # odd cycles: events alone
            service_url, stop_service = tracking_service(db, sg_key.public)
            feed.aim(service_url)
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
                    assert status in (0, 3), f"send exited {status}: {tail(log)}"
                    figures["finished_before_kill"] += 1
                    break
                status = runner.wait(pid)
                assert status in (0, 3), f"the completing run exited {status}: {tail(log)}"
                break
            # One more run must find nothing left to send but the uncertain, and say so.
            pid = runner.start(args, env, log)
            code = runner.wait(pid)
            rows = ledger_rows(db)
            uncertain_before_events = sum(1 for _, s, _ in rows.values() if s == "uncertain")
            assert code == 3 or (code == 0 and not uncertain_before_events), code
            got = server.emails()
            assert not set(got) - {k for k, _, _ in rows.values()}  # no strangers
            # What the kills left: each recipient once, or uncertain with 0 or 1 copies.
            rows = ledger_rows(db)
            assert {s for _, s, _ in rows.values()} <= {"sent", "uncertain"}
            assert all(got[k] == 1 for k, s, _ in rows.values() if s == "sent")
            assert all(got[k] <= 1 for k, s, _ in rows.values() if s == "uncertain")
            # Every event SendGrid will ever send has come; then the retry.
            feed.drain()
            retry_env = {**env, "EQUIP_UNCERTAIN_SETTLE_MINUTES": "0"}
            pid = runner.start([*args, "--retry-uncertain"], retry_env, log)
            assert runner.wait(pid) == 0, f"--retry-uncertain failed: {tail(log)}"
            pid = runner.start(args, env, log)
            assert runner.wait(pid) == 0, f"a run after the retry found work: {tail(log)}"
            rows = ledger_rows(db)
            after = server.emails()
            states = Counter(s for _, s, _ in rows.values())
            assert set(states) == {"sent"}, states
            resent = sum(after.values()) - sum(got.values())  # copies the retry sent
            duplicates = {k for k, n in after.items() if n > 1}
            with_events = {k for k in duplicates if k not in feed.lost}
            lost = sum(1 for k, _, _ in rows.values() if after[k] == 0)
            assert not with_events, f"seed {seed}: {len(with_events)} had events and got two"
            assert lost == 0, f"seed {seed}: {lost} recipients marked sent have no copy"
            settled = Counter(ev.split(":", 1)[0] for _, _, ev in rows.values() if ev)
            figures["recipients"] += len(rows)
            figures["cycles"] += 1
            figures["uncertain_recipients"] += sum(settled.values()) + resent
            figures["uncertain_accepted"] += sum(settled.values()) + len(duplicates)
            figures["uncertain_left_by_kills"] += uncertain_before_events
            figures["settled_webhook"] += settled["webhook"]
            figures["settled_activity"] += settled["activity"]
            figures["resent"] += resent
            figures["duplicates"] += len(duplicates)
            figures["duplicates_events_lost"] += len(duplicates) - len(with_events)
            figures["lost"] += lost
            with open_store(f"sqlite:///{db}").connect() as conn:
                figures["uncertain_batches"] += conn.execute(
                    sa.text("select count(*) from batches where state = 'uncertain'")
                ).scalar()
            feed.aim(None)
            stop_service()
            stop_service = None
    finally:
        fork.close()
        feed.stop()
        server.stop()
        if stop_service is not None:
            stop_service()
    elapsed = time.monotonic() - started
    print(
        f"\ncrash test (seed {seed}): {figures['cycles']} cycles, {figures['runs']} send runs, "
        f"{figures['kills']} killed with SIGKILL ({figures['finished_before_kill']} finished "
        f"before their kill), {figures['recipients']} recipient-rows checked; uncertain batches "
        f"{figures['uncertain_batches']} with {figures['uncertain_recipients']} recipients "
        f"({figures['uncertain_accepted']} of them in fact accepted); still uncertain when the "
        f"completing run ended {figures['uncertain_left_by_kills']}; settled by webhook events "
        f"{figures['settled_webhook']}, by the Email Activity API {figures['settled_activity']}"
        f"; re-sent by --retry-uncertain {figures['resent']}; duplicates "
        f"{figures['duplicates']} (recipients whose events were lost, in cycles without the "
        f"Activity API: {figures['duplicates_events_lost']}), lost {figures['lost']}; "
        f"{elapsed:.1f} s"
    )
    assert figures["kills"] >= KILLS_WANTED
    assert figures["duplicates"] == figures["duplicates_events_lost"] and figures["lost"] == 0
