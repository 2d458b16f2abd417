"""Uncertain recipients settled by SendGrid's own evidence: webhook events naming our send id
and ledger id, in any order, before or after the batch is marked uncertain, any number of
times; and a retry that claims only the recipients nothing has proved."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from support.ledger_audience import CID, audience, states

from equip_mailer.send.ledger import Ledger
from equip_mailer.send.ledger_evidence import Proof
from equip_mailer.send.ledger_rows import SettledMeanwhile
from equip_mailer.store import ensure_campaign, ledger, utcnow
from equip_mailer.track.webhook import store_events

KEY = b"k" * 32
SEG = "getting-started"


def event(send_id: str, ledger_id: int, name: str = "delivered", at: int = 1_700_000_000):
    """A SendGrid event as the webhook posts it: our custom_args flattened into it."""
    return {
        "email": f"person{ledger_id}@example.org",
        "timestamp": at,
        "event": name,
        "sg_message_id": f"msg{send_id[:6]}.filter0001",
        "campaign_id": CID,
        "segment": SEG,
        "send_id": send_id,
        "recipient": str(ledger_id),
        **({"reason": "Bounced Address"} if name == "dropped" else {}),
    }


def post(engine, *items) -> int:
    with engine.begin() as conn:
        return store_events(conn, list(items), ip_key=KEY).settled


def evidence(engine) -> dict[int, tuple[str, str | None]]:
    with engine.connect() as conn:
        return {
            r.id: (r.state, r.evidence)
            for r in conn.execute(sa.select(ledger.c.id, ledger.c.state, ledger.c.evidence))
        }


def uncertain_batch(engine, ids: list[int]) -> tuple[Ledger, int, str]:
    """A batch whose request got no answer (its run died): recovered as uncertain."""
    led = Ledger(engine, CID)
    led.sync(audience(5))
    batch_id, send_id = led.claim(SEG, ids, "sendgrid")
    return led, batch_id, send_id


def test_events_after_the_batch_is_uncertain_settle_its_recipients(engine):
    led, _, send_id = uncertain_batch(engine, [1, 2, 3, 4])
    assert led.recover() == 1
    assert post(engine, event(send_id, 1), event(send_id, 2, "processed")) == 2
    assert post(engine, event(send_id, 3, "dropped")) == 1
    assert states(engine) == {"sent": 2, "dropped": 1, "uncertain": 1, "pending": 1}
    found = evidence(engine)
    assert found[1] == ("sent", "webhook:delivered")
    assert found[2] == ("sent", "webhook:processed")
    assert found[3] == ("dropped", "webhook:dropped")
    # SendGrid retries whole posts: the same events again change nothing
    assert post(engine, event(send_id, 1), event(send_id, 3, "dropped")) == 0
    assert evidence(engine) == found
    [b] = led.uncertain_batches()
    assert (b.size, b.by_events, b.dropped, b.still) == (4, 3, 1, 1)


def test_events_that_came_while_the_batch_was_in_flight_settle_it_on_recovery(engine):
    led, _, send_id = uncertain_batch(engine, [1, 2, 3])
    # the events arrive while the row is in_flight: stored, nothing settled yet
    assert post(engine, event(send_id, 1), event(send_id, 2, "deferred")) == 0
    assert states(engine) == {"in_flight": 3, "pending": 2}
    led.recover()
    assert states(engine) == {"sent": 2, "uncertain": 1, "pending": 2}


def test_a_batch_that_timed_out_is_settled_by_events_already_stored(engine):
    led, batch_id, send_id = uncertain_batch(engine, [1, 2])
    post(engine, event(send_id, 2))
    led.finish(batch_id, "uncertain", error="no answer (timed out)")
    assert evidence(engine)[2] == ("sent", "webhook:delivered")
    assert evidence(engine)[1] == ("uncertain", None)


def test_order_does_not_matter_a_drop_gives_way_to_proof_of_acceptance(engine):
    led, _, send_id = uncertain_batch(engine, [1, 2])
    led.recover()
    post(engine, event(send_id, 1, "dropped", at=10))
    post(engine, event(send_id, 1, "processed", at=5))
    post(engine, event(send_id, 2, "processed", at=5))
    post(engine, event(send_id, 2, "dropped", at=10))
    assert evidence(engine)[1] == evidence(engine)[2] == ("sent", "webhook:processed")


def test_events_that_do_not_name_a_send_of_this_campaign_prove_nothing(engine):
    led, _, send_id = uncertain_batch(engine, [1, 2])
    led.recover()
    with engine.begin() as conn:
        ensure_campaign(conn, "other", "another campaign")
    stranger = {**event(send_id, 1), "campaign_id": "other"}
    made_up = event("f" * 32, 2)  # a send id we never used
    no_send_id = {k: v for k, v in event(send_id, 2).items() if k != "send_id"}
    assert post(engine, stranger, made_up, no_send_id) == 0
    led.settle()
    assert states(engine) == {"uncertain": 2, "pending": 3}


def test_a_row_already_sent_is_never_touched(engine):
    led, batch_id, send_id = uncertain_batch(engine, [1])
    led.finish(batch_id, "sent", status=202)
    before = evidence(engine)[1]
    post(engine, event(send_id, 1, "dropped"))
    assert evidence(engine)[1] == before == ("sent", None)


def test_proofs_from_asking_sendgrid_settle_and_are_counted_apart(engine):
    led, batch_id, _ = uncertain_batch(engine, [1, 2, 3])
    led.recover()
    settled = led.settle(
        [Proof(1, "activity:delivered", utcnow()), Proof(99, "activity:x", utcnow())]
    )
    assert settled == {"activity": 1}
    [b] = led.uncertain_batches()
    assert (b.by_asking, b.by_events, b.still) == (1, 0, 2)
    assert [r.id for r in led.batch_rows(batch_id)] == [2, 3]


def test_a_retry_claims_only_the_unproven_even_when_proof_arrives_mid_claim(engine):
    led, _, send_id = uncertain_batch(engine, [1, 2, 3])
    led.recover()
    wanted = ("pending", "failed", "uncertain")
    rows = led.next_rows(SEG, 10, wanted)
    assert [r.id for r in rows] == [1, 2, 3, 4, 5]
    post(engine, event(send_id, 2))  # the webhook settles row 2 after the retry read it
    try:
        led.claim(SEG, [r.id for r in rows], "sendgrid", wanted)
    except SettledMeanwhile as exc:
        assert exc.ids == {2}
    else:
        raise AssertionError("the claim should have noticed row 2 was settled")
    assert states(engine) == {"sent": 1, "uncertain": 2, "pending": 2}  # nothing claimed
    led.claim(SEG, [1, 3, 4, 5], "sendgrid", wanted)
    assert states(engine) == {"sent": 1, "in_flight": 4}


def test_uncertain_rows_wait_for_the_settling_period(engine):
    led, _, _ = uncertain_batch(engine, [1, 2])
    led.recover()
    wanted = ("pending", "failed", "uncertain")
    young = utcnow() - dt.timedelta(minutes=15)  # the batch left just now: too young
    assert [r.id for r in led.next_rows(SEG, 10, wanted, uncertain_before=young)] == [3, 4, 5]
    assert led.sendable(wanted, uncertain_before=young) == {SEG: 3}
    ripe = utcnow() + dt.timedelta(seconds=1)
    assert len(led.next_rows(SEG, 10, wanted, uncertain_before=ripe)) == 5
    assert led.sendable(wanted, uncertain_before=ripe) == {SEG: 5}


def test_a_batch_counted_failed_that_sendgrid_did_accept_is_not_sent_again(engine):
    """A 5xx after a request that in fact went through: its events prove it, so the next
    run (which re-sends failed rows) leaves that recipient alone."""
    led, batch_id, send_id = uncertain_batch(engine, [1, 2])
    led.finish(batch_id, "failed", status=500, error="HTTP 500 six times")
    post(engine, event(send_id, 2))
    assert evidence(engine)[2] == ("sent", "webhook:delivered")
    assert [r.id for r in led.next_rows(SEG, 10)] == [1, 3, 4, 5]


def test_the_migration_adds_the_evidence_columns_to_an_older_store(tmp_path):
    """A store made before this version (schema 7) gains ledger.evidence and evidence_at."""
    from equip_mailer.store import migrations, open_store

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE ledger (id INTEGER PRIMARY KEY, campaign_id TEXT, "
                "email TEXT, email_key TEXT, segment TEXT, state TEXT)"
            )
        )
        conn.execute(
            sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, send_id TEXT, ledger_id INTEGER)")
        )
        migrations._v8(conn)
        migrations._v8(conn)  # twice: nothing breaks
        cols = {c["name"] for c in sa.inspect(conn).get_columns("ledger")}
    assert {"evidence", "evidence_at"} <= cols
    engine.dispose()
    open_store(f"sqlite:///{tmp_path / 'new.db'}").dispose()  # a new store is at the latest
