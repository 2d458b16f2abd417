"""The ledger's per-batch row operations, as plain SQL functions on a Connection.

Reading the next rows to send, claiming them (pending -> in_flight under a new ``batches``
row), recording a batch's answer, counting. They take a Connection rather than an engine so
that the ``Ledger`` (ledger.py) can run each in its own committed transaction while a dry
run does the same work inside a transaction it then rolls back.

They are plain SQL strings run on the driver: building and compiling SQLAlchemy statements,
binding 1,000 ids through its expanding IN and making its Row objects cost more than
SQLite's own work. Every one is a handful of statements per batch (no per-recipient round
trips) and runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.audience import Recipient
from equip_mailer.errors import DeliveryError
from equip_mailer.store import batches, ledger, utcnow

SENDABLE = ("pending", "failed")
_SQLITE_JSON = sqlite3.sqlite_version_info >= (3, 38, 0)  # json_group_array built in
CHUNK = 900  # ids per IN (...) list: well under every driver's limit


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


def chunks(ids: list[int], n: int = CHUNK) -> Iterator[list[int]]:
    for i in range(0, len(ids), n):
        yield ids[i : i + n]


def placeholder(conn: Connection) -> str:
    """The driver's placeholder: sqlite3 takes ``?``, psycopg ``%s``."""
    return "?" if conn.dialect.name == "sqlite" else "%s"


def driver_time(conn: Connection, when: dt.datetime) -> str | dt.datetime:
    """A naive UTC time as the driver should get it: SQLite keeps SQLAlchemy's text format."""
    return when.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else when


def _marks(mark: str, n: int) -> str:
    return ", ".join([mark] * n)


_ROW_COLUMNS = "id, email, first_name, last_name, practice, role, qi_level, segment"


def next_rows(
    conn: Connection,
    campaign_id: str,
    segment: str,
    limit: int,
    states: tuple[str, ...] = SENDABLE,
    before: dt.datetime | None = None,
    after_id: int = 0,
    uncertain_before: dt.datetime | None = None,
) -> list[Row]:
    """The next recipients to send in a segment, oldest first (read only).

    ``after_id`` (the last id this run claimed in the segment) starts the scan there, so
    each batch reads ~one batch of rows instead of everything already sent.

    With ``before`` (the run's start), rows that failed or became uncertain *during* this
    run are not picked again by it: a server that keeps failing ends the run (error budget)
    instead of looping; the next run retries them.

    With ``uncertain_before``, uncertain rows are picked only from batches that left before
    then: SendGrid's events for a younger batch may still be on their way (the settling
    period, see ``--retry-uncertain``).
    """
    m = placeholder(conn)
    # One query per state, each an ordered range of ix_ledger_state_segment (campaign,
    # state, segment, id), merged here: an OR or IN over states makes SQLite read and sort
    # every sendable row of the segment for each batch (quadratic over a 100,000 send).
    found: list[tuple[Any, ...]] = []
    for state in dict.fromkeys(states):
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM {ledger.name} "
            f"WHERE campaign_id = {m} AND segment = {m} AND state = {m} AND id > {m}"
        )
        params: tuple[Any, ...] = (campaign_id, segment, state, after_id)
        if before is not None and state != "pending":
            sql += f" AND updated_at < {m}"
            params += (driver_time(conn, before),)
        if uncertain_before is not None and state == "uncertain":
            sql += f" AND batch_id IN ({_ripe_batches(m)})"
            params += (campaign_id, driver_time(conn, uncertain_before))
        found += _fetch_rows(conn, f"{sql} ORDER BY id LIMIT {int(limit)}", params)
    found.sort(key=lambda r: r[0])  # in order already, unless merged from several states
    return list(map(Row._make, found[:limit]))


def _ripe_batches(m: str) -> str:
    """Batches of a campaign that left before a time (the settling period is over)."""
    return f"SELECT id FROM {batches.name} WHERE campaign_id = {m} AND created_at < {m}"


def _fetch_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    """The rows of ``sql`` (selecting ``_ROW_COLUMNS``). On SQLite, packed into one JSON
    array by SQLite itself: Python's sqlite3 lets go of the interpreter's lock around every
    row it steps through, and beside the outbox's writer threads (which take the lock back
    at each system call) each of those 1,000 hand-overs per batch waits its turn."""
    if conn.dialect.name == "sqlite" and _SQLITE_JSON:
        packed = f"SELECT json_group_array(json_array({_ROW_COLUMNS})) FROM ({sql})"
        try:
            return orjson.loads(_fetch(conn, packed, params)[0][0])
        except (sqlite3.OperationalError, orjson.JSONDecodeError):
            pass  # a SQLite built without JSON, or a value JSON cannot hold: row by row
    return _fetch(conn, sql, params)


def _fetch(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver's own cursor, inside the connection's transaction."""
    driver = conn.connection.driver_connection
    if driver is None:  # only after the connection was invalidated
        raise DeliveryError("the database connection was lost while reading the ledger")
    cur = driver.cursor()
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
    pk = conn.execute(
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
    ).inserted_primary_key
    assert pk is not None  # a one-row INSERT always has its key
    batch_id: int = pk[0]
    m, stamp = placeholder(conn), driver_time(conn, now)
    wanted = tuple(dict.fromkeys(states))
    moved = 0
    # The segment too, so that each id is one lookup in ix_ledger_state_segment (campaign,
    # state, segment, id); with only campaign and state, SQLite scans every sendable row.
    for chunk in chunks(ids):
        moved += conn.exec_driver_sql(
            f"UPDATE {ledger.name} SET state = 'in_flight', batch_id = {m}, "
            f"attempts = attempts + 1, error = NULL, updated_at = {m} "
            f"WHERE id IN ({_marks(m, len(chunk))}) AND campaign_id = {m} "
            f"AND state IN ({_marks(m, len(wanted))}) AND segment = {m}",
            (batch_id, stamp, *chunk, campaign_id, *wanted, segment),
        ).rowcount
    if moved != len(ids):
        settled = _settled_meanwhile(conn, ids, batch_id)
        if settled:  # the caller drops them from the batch and claims again
            raise SettledMeanwhile(settled)
        # Only possible if another process touched the rows despite the lock: never send.
        raise DeliveryError(
            f"the ledger changed under this run while claiming batch {send_id}; nothing was sent",
            hint="Make sure only one send runs at a time.",
        )
    return batch_id


class SettledMeanwhile(Exception):
    """Some rows being claimed were settled by evidence (a webhook event arrived) after they
    were read: they are sent already. Raised inside the claim's transaction, so nothing of
    the claim stays; the caller claims again without them."""

    def __init__(self, ids: set[int]):
        self.ids = ids
        super().__init__(f"{len(ids)} recipients were settled by evidence while being claimed")


def _settled_meanwhile(conn: Connection, ids: list[int], batch_id: int) -> set[int]:
    """The ids a claim missed because evidence settled them; empty if any other id was
    missed for another reason (then the ledger changed under the run: refuse)."""
    m = placeholder(conn)
    missed: dict[int, tuple[str, str | None]] = {}
    for chunk in chunks(ids):
        for row_id, state, evidence in _fetch(
            conn,
            f"SELECT id, state, evidence FROM {ledger.name} WHERE id IN "
            f"({_marks(m, len(chunk))}) AND (batch_id IS NULL OR batch_id <> {m} "
            "OR state <> 'in_flight')",
            (*chunk, batch_id),
        ):
            missed[row_id] = (state, evidence)
    if missed and all(s in ("sent", "dropped") and ev for s, ev in missed.values()):
        return set(missed)
    return set()


class Answer(NamedTuple):
    """What came back for a batch, as the batches row keeps it."""

    status: int | None  # last HTTP status
    message_id: str | None
    error: str | None
    attempts: int


def finish(conn: Connection, batch_id: int, state: str, answer: Answer) -> None:
    """Record the answer for a batch: the batch row, and its rows leave in_flight together."""
    status, message_id, error, attempts = answer
    m, stamp = placeholder(conn), driver_time(conn, utcnow())
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


def count_states(conn: Connection, campaign_id: str) -> dict[str, int]:
    c = ledger.c
    query = sa.select(c.state, sa.func.count()).where(c.campaign_id == campaign_id)
    return dict(conn.execute(query.group_by(c.state)).all())


def count_sendable(
    conn: Connection,
    campaign_id: str,
    states: tuple[str, ...] = SENDABLE,
    uncertain_before: dt.datetime | None = None,
) -> dict[str, int]:
    """Recipients a run would send, per segment (``uncertain_before``: see next_rows)."""
    c = ledger.c
    wanted: sa.ColumnElement[bool] = c.state.in_(states)
    if uncertain_before is not None and "uncertain" in states:
        ripe = sa.select(batches.c.id).where(
            batches.c.campaign_id == campaign_id, batches.c.created_at < uncertain_before
        )
        wanted = sa.or_(
            c.state.in_([s for s in states if s != "uncertain"]),
            sa.and_(c.state == "uncertain", c.batch_id.in_(ripe)),
        )
    query = sa.select(c.segment, sa.func.count()).where(c.campaign_id == campaign_id, wanted)
    return dict(conn.execute(query.group_by(c.segment)).all())
