"""The ledger's row operations: which rows a run picks, in which states, and in which order;
as plain functions on one Connection they also run inside a transaction that is rolled back
(what the dry run does)."""

from __future__ import annotations

import sqlalchemy as sa
from support.ledger_audience import CID, audience

from equip_mailer.compose.audience import Recipient
from equip_mailer.send import ledger_rows
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.ledger_rows import Answer, claim, count_sendable, finish, next_rows
from equip_mailer.send.ledger_sync import sync_audience
from equip_mailer.store import ensure_campaign, ledger, open_store, utcnow


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


def test_a_run_does_not_pick_again_what_failed_during_it_and_a_rollback_undoes_everything(
    engine,
):
    seg = "getting-started"
    with engine.connect() as conn:
        tx = conn.begin()
        sync_audience(conn, CID, audience(5))
        run_start = utcnow()
        first = next_rows(conn, CID, seg, 2)
        assert [r.id for r in first] == [1, 2]
        batch_id = claim(conn, CID, seg, [1, 2], "send-1", "memory")
        finish(conn, batch_id, "failed", Answer(500, None, "HTTP 500 every time", 6))
        # this run goes on with the others; the next run (no ``before``) retries 1 and 2
        assert [r.id for r in next_rows(conn, CID, seg, 10, before=run_start)] == [3, 4, 5]
        assert [r.id for r in next_rows(conn, CID, seg, 10)] == [1, 2, 3, 4, 5]
        assert [r.id for r in next_rows(conn, CID, seg, 10, after_id=3)] == [4, 5]
        assert next_rows(conn, CID, seg, 1)[0].source == "ledger row 1"  # never the address
        assert count_sendable(conn, CID) == {seg: 5}
        tx.rollback()
    assert Ledger(engine, CID).counts() == {}


def test_rows_come_back_exactly_as_stored_whatever_their_characters(engine):
    """On SQLite the rows of a batch come packed in one JSON array (one step of the driver
    instead of one per row): names with quotes, backslashes, accents, emoji, a
    no-break space and empty values come back exactly as a plain SELECT gives them."""
    names = ['Zoë "Zo" O\'Brien', "Back\\slash", "Łukasz 🙂", "", "Ngozi\u00a0Okafor", "李"]
    readers = [
        Recipient(
            email=f"Reader{i}@Example.org",
            first_name=name,
            last_name=name[::-1],
            practice="Spitalfields & Banglatown",
            role="",
            qi_level="none",
            source=f"t.csv:{i}",
        )
        for i, name in enumerate(names)
    ]
    led = Ledger(engine, CID)
    led.sync({"getting-started": readers})
    rows = led.next_rows("getting-started", 10)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(ledger.c.id, ledger.c.email, ledger.c.first_name, ledger.c.last_name)
            .where(ledger.c.campaign_id == CID)
            .order_by(ledger.c.id)
        ).all()
    assert [(r.id, r.email, r.first_name, r.last_name) for r in rows] == [tuple(s) for s in stored]
    assert [r.first_name for r in rows] == names
    assert {r.practice for r in rows} == {"Spitalfields & Banglatown"}
    assert all(isinstance(r.id, int) for r in rows)


def test_the_packed_and_the_row_by_row_reads_give_the_same_rows(engine, monkeypatch):
    """With NULLs, and failed rows merged with pending ones under a limit: the JSON-packed
    read (SQLite) and the plain one give the same rows in the same order."""
    led = Ledger(engine, CID)
    led.sync(audience(8))
    batch_id, _ = led.claim("getting-started", [2, 5], "memory")
    led.finish(batch_id, "failed", status=500, error="HTTP 500")
    with engine.begin() as conn:
        conn.execute(ledger.update().where(ledger.c.id == 3).values(first_name=None, role=None))
    sqls: list[str] = []
    fetch = ledger_rows._fetch

    def recorded(conn, sql, params):
        sqls.append(sql)
        return fetch(conn, sql, params)

    monkeypatch.setattr(ledger_rows, "_fetch", recorded)
    reads = {}
    for packed in (True, False):
        monkeypatch.setattr(ledger_rows, "_SQLITE_JSON", packed)
        reads[packed] = led.next_rows("getting-started", 4, ("pending", "failed"))
    assert reads[True] == reads[False]
    assert [r.id for r in reads[True]] == [1, 2, 3, 4]
    assert (reads[True][2].first_name, reads[True][2].role) == (None, None)
    if engine.dialect.name == "sqlite":
        assert any("json_group_array" in sql for sql in sqls)


def test_reading_claiming_and_answering_a_batch_never_scans_the_ledger(sqlite_url):
    """Each step of the per-batch cycle finds its rows through an index: a scan would cost
    a pass over the campaign per batch, quadratic over a 100,000 send, and the claim looks
    each id up by campaign, state *and segment* (without the segment SQLite reads every
    sendable row of the campaign). On SQLite: the plans of the very statements the steps
    run, as the driver saw them."""
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        ensure_campaign(conn, CID, "subject")
    seg = "getting-started"
    Ledger(engine, CID).sync(audience(40))
    ran: list[str] = []
    with engine.begin() as conn:
        driver = conn.connection.driver_connection
        driver.set_trace_callback(ran.append)
        try:
            rows = next_rows(conn, CID, seg, 10, before=utcnow(), after_id=1)
            batch_id = claim(conn, CID, seg, [r.id for r in rows], "send-1", "memory")
            finish(conn, batch_id, "sent", Answer(202, "m-1", None, 1))
        finally:
            driver.set_trace_callback(None)
        plans = {
            sql: [step[3] for step in driver.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in ran
            if " ledger " in f" {sql} " and sql.lstrip().upper().startswith(("SELECT", "UPDATE"))
        }
    assert len(plans) >= 3, ran  # the read, the claim and the answer
    for sql, plan in plans.items():
        assert not any(step.startswith("SCAN ledger") for step in plan), (sql, plan)
    claimed = next(plan for sql, plan in plans.items() if "'in_flight', batch_id" in sql)
    by_segment = "ix_ledger_state_segment (campaign_id=? AND state=? AND segment=?"
    assert any(by_segment in step for step in claimed), claimed
