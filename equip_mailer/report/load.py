"""Reading one campaign out of the store into ``Frames``: the only SQL a report runs.

Sized for a million events in seconds and modest memory: a few narrow SELECTs, only the
event types a report uses, rows fetched through the raw DB-API cursor in chunks and turned
into numbers and categoricals before the next chunk arrives.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api.types import union_categoricals
from sqlalchemy.engine import Connection, Engine

from equip_mailer.errors import EquipError
from equip_mailer.store import (
    batches,
    campaigns,
    events,
    ledger,
    links,
    registrations,
    signup_courses,
    signup_sessions,
)

from .model import PLACES_COLUMNS, SIGNUP_COLUMNS, Frames

# Only these events matter to a report; the rest (processed, deferred, ...) are never read.
REPORT_EVENTS = ("delivered", "bounce", "dropped", "open", "click", "unsubscribe", "spamreport")
# Stored names read as one of the above (SendGrid's unsubscribe from a suppression group).
EVENT_ALIASES = {"group_unsubscribe": "unsubscribe"}
NOT_GIVEN = "(not given)"

LEDGER_COLUMNS = ["id", "segment", "practice", "role", "state", "sent_at"]
EVENT_COLUMNS = ["event", "at", "source", "ledger_id", "link_id", "machine", "machine_reason"]
LINK_COLUMNS = ["id", "key", "course_id", "session", "label"]
BATCH_COLUMNS = ["id", "segment", "state", "size", "created_at"]

# A SQL expression for a timestamp column in whole seconds since 1970, per dialect.
Epoch = Callable[[Any], Any]


class ReportError(EquipError, LookupError):
    """The report cannot be made (unknown campaign id)."""


def empty_frames(campaign_id: str, subject: str | None = None) -> Frames:
    """Frames for a campaign the store has never seen: every table reads 'not sent yet'."""
    return Frames(
        campaign_id=campaign_id,
        subject=subject,
        in_store=False,
        ledger=_typed_ledger(pd.DataFrame(columns=LEDGER_COLUMNS)),
        events=_typed_events(pd.DataFrame(columns=EVENT_COLUMNS)),
        links=pd.DataFrame(columns=LINK_COLUMNS),
        batches=pd.DataFrame(columns=BATCH_COLUMNS),
    )


def known_campaigns(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(campaigns.c.id).order_by(campaigns.c.id))]


def load_frames(engine: Engine, campaign_id: str) -> Frames:
    """Read one campaign from the store with a few narrow SELECTs.

    Sized for a million events in seconds: only the report's event types are read, and each
    event comes back as four integers (see ``_read_events``), so no text is parsed or copied
    per row. Raises ReportError if the campaign id is not in the store.
    """
    with engine.connect() as conn:
        subject = _subject(conn, engine, campaign_id)
        epoch = _epoch_seconds(conn.dialect.name)
        ledger_frame = _read(
            conn,
            sa.select(
                ledger.c.id,
                ledger.c.segment,
                ledger.c.practice,
                ledger.c.role,
                ledger.c.state,
                epoch(ledger.c.sent_at).label("sent_at"),
            ).where(ledger.c.campaign_id == campaign_id),
            LEDGER_COLUMNS,
            _typed_ledger,
        )
        event_frame = _read_events(conn, campaign_id, epoch)
        link_frame = _read(
            conn,
            sa.select(
                links.c.id,
                links.c.key,
                links.c.course_id,
                links.c.session,
                links.c.label,
            )
            .where(links.c.campaign_id == campaign_id)
            .order_by(links.c.id),
            LINK_COLUMNS,
        )
        batch_frame = _read(
            conn,
            sa.select(
                batches.c.id,
                batches.c.segment,
                batches.c.state,
                batches.c.size,
                epoch(batches.c.created_at).label("created_at"),
            ).where(batches.c.campaign_id == campaign_id),
            BATCH_COLUMNS,
        )
        signup_frame, places_frame = _read_signups(conn, campaign_id)
    batch_frame["created_at"] = _from_epoch(batch_frame["created_at"])
    return Frames(
        campaign_id=campaign_id,
        subject=subject,
        ledger=ledger_frame,
        events=event_frame,
        links=link_frame,
        batches=batch_frame,
        signups=signup_frame,
        places=places_frame,
    )


def _read_signups(conn: Connection, campaign_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The campaign's live registrations (one row each, no personal data) and its courses'
    sessions with their places: a few hundred rows, read plainly."""
    regs = conn.execute(
        sa.select(
            sa.func.coalesce(registrations.c.ledger_id, -1),
            registrations.c.course_id,
            signup_sessions.c.session_key,
            registrations.c.status,
            registrations.c.source,
            registrations.c.email_key,
        )
        .select_from(
            registrations.outerjoin(
                signup_sessions, signup_sessions.c.id == registrations.c.session_id
            )
        )
        .where(
            registrations.c.campaign_id == campaign_id,
            registrations.c.status.in_(("confirmed", "waiting")),
        )
        .order_by(registrations.c.id)
    ).all()
    sessions = conn.execute(
        sa.select(
            signup_courses.c.course_id,
            signup_courses.c.name,
            signup_courses.c.hosted,
            signup_courses.c.schedule == "attend_all",
            signup_sessions.c.session_key,
            signup_sessions.c.starts_at,
            signup_sessions.c.places,
        )
        .select_from(
            signup_courses.join(
                signup_sessions, signup_sessions.c.signup_course_id == signup_courses.c.id
            )
        )
        .where(
            signup_courses.c.campaign_id == campaign_id,
            signup_courses.c.active.is_(True),
            signup_sessions.c.active.is_(True),
        )
        .order_by(signup_courses.c.id, signup_sessions.c.position)
    ).all()
    signup_frame = pd.DataFrame([tuple(r) for r in regs], columns=SIGNUP_COLUMNS)
    signup_frame["ledger_id"] = pd.to_numeric(signup_frame["ledger_id"]).astype("int64")
    # The address only tells one person's registrations apart from another's: a number
    # stands for it, so this frame, like the report's others, holds no address.
    signup_frame["person"] = pd.factorize(signup_frame["person"])[0].astype("int64")
    places_frame = pd.DataFrame([tuple(r) for r in sessions], columns=PLACES_COLUMNS)
    places_frame["places"] = places_frame["places"].astype("object")
    places_frame["hosted"] = places_frame["hosted"].astype(bool)
    places_frame["attend_all"] = places_frame["attend_all"].astype(bool)
    return signup_frame, places_frame


def _subject(conn: Connection, engine: Engine, campaign_id: str) -> str | None:
    """The campaign's subject line; a ReportError naming the known campaigns if it has no row."""
    row = conn.execute(sa.select(campaigns.c.subject).where(campaigns.c.id == campaign_id)).first()
    if row is None:
        known = known_campaigns(engine)
        raise ReportError(
            f"there is no campaign {campaign_id!r} in the database",
            hint=(
                "Campaigns in the database: " + ", ".join(known) + "."
                if known
                else "The database has no campaigns yet; send one first, or give the campaign "
                "spec (campaigns/....yaml) to get a 'not sent yet' report."
            ),
        )
    return row[0]


def _epoch_seconds(dialect: str) -> Epoch:
    if dialect == "sqlite":
        if sqlite3.sqlite_version_info >= (3, 38, 0):
            return lambda col: sa.func.unixepoch(col)  # faster than strftime('%s')
        return lambda col: sa.cast(sa.func.strftime("%s", col), sa.BigInteger)
    return lambda col: sa.cast(sa.extract("epoch", col), sa.BigInteger)


def _read_events(conn: Connection, campaign_id: str, epoch: Epoch) -> pd.DataFrame:
    """The campaign's report events as (kind, at, ledger_id, link_id) integers, then a frame.

    Creating a Python string per row is what makes a million rows slow, so the text columns
    are packed into one integer in SQL: bits 0-2 the event (index in REPORT_EVENTS), bit 3
    "source is our tracker", bit 4 "machine", bits 5+ the machine reason (index + 1 in the
    campaign's few distinct reasons, read first). NULL ids come back as -1.
    """
    reasons = [
        r[0]
        for r in conn.execute(
            sa.select(events.c.machine_reason)
            .distinct()
            .where(
                events.c.campaign_id == campaign_id,
                events.c.event == "click",
                events.c.machine_reason.is_not(None),
            )
            .order_by(events.c.machine_reason)
        )
    ]
    codes = {name: i for i, name in enumerate(REPORT_EVENTS)}
    codes.update({alias: codes[name] for alias, name in EVENT_ALIASES.items()})
    event_code = sa.case(codes, value=events.c.event, else_=0)
    packed = (
        event_code
        + 8 * sa.case((events.c.source == "tracker", 1), else_=0)
        + 16 * sa.case((events.c.machine, 1), else_=0)
    )
    if reasons:
        packed = packed + 32 * sa.case(
            {r: i + 1 for i, r in enumerate(reasons)}, value=events.c.machine_reason, else_=0
        )
    stmt = sa.select(
        packed.label("kind"),
        epoch(events.c.at).label("at"),
        sa.func.coalesce(events.c.ledger_id, -1).label("ledger_id"),
        sa.func.coalesce(events.c.link_id, -1).label("link_id"),
    ).where(
        events.c.campaign_id == campaign_id, events.c.event.in_([*REPORT_EVENTS, *EVENT_ALIASES])
    )
    values = _read_ints(conn, stmt, 4)
    kind = values[:, 0]
    reason_codes = (kind >> 5) - 1
    return pd.DataFrame(
        {
            "event": pd.Categorical.from_codes(kind & 7, categories=pd.Index(list(REPORT_EVENTS))),
            "at": values[:, 1].astype("datetime64[s]"),
            "source": pd.Categorical.from_codes(
                (kind >> 3) & 1, categories=pd.Index(["webhook", "tracker"])
            ),
            "ledger_id": values[:, 2],
            "link_id": values[:, 3],
            "machine": ((kind >> 4) & 1).astype(bool),
            "machine_reason": pd.Categorical.from_codes(
                np.where(reason_codes < len(reasons), reason_codes, -1),
                categories=pd.Index(reasons, dtype="object"),
            ),
        }
    )


def _read_ints(
    conn: Connection, stmt: sa.Select[Any], width: int, chunk: int = 200_000
) -> np.ndarray:
    """An (n, width) int64 array of an all-integer SELECT, fetched chunk by chunk."""
    parts = [
        np.array(rows, dtype=np.int64).reshape(-1, width)
        for rows in _fetch_chunks(conn, stmt, chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)


def _fetch_chunks(conn: Connection, stmt: sa.Select[Any], chunk: int) -> Iterator[list[tuple]]:
    """Rows of ``stmt`` in lists of at most ``chunk`` tuples, so a caller can convert each
    before the next is fetched."""
    cur, args, sql = _raw(conn, stmt)
    try:
        cur.execute(sql, args)
        while rows := cur.fetchmany(chunk):
            yield rows
    finally:
        cur.close()


def _raw(conn: Connection, stmt: sa.Select[Any]) -> tuple[Any, Any, str]:
    """A DB-API cursor with the compiled SQL and its parameters: SQLAlchemy Row objects cost
    more than the query itself for a million rows."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args = [params[name] for name in compiled.positiontup or ()] if compiled.positional else params
    driver = conn.connection.driver_connection
    assert driver is not None  # an open Connection always has its DB-API connection
    return driver.cursor(), args, str(compiled)


def _read(
    conn: Connection,
    stmt: sa.Select[Any],
    columns: list[str],
    convert: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    chunk: int = 200_000,
) -> pd.DataFrame:
    """Rows of ``stmt`` as a frame, fetched in chunks through the raw DB-API cursor.

    Holding every row as a Python tuple at once would cost memory; each chunk is converted
    (``convert``: numbers and categoricals) before the next is fetched, then joined.
    """
    convert = convert or (lambda frame: frame)
    parts = [
        convert(pd.DataFrame.from_records(rows, columns=columns, coerce_float=False))
        for rows in _fetch_chunks(conn, stmt, chunk)
    ]
    if not parts:
        return convert(pd.DataFrame(columns=columns))
    if len(parts) == 1:
        return parts[0]
    out = {}
    for col in parts[0].columns:
        if isinstance(parts[0][col].dtype, pd.CategoricalDtype):
            out[col] = pd.Series(union_categoricals([p[col] for p in parts], ignore_order=True))
        else:
            out[col] = pd.concat([p[col] for p in parts], ignore_index=True)
    return pd.DataFrame(out)


def _from_epoch(values: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit="s")


def _cat(values: pd.Series) -> pd.Categorical:
    """Repeated text as a categorical with plain-object categories, so chunks can be joined."""
    values = values.astype("object")
    categories = pd.Index(sorted(set(values.dropna())), dtype="object")
    return pd.Categorical(values, categories=categories)


def _given(values: pd.Series) -> pd.Series:
    """Blank and missing alike read NOT_GIVEN (a list's empty cell is stored as '')."""
    values = values.astype("object")
    return values.where(values.notna() & (values.astype(str).str.strip() != ""), NOT_GIVEN)


def _typed_ledger(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "id": pd.to_numeric(frame["id"]).astype("int64"),
            "segment": _cat(frame["segment"]),
            "practice": _cat(_given(frame["practice"])),
            "role": _cat(_given(frame["role"])),
            "state": _cat(frame["state"]),
            "sent_at": _from_epoch(frame["sent_at"]),
        }
    )
    return out


def _typed_events(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event": _cat(frame["event"]),
            "at": _from_epoch(frame["at"]),
            "source": _cat(frame["source"]),
            "ledger_id": pd.to_numeric(frame["ledger_id"]).astype("int64"),
            "link_id": pd.to_numeric(frame["link_id"]).astype("int64"),
            "machine": pd.to_numeric(frame["machine"]).astype("bool"),
            "machine_reason": _cat(frame["machine_reason"]),
        }
    )
