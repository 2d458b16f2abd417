"""Settling uncertain recipients from what SendGrid (or the outbox) says it accepted.

A batch whose request got no answer leaves its recipients *uncertain*: SendGrid may or may
not have accepted them. But every personalization carries our ``send_id`` and the ledger
id (``recipient``) in its custom_args, and they come back on every webhook event; a click
on one of our links names the ledger id too; the Email Activity API, where the account
has it, answers by send id. Any of these is *evidence*: the recipient was accepted, so
``--retry-uncertain`` must not mail them again.

Settling moves such a row to ``sent`` (or ``dropped`` when SendGrid's only word on it is a
``dropped`` event) and writes ``evidence`` ("<source>:<event>", e.g. ``webhook:delivered``,
``activity:processed``) and ``evidence_at``. It is idempotent and order-free:

* only rows that are not known to be sent are touched (uncertain, failed, an uncertain row
  parked because its address left the lists, a row settled as dropped that later evidence
  shows was accepted after all), and each UPDATE re-checks the state, so a row a retry has
  just claimed is never changed under it;
* events that arrive while the batch is still in flight are stored and wait: the ledger
  settles from the stored events whenever it marks rows uncertain or failed
  (``Ledger.recover``, ``Ledger.finish``), and the webhook settles whatever its events
  name as they arrive. Whichever comes second does the work, and the result is the same.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import batches, events, ledger, utcnow

from .ledger_rows import chunks
from .ledger_sync import IN_FILE_UNCERTAIN, REMOVED_UNCERTAIN

# States evidence may settle (plus the parked-uncertain rows, see _settleable)
OPEN_STATES = ("uncertain", "failed")
EVENT_SOURCES = ("webhook", "tracker")  # what counts as "settled by events"


@dataclass(frozen=True)
class Proof:
    """One piece of evidence that a recipient was accepted."""

    ledger_id: int
    evidence: str  # "<source>:<what>", e.g. "webhook:delivered", "activity:not_delivered"
    at: dt.datetime
    dropped: bool = False  # SendGrid accepted the request but will not deliver to this one


def _settleable() -> sa.ColumnElement[bool]:
    c = ledger.c
    return sa.or_(
        c.state.in_(OPEN_STATES),
        sa.and_(c.state == "cancelled", c.error == REMOVED_UNCERTAIN),
        sa.and_(c.state == "suppressed", c.error == IN_FILE_UNCERTAIN),
        sa.and_(c.state == "dropped", c.evidence.is_not(None)),  # may turn out accepted
    )


def _best(proofs: Iterable[Proof]) -> dict[int, Proof]:
    """Per recipient, the earliest proof of acceptance; a drop only when there is no other."""
    best: dict[int, Proof] = {}
    for p in proofs:
        old = best.get(p.ledger_id)
        if old is None or (old.dropped, old.at) > (p.dropped, p.at):
            best[p.ledger_id] = p
    return best


def apply(conn: Connection, proofs: Iterable[Proof]) -> Counter[str]:
    """Settle the rows these proofs name (where still open); returns settled rows per
    evidence source ("webhook", "activity", ...). Runs inside the caller's transaction."""
    best = _best(proofs)
    if not best:
        return Counter()
    now = utcnow()
    settled: Counter[str] = Counter()
    c = ledger.c
    for chunk in chunks(sorted(best)):
        rows = conn.execute(sa.select(c.id, c.state).where(c.id.in_(chunk), _settleable())).all()
        for row in rows:
            p = best[row.id]
            state = "dropped" if p.dropped else "sent"
            if row.state == "dropped" and p.dropped:
                continue  # already settled as dropped: nothing new
            done = conn.execute(
                ledger.update()
                .where(c.id == row.id, _settleable())
                .values(
                    state=state,
                    evidence=p.evidence[:60],
                    evidence_at=p.at,
                    sent_at=p.at if state == "sent" else None,
                    error=None if state == "sent" else "dropped by SendGrid",
                    updated_at=now,
                )
            ).rowcount
            if done:
                settled[p.evidence.split(":", 1)[0]] += 1
    return settled


def event_proofs(conn: Connection, ledger_ids: Iterable[int]) -> list[Proof]:
    """The stored events that prove these recipients were accepted: any webhook event (or a
    click on our own link) that names the recipient and a send id of the recipient's
    campaign."""
    ids = sorted(set(ledger_ids))
    e, b, c = events.c, batches.c, ledger.c
    out: list[Proof] = []
    for chunk in chunks(ids):
        query = (
            sa.select(e.ledger_id, e.event, e.source, e.at)
            .select_from(
                events.join(ledger, c.id == e.ledger_id).join(
                    batches, sa.and_(b.send_id == e.send_id, b.campaign_id == c.campaign_id)
                )
            )
            .where(e.ledger_id.in_(chunk), e.campaign_id == c.campaign_id)
        )
        out += [
            Proof(r.ledger_id, f"{r.source}:{r.event}", r.at, dropped=r.event == "dropped")
            for r in conn.execute(query)
        ]
    return out


def settle_recipients(conn: Connection, ledger_ids: Iterable[int]) -> Counter[str]:
    """Settle these recipients from the events already stored (the webhook's path)."""
    ids = sorted(set(ledger_ids))
    if not ids:
        return Counter()
    c = ledger.c
    open_ids: list[int] = []
    for chunk in chunks(ids):
        open_ids += conn.execute(sa.select(c.id).where(c.id.in_(chunk), _settleable())).scalars()
    return apply(conn, event_proofs(conn, open_ids)) if open_ids else Counter()


def settle_campaign(
    conn: Connection, campaign_id: str, batch_ids: Iterable[int] | None = None
) -> Counter[str]:
    """Settle a campaign's open rows (or only those of some batches) from stored events."""
    c = ledger.c
    query = sa.select(c.id).where(c.campaign_id == campaign_id, _settleable())
    if batch_ids is not None:
        wanted = sorted(set(batch_ids))
        if not wanted:
            return Counter()
        query = query.where(c.batch_id.in_(wanted))
    ids = list(conn.execute(query).scalars())
    return apply(conn, event_proofs(conn, ids)) if ids else Counter()


@dataclass(frozen=True)
class BatchEvidence:
    """One uncertain batch: how many of its recipients each kind of evidence settled, and
    how many are still without any."""

    id: int
    send_id: str
    segment: str
    backend: str
    size: int
    created_at: dt.datetime
    by_events: int
    by_asking: int  # the Email Activity API, or the outbox's own files
    dropped: int
    still: int  # still uncertain: no evidence yet


def uncertain_batches(conn: Connection, campaign_id: str) -> list[BatchEvidence]:
    """The campaign's uncertain batches with their evidence counts, oldest first."""
    b, c = batches.c, ledger.c
    rows = conn.execute(
        sa.select(c.batch_id, c.state, c.evidence, sa.func.count())
        .select_from(ledger.join(batches, b.id == c.batch_id))
        .where(b.campaign_id == campaign_id, b.state == "uncertain")
        .group_by(c.batch_id, c.state, c.evidence)
    ).all()
    tally: dict[int, Counter[str]] = {}
    for batch_id, state, evidence, n in rows:
        t = tally.setdefault(batch_id, Counter())
        source = (evidence or "").split(":", 1)[0]
        if state == "uncertain":
            t["still"] += n
        elif source in EVENT_SOURCES:
            t["events"] += n
        elif source:
            t["asking"] += n
        if state == "dropped":
            t["dropped"] += n
    found = conn.execute(
        sa.select(b.id, b.send_id, b.segment, b.backend, b.size, b.created_at)
        .where(b.campaign_id == campaign_id, b.state == "uncertain")
        .order_by(b.id)
    ).all()
    return [
        BatchEvidence(
            r.id,
            r.send_id,
            r.segment,
            r.backend,
            r.size,
            r.created_at,
            by_events=tally.get(r.id, Counter())["events"],
            by_asking=tally.get(r.id, Counter())["asking"],
            dropped=tally.get(r.id, Counter())["dropped"],
            still=tally.get(r.id, Counter())["still"],
        )
        for r in found
    ]
