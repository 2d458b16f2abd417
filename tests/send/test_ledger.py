"""The per-campaign Ledger on SQLite and PostgreSQL: each step committed on its own (claim
before the request, the answer after), recovery of a dead run's batches, and the lock that
keeps two runs apart."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa
from support.ledger_audience import CID, audience, states, store_settings

from equip_mailer.errors import DeliveryError
from equip_mailer.send.backends.memory import MemoryBackend
from equip_mailer.send.dispatch import SendOptions, run_send
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.prepare import register_campaign
from equip_mailer.store import batches, campaigns, ledger, open_store


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
            run_send(demo, eng, led, mem, store_settings(db_url), SendOptions(batch_size=2))
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
