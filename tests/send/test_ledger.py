"""The ledger on SQLite and PostgreSQL: sync, lock, claim/finish, recovery, and the send loop."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from equip_mailer.compose.audience import Recipient
from equip_mailer.compose.spec import load_campaign
from equip_mailer.config import Settings
from equip_mailer.errors import DeliveryError, RenderError
from equip_mailer.send.delivery import BatchResult, MemoryBackend
from equip_mailer.send.dispatch import SendOptions, register_campaign, run_send
from equip_mailer.send.ledger import Ledger
from equip_mailer.store import batches, campaigns, ensure_campaign, ledger, open_store

CID = "2019-04-equip-training"
LEVEL = {"getting-started": "none", "ready-for-action": "basics", "project-leads": "project"}


def person(i: int, segment: str = "getting-started") -> Recipient:
    return Recipient(
        email=f"Person{i}@Example.org",
        first_name=f"P{i}",
        last_name="X",
        practice="Practice",
        role="GP",
        qi_level=LEVEL[segment],
        source=f"t.csv:{i}",
    )


def audience(
    n: int, segment: str = "getting-started", start: int = 1
) -> dict[str, list[Recipient]]:
    return {segment: [person(i, segment) for i in range(start, start + n)]}


@pytest.fixture
def engine(db_url):
    eng = open_store(db_url)
    with eng.begin() as conn:
        ensure_campaign(conn, CID, "subject")
    yield eng
    eng.dispose()


def states(eng) -> dict[str, int]:
    return Ledger(eng, CID).counts()


def test_sync_adds_new_recipients_once_and_suppresses(engine):
    led = Ledger(engine, CID)
    assert led.sync(audience(5)).added == 5
    assert led.sync(audience(7)).added == 2  # added to the list later
    assert states(engine) == {"pending": 7}
    r = led.sync(audience(7), suppressed={"person3@example.org"})
    assert r.suppressed == 1
    assert states(engine) == {"pending": 6, "suppressed": 1}
    # suppressed stays suppressed even if the address is still on a list
    led.sync(audience(7))
    assert states(engine)["suppressed"] == 1


def test_sync_parks_removed_rows_and_restores_them(engine):
    led = Ledger(engine, CID)
    led.sync(audience(4))
    assert led.sync(audience(3)).removed == 1
    assert states(engine) == {"pending": 3, "cancelled": 1}
    assert led.sync(audience(4)).restored == 1
    assert states(engine) == {"pending": 4}


def test_sync_moves_pending_rows_to_a_new_segment(engine):
    led = Ledger(engine, CID)
    led.sync(audience(2))
    assert (
        led.sync(
            {"getting-started": [person(1)], "ready-for-action": [person(2, "ready-for-action")]}
        ).moved
        == 1
    )
    assert led.sendable() == {"getting-started": 1, "ready-for-action": 1}


def test_claim_is_committed_before_the_request_and_finish_records(engine):
    led = Ledger(engine, CID)
    led.sync(audience(5))
    rows = led.next_rows("getting-started", 3)
    assert [r.email for r in rows] == [
        "Person1@Example.org",
        "Person2@Example.org",
        "Person3@Example.org",
    ]
    batch_id, send_id = led.claim("getting-started", [r.id for r in rows], "memory")
    # a separate connection (another process) sees the claim at once
    other = sa.create_engine(engine.url)
    with other.connect() as conn:
        seen = dict(
            conn.execute(sa.select(ledger.c.state, sa.func.count()).group_by(ledger.c.state)).all()
        )
    other.dispose()
    assert seen == {"in_flight": 3, "pending": 2}
    led.finish(batch_id, "sent", status=202, message_id="m1")
    assert states(engine) == {"sent": 3, "pending": 2}
    with engine.connect() as conn:
        b = conn.execute(sa.select(batches).where(batches.c.id == batch_id)).one()
    assert (b.state, b.size, b.message_id, b.send_id) == ("sent", 3, "m1", send_id)
    # the next rows are only the unsent ones
    assert [r.id for r in led.next_rows("getting-started", 10)] == [r.id + 3 for r in rows[:2]]


def test_failed_rows_are_sent_again_uncertain_only_on_request(engine):
    led = Ledger(engine, CID)
    led.sync(audience(4))
    rows = led.next_rows("getting-started", 2)
    b1, _ = led.claim("getting-started", [r.id for r in rows], "memory")
    led.finish(b1, "failed", status=400, error="refused")
    rows = led.next_rows("getting-started", 2)
    assert [r.id for r in rows] == [1, 2]  # failed: definitely not accepted
    b2, _ = led.claim("getting-started", [1, 2], "memory")
    led.finish(b2, "uncertain", error="timed out")
    assert led.sendable() == {"getting-started": 2}
    assert led.sendable(("pending", "failed", "uncertain")) == {"getting-started": 4}
    assert [(p.state, p.still) for p in led.problem_batches()] == [("failed", 0), ("uncertain", 2)]


def test_uncertain_rows_are_suppressed_or_parked_so_retry_uncertain_skips_them(engine):
    led = Ledger(engine, CID)
    led.sync(audience(4))
    b, _ = led.claim("getting-started", [1, 2, 3, 4], "sendgrid")
    led.finish(b, "uncertain", error="timed out")
    # person1 unsubscribes, person2 leaves every list; 3 and 4 stay
    r = led.sync({"getting-started": [person(3), person(4)]}, suppressed={"person1@example.org"})
    assert (r.suppressed, r.removed) == (1, 1)
    assert led.states_by_id() == {1: "suppressed", 2: "cancelled", 3: "uncertain", 4: "uncertain"}
    retry = ("pending", "failed", "uncertain")
    assert [x.email for x in led.next_rows("getting-started", 10, retry)] == [
        "Person3@Example.org",
        "Person4@Example.org",
    ]
    # person2 comes back: uncertain again (never plain pending: it may have been delivered)
    assert led.sync(audience(4), suppressed={"person1@example.org"}).restored == 1
    assert led.states_by_id() == {1: "suppressed", 2: "uncertain", 3: "uncertain", 4: "uncertain"}
    assert led.sendable() == {}
    with engine.connect() as conn:  # the batch history is kept
        assert {bid for (bid,) in conn.execute(sa.select(ledger.c.batch_id))} == {b}


def test_recover_marks_in_flight_batches_uncertain(engine):
    led = Ledger(engine, CID)
    led.sync(audience(3))
    led.claim("getting-started", [1, 2], "sendgrid")  # ...and the process died here
    assert Ledger(engine, CID).recover() == 1
    assert states(engine) == {"uncertain": 2, "pending": 1}
    assert led.problem_batches()[0].state == "uncertain"
    assert Ledger(engine, CID).recover() == 0


def test_lock_refuses_a_second_run_and_takes_over_a_dead_ones(engine):
    first, second = Ledger(engine, CID), Ledger(engine, CID)
    second.owner = "otherhost-not-this-one:1:1"
    with first.lock():
        second_local = Ledger(engine, CID)
        second_local.owner = first.owner + "x"  # same host, another live owner id
        with pytest.raises(DeliveryError, match="another send of campaign"):
            # the lock row names *this* (live) process, so another claimant must wait
            second_local.acquire()
    # a lock left by a process that has exited is taken over
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    import socket

    with engine.begin() as conn:
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == CID)
            .values(lock_owner=f"{socket.gethostname()}:{dead}:1", lock_at=sa.func.now())
        )
    with first.lock():
        with engine.connect() as conn:
            assert conn.execute(sa.select(campaigns.c.lock_owner)).scalar() == first.owner
    with engine.connect() as conn:
        assert conn.execute(sa.select(campaigns.c.lock_owner)).scalar() is None


def test_a_run_whose_lock_was_taken_over_stops_before_sending_more(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    mem = MemoryBackend()
    with led.lock():
        led.sync(audience(4))
        led.refresh()  # still ours: fine
        # this run went quiet past the stale timeout and a run on another host took over
        with eng.begin() as conn:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == demo.id)
                .values(lock_owner="otherhost-not-this-one:1:1")
            )
        with pytest.raises(DeliveryError, match="another run took over the campaign's lock"):
            led.refresh()
        with pytest.raises(DeliveryError, match="nothing more was sent by this one"):
            run_send(demo, eng, led, mem, settings(db_url), SendOptions(batch_size=2))
    assert mem.batches == [] and led.counts() == {"pending": 4}
    with eng.connect() as conn:  # the other run's lock is left alone
        assert (
            conn.execute(
                sa.select(campaigns.c.lock_owner).where(campaigns.c.id == demo.id)
            ).scalar()
            == "otherhost-not-this-one:1:1"
        )
        assert conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar() == 0
    eng.dispose()


# --- the send loop over the real renderer ------------------------------------------------------


@pytest.fixture
def demo(demo_path):
    return load_campaign(demo_path, allow_past=True)


def settings(db_url) -> Settings:
    return Settings(database_url=db_url, link_secret="s" * 32, public_url="https://t.example")


def test_run_send_sends_each_recipient_once_across_reruns(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync({**audience(5), **audience(3, "project-leads", 100)})
    mem = MemoryBackend()
    report = run_send(demo, eng, led, mem, settings(db_url), SendOptions(batch_size=2))
    assert (report.sent, report.batches, report.stopped) == (8, 5, None)
    assert [len(b.addressees) for b in mem.batches] == [2, 2, 1, 2, 1]
    assert {b.content.segment for b in mem.batches} == {"getting-started", "project-leads"}
    again = run_send(demo, eng, led, mem, settings(db_url), SendOptions(batch_size=2))
    assert again.sent == 0 and len(mem.batches) == 5
    addresses = [a.email for b in mem.batches for a in b.addressees]
    assert len(addresses) == len(set(addresses)) == 8
    values = mem.batches[0].addressees[0].values
    assert values["-eqt_first_name-"] == "P1"
    assert all("@" not in v for k, v in values.items() if "link" in k or "unsub" in k)
    eng.dispose()


def test_limit_sends_only_that_many(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(audience(10))
    report = run_send(
        demo, eng, led, MemoryBackend(), settings(db_url), SendOptions(limit=4, batch_size=3)
    )
    assert report.sent == 4 and led.counts() == {"sent": 4, "pending": 6}
    eng.dispose()


class Flaky:
    """A backend that answers every batch the same way (the interface's contract, nothing else)."""

    name = "flaky"

    def __init__(self, result: BatchResult):
        self.result, self.calls = result, 0

    def send_batch(self, batch):
        self.calls += 1
        return self.result


def test_error_budget_pauses_with_a_resume_hint(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(audience(10))
    flaky = Flaky(BatchResult("uncertain", error="no answer (timed out)"))
    report = run_send(
        demo, eng, led, flaky, settings(db_url), SendOptions(batch_size=2, max_bad_batches=2)
    )
    assert flaky.calls == 2 and report.uncertain == 4
    assert "paused after 2 batches" in report.stopped
    assert "equip-mailer send" in report.hint and "--retry-uncertain" in report.hint
    assert led.counts() == {"uncertain": 4, "pending": 6}
    eng.dispose()


def test_a_stop_ends_the_run_at_once(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(audience(10))
    flaky = Flaky(BatchResult("failed", status=401, stop=True, error="bad key", hint="fix key"))
    report = run_send(demo, eng, led, flaky, settings(db_url), SendOptions(batch_size=2))
    assert flaky.calls == 1 and report.stopped == "bad key" and report.hint == "fix key"
    assert led.counts() == {"failed": 2, "pending": 8}
    eng.dispose()


class Exploding:
    """A backend whose second request raises something unexpected (a bug, not an answer)."""

    name = "exploding"

    def __init__(self):
        self.calls = 0

    def send_batch(self, batch):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return BatchResult("sent")


def test_an_unexpected_error_mid_request_leaves_that_batch_uncertain(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(audience(10))
    with pytest.raises(RuntimeError):
        run_send(demo, eng, led, Exploding(), settings(db_url), SendOptions(batch_size=3))
    assert led.counts() == {"sent": 3, "uncertain": 3, "pending": 4}
    eng.dispose()


class Slow:
    """A backend whose answer (202) takes a while: the next batch is built meanwhile."""

    name = "slow"

    def __init__(self, seconds: float = 0.4):
        self.seconds, self.batches = seconds, []

    def send_batch(self, batch):
        time.sleep(self.seconds)
        self.batches.append(batch)
        return BatchResult("sent", status=202)


def test_an_error_building_the_next_batch_still_records_the_answer_in_flight(db_url, demo):
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    people = audience(6)["getting-started"]
    # the 4th reader's practice is too long for SendGrid: building batch 2 fails while
    # batch 1 is still being sent
    people[3] = Recipient(
        email=people[3].email,
        first_name="P4",
        last_name="X",
        practice="x" * 12_000,
        role="GP",
        qi_level="none",
        source="t.csv:4",
    )
    led.sync({"getting-started": people})
    slow = Slow()
    with pytest.raises(RenderError, match="SendGrid allows"):
        run_send(demo, eng, led, slow, settings(db_url), SendOptions(batch_size=3))
    # batch 1 was accepted: recorded as sent (not uncertain), and nothing else was sent
    assert led.counts() == {"sent": 3, "pending": 3}
    assert [len(b.addressees) for b in slow.batches] == [3]
    eng.dispose()
