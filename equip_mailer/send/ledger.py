"""The exactly-once bookkeeping: one ledger row per (campaign, recipient).

A row moves pending -> in_flight -> sent | failed | uncertain. The move to in_flight (with a
new ``batches`` row) is COMMITTED before the request leaves, and the outcome is COMMITTED as
soon as the answer arrives (listmonk#3022's lesson: checkpoint when *sent*, not when
*fetched*). So a crash at any instant leaves each recipient either untouched (pending: the
next run sends), finished (sent: never again), or in a batch that was in flight: that batch
becomes *uncertain* on the next start and is not re-sent unless the user asks
(``--retry-uncertain``), because SendGrid may already have accepted it.

``failed`` means definitely not accepted (a refusal, or 429/5xx after every retry), so a
re-run sends those again. ``suppressed`` rows are never sent. A per-campaign lock in the
``campaigns`` row keeps two runs from overlapping; a lock left by a dead process is taken over.

Every operation is a handful of statements per batch (no per-recipient round trips) and
runs on SQLite and PostgreSQL alike. Plain functions take a Connection so a dry run can do
the same work inside a transaction it then rolls back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.audience import Recipient, gc_paused
from equip_mailer.errors import DeliveryError
from equip_mailer.store import batches, campaigns, ledger, utcnow

SENDABLE = ("pending", "failed")
INSERT_SLICE = 5000  # new ledger rows per executemany in sync_audience
CHUNK = 900  # ids per IN (...) list: well under every driver's limit
STALE_FOREIGN_LOCK = dt.timedelta(minutes=30)  # a lock from another host without heartbeat
REMOVED = "no longer on any mailing list"
REMOVED_UNCERTAIN = REMOVED + " (its last batch got no answer)"  # comes back as uncertain


class Row(NamedTuple):
    """A recipient to send, as the ledger holds them. It has the attributes of an
    ``audience.Recipient`` that rendering reads, so it is passed as one (a tuple is far
    cheaper to make than a frozen dataclass, 100,000 times per send)."""

    id: int
    email: str
    first_name: str
    last_name: str
    practice: str
    role: str
    qi_level: str
    segment: str

    @property
    def source(self) -> str:
        return f"ledger row {self.id}"  # for messages: never the address

    @property
    def key(self) -> str:
        return self.email.lower()

    def recipient(self) -> Recipient:
        return Recipient(
            email=self.email,
            first_name=self.first_name or "",
            last_name=self.last_name or "",
            practice=self.practice or "",
            role=self.role or "",
            qi_level=self.qi_level or "",
            source=self.source,
        )


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    suppressed: int = 0
    removed: int = 0
    restored: int = 0
    moved: int = 0  # pending rows whose segment changed (QI level updated)


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


def _chunks(ids: list[int], n: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


# The per-batch statements (next rows, claim, finish) are plain SQL strings run on the
# driver: building and compiling SQLAlchemy statements, binding 1,000 ids through its
# expanding IN and making its Row objects cost more than SQLite's own work.


def _mark(conn: Connection) -> str:
    """The driver's placeholder: sqlite3 takes ``?``, psycopg ``%s``."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def _stamp(conn: Connection, when: dt.datetime):
    """A naive UTC time as the driver should get it: SQLite keeps SQLAlchemy's text format."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else when


def _marks(mark: str, n: int) -> str:
    return ", ".join([mark] * n)


# ---------------------------------------------------------------------------------------
# Plain functions on a connection


def sync_audience(
    conn: Connection,
    campaign_id: str,
    by_segment: dict[str, list[Recipient]],
    suppressed: Iterable[str] = (),
) -> SyncResult:
    """Bring the ledger in line with today's lists.

    New addresses get pending rows (so people added to a list later get the campaign on the
    next run); rows not yet sent whose address is now suppressed become ``suppressed``; rows
    not yet sent whose address left every list are parked as ``cancelled`` (and come back if
    the address returns); a pending row follows its recipient to a new segment. Uncertain rows
    are suppressed or parked the same way (their batch is kept; a parked one comes back as
    uncertain), so ``--retry-uncertain`` never mails a suppressed or removed address.
    """
    suppressed = set(suppressed)
    now = utcnow()
    existing = {
        r.email_key: r
        for r in conn.execute(
            sa.select(
                ledger.c.id, ledger.c.email_key, ledger.c.state, ledger.c.segment, ledger.c.error
            ).where(ledger.c.campaign_id == campaign_id)
        )
    }
    wanted: dict[str, tuple[str, Recipient]] = {}
    for segment, people in by_segment.items():
        for r in people:
            wanted.setdefault(r.key, (segment, r))
    new_keys = [key for key in wanted if key not in existing and key not in suppressed]
    # The caller holds the campaign lock and just read every key, so a plain bulk insert
    # cannot collide; the unique constraint still guards it. In slices, so 100,000 row
    # tuples never exist at once.
    for start in range(0, len(new_keys), INSERT_SLICE):
        _bulk_insert_pending(
            conn,
            [
                (
                    campaign_id,
                    r.email,
                    key,
                    r.first_name,
                    r.last_name,
                    r.practice,
                    r.role,
                    r.qi_level,
                    segment,
                )
                for key in new_keys[start : start + INSERT_SLICE]
                for segment, r in (wanted[key],)
            ],
            now,
        )
    added = len(new_keys)

    to_suppress, to_remove, to_restore, moves = [], [], [], []
    to_park, to_unpark = [], []  # uncertain rows: keep their batch, come back uncertain
    for key, row in existing.items():
        if row.state == "uncertain" or (
            row.state == "cancelled" and row.error == REMOVED_UNCERTAIN
        ):
            # --retry-uncertain must never mail someone who since unsubscribed or left
            if key in suppressed:
                to_suppress.append(row.id)
            elif key not in wanted:
                if row.state != "cancelled":
                    to_park.append(row.id)
            elif row.state == "cancelled":
                to_unpark.append(row.id)
        elif row.state in SENDABLE or (row.state == "cancelled" and row.error == REMOVED):
            if key in suppressed:
                to_suppress.append(row.id)
            elif key not in wanted:
                if row.state != "cancelled":
                    to_remove.append(row.id)
            else:
                if row.state == "cancelled":
                    to_restore.append(row.id)
                segment = wanted[key][0]
                if segment != row.segment:
                    moves.append(
                        {"b_id": row.id, "b_segment": segment, "b_qi": wanted[key][1].qi_level}
                    )
    for ids, state, error in (
        (to_suppress, "suppressed", "address is suppressed"),
        (to_remove, "cancelled", REMOVED),
        (to_restore, "pending", None),
        (to_park, "cancelled", REMOVED_UNCERTAIN),
        (to_unpark, "uncertain", "in flight when a send stopped"),
    ):
        for chunk in _chunks(ids):
            conn.execute(
                ledger.update()
                .where(ledger.c.id.in_(chunk))
                .values(state=state, error=error, updated_at=now)
            )
    if moves:
        conn.execute(
            ledger.update()
            .where(ledger.c.id == sa.bindparam("b_id"))
            .values(
                segment=sa.bindparam("b_segment"), qi_level=sa.bindparam("b_qi"), updated_at=now
            ),
            moves,
        )
    return SyncResult(
        added=added,
        suppressed=len(to_suppress),
        removed=len(to_remove) + len(to_park),
        restored=len(to_restore) + len(to_unpark),
        moved=len(moves),
    )


_NEW_ROW_COLUMNS = (
    "campaign_id",
    "email",
    "email_key",
    "first_name",
    "last_name",
    "practice",
    "role",
    "qi_level",
    "segment",
    "state",
    "attempts",
    "created_at",
    "updated_at",
)


def _bulk_insert_pending(conn: Connection, rows: list[tuple], now: dt.datetime) -> None:
    """executemany straight on the driver: SQLAlchemy's per-row parameter processing costs
    more than the insert itself (~2 s per 100,000 rows)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        mark, stamp = "?", now.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's own format
    else:
        mark, stamp = "%s", now
    sql = (
        f"INSERT INTO {ledger.name} ({', '.join(_NEW_ROW_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_NEW_ROW_COLUMNS))})"
    )
    tail = ("pending", 0, stamp, stamp)
    conn.exec_driver_sql(sql, [row + tail for row in rows])


_ROW_COLUMNS = "id, email, first_name, last_name, practice, role, qi_level, segment"


def next_rows(
    conn: Connection,
    campaign_id: str,
    segment: str,
    limit: int,
    states: tuple[str, ...] = SENDABLE,
    before: dt.datetime | None = None,
    after_id: int = 0,
) -> list[Row]:
    """The next recipients to send in a segment, oldest first (read only).

    ``after_id`` (the last id this run claimed in the segment) starts the scan there, so
    each batch reads ~one batch of rows instead of everything already sent.

    With ``before`` (the run's start), rows that failed or became uncertain *during* this
    run are not picked again by it: a server that keeps failing ends the run (error budget)
    instead of looping; the next run retries them.
    """
    m = _mark(conn)
    # One query per state, each an ordered range of ix_ledger_segment_state (campaign,
    # segment, state, id), merged here: an OR or IN over states makes SQLite read and sort
    # every sendable row of the segment for each batch (quadratic over a 100,000 send).
    found: list = []
    for state in dict.fromkeys(states):
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM {ledger.name} "
            f"WHERE campaign_id = {m} AND segment = {m} AND state = {m} AND id > {m}"
        )
        params: tuple = (campaign_id, segment, state, after_id)
        if before is not None and state != "pending":
            sql += f" AND updated_at < {m}"
            params += (_stamp(conn, before),)
        found += _fetch(conn, f"{sql} ORDER BY id LIMIT {int(limit)}", params)
    if len(found) > limit or len(states) > 1:
        found.sort(key=lambda r: r[0])
    return list(map(Row._make, found[:limit]))


def _fetch(conn: Connection, sql: str, params: tuple) -> list[tuple]:
    """Plain tuples from the driver's own cursor, inside the connection's transaction."""
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(sql, params)
        return cur.fetchall()
    finally:
        cur.close()


def claim(
    conn: Connection,
    campaign_id: str,
    segment: str,
    ids: list[int],
    send_id: str,
    backend: str,
    states: tuple[str, ...] = SENDABLE,
) -> int:
    """Move these rows to in_flight under a new batch row; returns the batch's id."""
    now = utcnow()
    batch_id = conn.execute(
        batches.insert().values(
            campaign_id=campaign_id,
            segment=segment,
            send_id=send_id,
            backend=backend,
            state="in_flight",
            size=len(ids),
            attempts=0,
            created_at=now,
        )
    ).inserted_primary_key[0]
    m, stamp = _mark(conn), _stamp(conn, now)
    wanted = tuple(dict.fromkeys(states))
    moved = 0
    for chunk in _chunks(ids):
        moved += conn.exec_driver_sql(
            f"UPDATE {ledger.name} SET state = 'in_flight', batch_id = {m}, "
            f"attempts = attempts + 1, error = NULL, updated_at = {m} "
            f"WHERE id IN ({_marks(m, len(chunk))}) AND campaign_id = {m} "
            f"AND state IN ({_marks(m, len(wanted))})",
            (batch_id, stamp, *chunk, campaign_id, *wanted),
        ).rowcount
    if moved != len(ids):
        # Only possible if another process touched the rows despite the lock: never send.
        raise DeliveryError(
            f"the ledger changed under this run while claiming batch {send_id}; nothing was sent",
            hint="Make sure only one send runs at a time.",
        )
    return batch_id


def count_states(conn: Connection, campaign_id: str) -> dict[str, int]:
    c = ledger.c
    return {
        state: n
        for state, n in conn.execute(
            sa.select(c.state, sa.func.count())
            .where(c.campaign_id == campaign_id)
            .group_by(c.state)
        )
    }


def count_sendable(
    conn: Connection, campaign_id: str, states: tuple[str, ...] = SENDABLE
) -> dict[str, int]:
    """Recipients a run would send, per segment."""
    c = ledger.c
    return {
        seg: n
        for seg, n in conn.execute(
            sa.select(c.segment, sa.func.count())
            .where(c.campaign_id == campaign_id, c.state.in_(states))
            .group_by(c.segment)
        )
    }


# ---------------------------------------------------------------------------------------
# Process liveness for the lock


def _proc_start(pid: int) -> str | None:
    """The process's start time in clock ticks (Linux), so a reused pid is not mistaken."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] in ("Z", "X"):  # zombie or dead: not running
        return "dead"
    return fields[19] if len(fields) > 19 else ""


def lock_owner_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid) or ''}"


def _owner_alive(owner: str, lock_at: dt.datetime | None) -> bool:
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname():
        return lock_at is not None and utcnow() - lock_at < STALE_FOREIGN_LOCK
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    now_start = _proc_start(pid)
    if now_start is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if now_start == "dead":
        return False
    return not start or now_start == start


# ---------------------------------------------------------------------------------------
# The stateful wrapper the send loop uses


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
            if held and held != self.owner and _owner_alive(held, row.lock_at):
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

    # -- recovery and sync -------------------------------------------------------------
    def recover(self) -> int:
        """Batches left in flight by a dead run become uncertain (rows too); returns how many
        batches. Call with the lock held: then nothing else can be in flight."""
        now = utcnow()
        with self.engine.begin() as conn:
            n = conn.execute(
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
        return n

    def sync(
        self, by_segment: dict[str, list[Recipient]], suppressed: Iterable[str] = ()
    ) -> SyncResult:
        with gc_paused(), self.engine.begin() as conn:
            return sync_audience(conn, self.campaign_id, by_segment, suppressed)

    # -- the per-batch cycle -----------------------------------------------------------
    def next_rows(
        self,
        segment: str,
        limit: int,
        states: tuple[str, ...] = SENDABLE,
        before: dt.datetime | None = None,
        after_id: int = 0,
    ) -> list[Row]:
        with self.engine.connect() as conn:
            return next_rows(conn, self.campaign_id, segment, limit, states, before, after_id)

    def claim(
        self, segment: str, ids: list[int], backend: str, states: tuple[str, ...] = SENDABLE
    ) -> tuple[int, str]:
        """pending -> in_flight, committed before the request; returns (batch id, send id)."""
        send_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            batch_id = claim(conn, self.campaign_id, segment, ids, send_id, backend, states)
            if self.locked:  # in the claim's transaction: a lost lock rolls the claim back
                self._heartbeat(conn)
        return batch_id, send_id

    def refresh(self) -> None:
        """Renew the lock's heartbeat (after a wait, e.g. the confirmation prompt)."""
        if self.locked:
            with self.engine.begin() as conn:
                self._heartbeat(conn)

    def _heartbeat(self, conn: Connection) -> None:
        """So another host can tell a live lock from a stale one. Only while the lock is still
        ours: if another run took it over (it thought this one dead), stop here."""
        m = _mark(conn)
        done = conn.exec_driver_sql(
            f"UPDATE {campaigns.name} SET lock_at = {m} WHERE id = {m} AND lock_owner = {m}",
            (_stamp(conn, utcnow()), self.campaign_id, self.owner),
        ).rowcount
        if done != 1:
            raise DeliveryError(
                "another run took over the campaign's lock; nothing more was sent by this one",
                hint="Check `equip-mailer status`; let the other run finish.",
            )

    def finish(
        self,
        batch_id: int,
        state: str,
        *,
        status: int | None = None,
        message_id: str | None = None,
        error: str | None = None,
        attempts: int = 1,
    ) -> None:
        """Record the answer for a batch (committed): its rows leave in_flight together."""
        if state not in ("sent", "failed", "uncertain"):
            raise ValueError(state)
        now = utcnow()
        with self.engine.begin() as conn:
            m, stamp = _mark(conn), _stamp(conn, now)
            conn.exec_driver_sql(
                f"UPDATE {batches.name} SET state = {m}, http_status = {m}, message_id = {m}, "
                f"error = {m}, attempts = {m}, finished_at = {m} WHERE id = {m}",
                (state, status, message_id, error, attempts, stamp, batch_id),
            )
            conn.exec_driver_sql(
                f"UPDATE {ledger.name} SET state = {m}, error = {m}, updated_at = {m}, "
                f"sent_at = {m} WHERE batch_id = {m} AND state = 'in_flight'",
                (state, error, stamp, stamp if state == "sent" else None, batch_id),
            )

    # -- reading -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return count_states(conn, self.campaign_id)

    def sendable(self, states: tuple[str, ...] = SENDABLE) -> dict[str, int]:
        with self.engine.connect() as conn:
            return count_sendable(conn, self.campaign_id, states)

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
            return dict(
                {
                    r.id: r.state
                    for r in conn.execute(
                        sa.select(ledger.c.id, ledger.c.state).where(
                            ledger.c.campaign_id == self.campaign_id
                        )
                    )
                }
            )

    # -- scheduled sends ---------------------------------------------------------------
    def campaign_row(self):
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
            return conn.execute(
                ledger.update()
                .where(
                    ledger.c.campaign_id == self.campaign_id,
                    ledger.c.state.in_(("pending", "sent", "failed", "uncertain")),
                )
                .values(state="cancelled", error="scheduled send cancelled", updated_at=now)
            ).rowcount
