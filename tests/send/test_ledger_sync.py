"""Bringing the ledger in line with today's lists, on SQLite and PostgreSQL: people added
later get pending rows, suppressed and removed addresses are never sent (not even with
--retry-uncertain), and a reader whose QI level changed follows to the new segment."""

from __future__ import annotations

import sqlalchemy as sa
from support.ledger_audience import CID, audience, person, states

from equip_mailer.send.ledger import Ledger
from equip_mailer.send.ledger_sync import SyncResult
from equip_mailer.store import ledger


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


def test_the_suppression_file_suppresses_while_it_names_someone_uncertain_ones_too(engine):
    """A name in the campaign's suppression file is ``suppressed`` (status says why they
    were left out, not "off the lists"), and only while the file names it: taken out of
    the file, a pending row is pending again and an uncertain one uncertain again."""
    led = Ledger(engine, CID)
    led.sync(audience(4))
    b, _ = led.claim("getting-started", [3, 4], "sendgrid")
    led.finish(b, "uncertain", error="timed out")
    named = {"person1@example.org", "person3@example.org"}
    left = {"getting-started": [person(2), person(4)]}  # as load_audience leaves them out
    assert led.sync(left, in_file=named).suppressed == 2
    assert led.states_by_id() == {1: "suppressed", 2: "pending", 3: "suppressed", 4: "uncertain"}
    assert led.sync(left, in_file=named) == SyncResult()  # a second run changes nothing
    assert led.sync(audience(4)).restored == 2
    assert led.states_by_id() == {1: "pending", 2: "pending", 3: "uncertain", 4: "uncertain"}
    # the store's suppressions stay for good, whatever the file says later
    led.sync(left, suppressed={"person1@example.org"}, in_file={"person3@example.org"})
    led.sync(audience(4))
    assert led.states_by_id()[1] == "suppressed" and led.states_by_id()[3] == "uncertain"
