"""The exactly-once bookkeeping: one ledger row per (campaign, recipient), one ``Ledger``
per campaign with its lock.

A row moves pending -> in_flight -> sent | failed | uncertain. The move to in_flight (with a
new ``batches`` row) is COMMITTED before the request leaves, and the outcome is COMMITTED as
soon as the answer arrives (listmonk#3022's lesson: checkpoint when *sent*, not when
*fetched*). So a crash at any instant leaves each recipient either untouched (pending: the
next run sends), finished (sent: never again), or in a batch that was in flight: that batch
becomes *uncertain* on the next start and is not re-sent unless the user asks
(``--retry-uncertain``), because SendGrid may already have accepted it.

``failed`` means definitely not accepted (a refusal, or 429/5xx after every retry), so a
re-run sends those again. ``suppressed`` rows are never sent. A per-campaign lock in the
``campaigns`` row keeps two runs from overlapping; a lock left by a dead process is taken
over (lock_owner.py). The row operations themselves are in ledger_rows.py and
ledger_sync.py; each ``Ledger`` method is one committed transaction around them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.audience import Recipient, gc_paused
from equip_mailer.errors import DeliveryError
from equip_mailer.store import batches, campaigns, ledger, utcnow

from . import ledger_evidence, ledger_rows
from .batch import BatchState
from .ledger_evidence import BatchEvidence, Proof
from .ledger_rows import SENDABLE, Row, count_sendable, count_states, driver_time, placeholder
from .ledger_sync import SyncResult, sync_audience
from .lock_owner import lock_owner_id, owner_alive


@dataclass(frozen=True)
class ProblemBatch:
    id: int
    send_id: str
    segment: str
    state: str
    size: int
    still: int  # rows still pointing at this batch in the same state
    http_status: int | None
    error: str | None
    created_at: dt.datetime


class Ledger:
    """One campaign's ledger in one database, with its lock. Each method is one committed
    transaction."""

    def __init__(self, engine: Engine, campaign_id: str):
        self.engine = engine
        self.campaign_id = campaign_id
        self.owner = lock_owner_id()
        self.locked = False

    # -- lock --------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the campaign's lock, or say plainly who holds it. Compare-and-swap on the
        campaigns row, so two starting runs cannot both win."""
        cid = self.campaign_id
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(campaigns.c.lock_owner, campaigns.c.lock_at).where(campaigns.c.id == cid)
            ).first()
            if row is None:
                raise DeliveryError(f"campaign {cid} is not in the database (internal error)")
            held = row.lock_owner
            if held and held != self.owner and owner_alive(held, row.lock_at):
                host, _, rest = held.partition(":")
                raise DeliveryError(
                    f"another send of campaign {cid} is running (process {rest.split(':')[0]} "
                    f"on {host}, since {row.lock_at:%Y-%m-%d %H:%M} UTC)",
                    hint="Wait for it to finish; if it is stuck, stop that process and run again.",
                )
            cond = (
                campaigns.c.lock_owner.is_(None) if held is None else campaigns.c.lock_owner == held
            )
            done = conn.execute(
                campaigns.update()
                .where(campaigns.c.id == cid, cond)
                .values(lock_owner=self.owner, lock_at=utcnow())
            ).rowcount
        if done != 1:
            raise DeliveryError(
                f"another send of campaign {cid} started at the same moment",
                hint="Wait for it to finish.",
            )
        self.locked = True

    def release(self) -> None:
        if not self.locked:
            return
        with self.engine.begin() as conn:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == self.campaign_id, campaigns.c.lock_owner == self.owner)
                .values(lock_owner=None, lock_at=None)
            )
        self.locked = False

    @contextlib.contextmanager
    def lock(self) -> Iterator[Ledger]:
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def refresh(self) -> None:
        """Renew the lock's heartbeat (after a wait, e.g. the confirmation prompt)."""
        if self.locked:
            with self.engine.begin() as conn:
                self._heartbeat(conn)

    def _heartbeat(self, conn: Connection) -> None:
        """So another host can tell a live lock from a stale one. Only while the lock is still
        ours: if another run took it over (it thought this one dead), stop here."""
        m = placeholder(conn)
        done = conn.exec_driver_sql(
            f"UPDATE {campaigns.name} SET lock_at = {m} WHERE id = {m} AND lock_owner = {m}",
            (driver_time(conn, utcnow()), self.campaign_id, self.owner),
        ).rowcount
        if done != 1:
            raise DeliveryError(
                "another run took over the campaign's lock; nothing more was sent by this one",
                hint="Check `equip-mailer status`; let the other run finish.",
            )

    # -- recovery and sync -------------------------------------------------------------
    def recover(self) -> int:
        """Batches left in flight by a dead run become uncertain (rows too); returns how many
        batches. Call with the lock held: then nothing else can be in flight.

        Then every open row is settled from the events already stored: those that arrived
        while the batch was in flight, and any that came for older uncertain batches."""
        now = utcnow()
        with self.engine.begin() as conn:
            n: int = conn.execute(
                batches.update()
                .where(batches.c.campaign_id == self.campaign_id, batches.c.state == "in_flight")
                .values(
                    state="uncertain",
                    finished_at=now,
                    error="the send stopped while this request was in flight; SendGrid "
                    "may or may not have accepted it",
                )
            ).rowcount
            conn.execute(
                ledger.update()
                .where(ledger.c.campaign_id == self.campaign_id, ledger.c.state == "in_flight")
                .values(state="uncertain", updated_at=now, error="in flight when a send stopped")
            )
            ledger_evidence.settle_campaign(conn, self.campaign_id)
        return n

    def settle(self, proofs: Iterable[Proof] = ()) -> Counter[str]:
        """Settle open rows from stored events and from ``proofs`` (the Email Activity API's
        answers); returns rows settled per evidence source."""
        with self.engine.begin() as conn:
            settled = ledger_evidence.settle_campaign(conn, self.campaign_id)
            settled.update(ledger_evidence.apply(conn, proofs))
        return settled

    def settled_by_evidence(self) -> int:
        """Sent recipients whose batch got no answer: settled by evidence since."""
        c = ledger.c
        with self.engine.connect() as conn:
            n: int = conn.execute(
                sa.select(sa.func.count()).where(
                    c.campaign_id == self.campaign_id,
                    c.state == "sent",
                    c.evidence.is_not(None),
                )
            ).scalar_one()
        return n

    def uncertain_batches(self) -> list[BatchEvidence]:
        """Uncertain batches with how many recipients each kind of evidence settled."""
        with self.engine.connect() as conn:
            return ledger_evidence.uncertain_batches(conn, self.campaign_id)

    def batch_rows(self, batch_id: int, states: tuple[str, ...] = ("uncertain",)) -> list[Row]:
        """The rows of a batch still in these states (for asking the backend about them)."""
        c = ledger.c
        with self.engine.connect() as conn:
            return [
                Row._make(r)
                for r in conn.execute(
                    sa.select(
                        c.id,
                        c.email,
                        c.first_name,
                        c.last_name,
                        c.practice,
                        c.role,
                        c.qi_level,
                        c.segment,
                    )
                    .where(c.batch_id == batch_id, c.state.in_(states))
                    .order_by(c.id)
                )
            ]

    def sync(
        self,
        by_segment: dict[str, list[Recipient]],
        suppressed: Iterable[str] = (),
        in_file: Iterable[str] = (),
    ) -> SyncResult:
        with gc_paused(), self.engine.begin() as conn:
            return sync_audience(conn, self.campaign_id, by_segment, suppressed, in_file)

    # -- the per-batch cycle -----------------------------------------------------------
    def next_rows(
        self,
        segment: str,
        limit: int,
        states: tuple[str, ...] = SENDABLE,
        before: dt.datetime | None = None,
        after_id: int = 0,
        uncertain_before: dt.datetime | None = None,
    ) -> list[Row]:
        with self.engine.connect() as conn:
            return ledger_rows.next_rows(
                conn, self.campaign_id, segment, limit, states, before, after_id, uncertain_before
            )

    def claim(
        self, segment: str, ids: list[int], backend: str, states: tuple[str, ...] = SENDABLE
    ) -> tuple[int, str]:
        """pending -> in_flight, committed before the request; returns (batch id, send id).
        Raises ``ledger_rows.SettledMeanwhile`` (nothing claimed) when evidence settled some
        of the rows since they were read."""
        send_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            batch_id = ledger_rows.claim(
                conn, self.campaign_id, segment, ids, send_id, backend, states
            )
            if self.locked:  # in the claim's transaction: a lost lock rolls the claim back
                self._heartbeat(conn)
        return batch_id, send_id

    def finish(
        self,
        batch_id: int,
        state: BatchState,
        *,
        status: int | None = None,
        message_id: str | None = None,
        error: str | None = None,
        attempts: int = 1,
    ) -> None:
        """Record the answer for a batch (committed): its rows leave in_flight together. A
        batch that is not sent is settled at once from any events that came while it was in
        flight (SendGrid may have accepted what timed out here)."""
        if state not in ("sent", "failed", "uncertain"):
            raise ValueError(state)
        with self.engine.begin() as conn:
            answer = ledger_rows.Answer(status, message_id, error, attempts)
            ledger_rows.finish(conn, batch_id, state, answer)
            if state != "sent":
                ledger_evidence.settle_campaign(conn, self.campaign_id, [batch_id])

    # -- reading -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return count_states(conn, self.campaign_id)

    def sendable(
        self, states: tuple[str, ...] = SENDABLE, uncertain_before: dt.datetime | None = None
    ) -> dict[str, int]:
        with self.engine.connect() as conn:
            return count_sendable(conn, self.campaign_id, states, uncertain_before)

    def problem_batches(self) -> list[ProblemBatch]:
        """Uncertain and failed batches, with how many of their recipients are still in that
        state (a later run may have sent them since)."""
        b, c = batches.c, ledger.c
        still = (
            sa.select(sa.func.count())
            .where(c.batch_id == b.id, c.state == b.state)
            .scalar_subquery()
        )
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    b.id,
                    b.send_id,
                    b.segment,
                    b.state,
                    b.size,
                    still,
                    b.http_status,
                    b.error,
                    b.created_at,
                )
                .where(b.campaign_id == self.campaign_id, b.state.in_(("uncertain", "failed")))
                .order_by(b.id)
            ).all()
        return [ProblemBatch(*r) for r in rows]

    def states_by_id(self) -> dict[int, str]:
        """Each ledger id's state (for tests and reports)."""
        with self.engine.connect() as conn:
            return {
                r.id: r.state
                for r in conn.execute(
                    sa.select(ledger.c.id, ledger.c.state).where(
                        ledger.c.campaign_id == self.campaign_id
                    )
                )
            }

    # -- scheduled sends ---------------------------------------------------------------
    def campaign_row(self) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(campaigns).where(campaigns.c.id == self.campaign_id)
            ).first()

    def set_sg_batch(self, sg_batch_id: str, send_at: dt.datetime | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == self.campaign_id)
                .values(sg_batch_id=sg_batch_id, send_at=send_at)
            )

    def mark_cancelled(self) -> int:
        """The scheduled send was cancelled at SendGrid: its rows and batches say so."""
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == self.campaign_id)
                .values(cancelled_at=now)
            )
            conn.execute(
                batches.update()
                .where(
                    batches.c.campaign_id == self.campaign_id,
                    batches.c.state.in_(("sent", "in_flight", "uncertain")),
                )
                .values(state="cancelled", finished_at=now)
            )
            n: int = conn.execute(
                ledger.update()
                .where(
                    ledger.c.campaign_id == self.campaign_id,
                    ledger.c.state.in_(("pending", "sent", "failed", "uncertain")),
                )
                .values(state="cancelled", error="scheduled send cancelled", updated_at=now)
            ).rowcount
            return n
