"""Bringing a campaign's ledger in line with today's mailing lists, before each run.

People added to a list since the last run get pending rows (so they get the campaign on the
next run); rows not yet sent whose address is now suppressed become ``suppressed`` (for good
when the store suppresses it; while the file names it when it is the campaign's suppression
file, so a name taken out of the file by mistake is mailed after all); rows not
yet sent whose address left every list are parked as ``cancelled`` (and come back if the
address returns); a pending row follows its recipient to a new segment. Uncertain rows are
suppressed or parked the same way (their batch is kept; a parked one comes back as
uncertain), so ``--retry-uncertain`` never mails a suppressed or removed address.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.audience import Recipient
from equip_mailer.store import ledger, utcnow

from .ledger_rows import SENDABLE, chunks, driver_time, placeholder

INSERT_SLICE = 5000  # new ledger rows per executemany in sync_audience
REMOVED = "no longer on any mailing list"
REMOVED_UNCERTAIN = REMOVED + " (its last batch got no answer)"  # comes back as uncertain
SUPPRESSED = "address is suppressed"
IN_FILE = "in the campaign's suppression file"
IN_FILE_UNCERTAIN = IN_FILE + " (its last batch got no answer)"  # comes back as uncertain


@dataclass(frozen=True)
class SyncResult:
    added: int = 0
    suppressed: int = 0
    removed: int = 0
    restored: int = 0
    moved: int = 0  # pending rows whose segment changed (QI level updated)


@dataclass
class _Changes:
    """What a sync does to existing rows: ledger ids per new state, and segment moves."""

    suppress: list[int] = field(default_factory=list)
    in_file: list[int] = field(default_factory=list)  # suppressed while the file names them
    in_file_uncertain: list[int] = field(default_factory=list)
    remove: list[int] = field(default_factory=list)
    restore: list[int] = field(default_factory=list)
    park: list[int] = field(default_factory=list)  # uncertain rows: keep their batch...
    unpark: list[int] = field(default_factory=list)  # ...and come back uncertain
    moves: list[dict[str, Any]] = field(default_factory=list)


def sync_audience(
    conn: Connection,
    campaign_id: str,
    by_segment: dict[str, list[Recipient]],
    suppressed: Iterable[str] = (),
    in_file: Iterable[str] = (),
) -> SyncResult:
    """Bring the ledger in line with today's lists (see the module's docstring).
    ``suppressed``: the store's suppressions; ``in_file``: addresses on the lists that the
    campaign's suppression file left out."""
    suppressed, by_file = set(suppressed), set(in_file)
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
    changes = _plan(existing, wanted, suppressed, by_file)
    _apply(conn, changes, now)
    return SyncResult(
        added=len(new_keys),
        suppressed=len(changes.suppress) + len(changes.in_file) + len(changes.in_file_uncertain),
        removed=len(changes.remove) + len(changes.park),
        restored=len(changes.restore) + len(changes.unpark),
        moved=len(changes.moves),
    )


def _plan(
    existing: dict[str, Any],
    wanted: dict[str, tuple[str, Recipient]],
    suppressed: set[str],
    by_file: set[str],
) -> _Changes:
    """Sort the existing rows (not yet sent, or parked) into what happens to each."""
    out = _Changes()
    for key, row in existing.items():
        parked = row.state in ("cancelled", "suppressed")
        if row.state == "uncertain" or (
            parked and row.error in (REMOVED_UNCERTAIN, IN_FILE_UNCERTAIN)
        ):
            # --retry-uncertain must never mail someone who since unsubscribed or left
            if key in suppressed:
                out.suppress.append(row.id)
            elif key in by_file:
                if row.error != IN_FILE_UNCERTAIN:
                    out.in_file_uncertain.append(row.id)
            elif key not in wanted:
                if row.state != "cancelled":
                    out.park.append(row.id)
            elif parked:
                out.unpark.append(row.id)
        elif row.state in SENDABLE or (parked and row.error in (REMOVED, IN_FILE)):
            if key in suppressed:
                out.suppress.append(row.id)
            elif key in by_file:
                if row.error != IN_FILE:
                    out.in_file.append(row.id)
            elif key not in wanted:
                if row.error != REMOVED:
                    out.remove.append(row.id)
            else:
                if parked:
                    out.restore.append(row.id)
                segment = wanted[key][0]
                if segment != row.segment:
                    out.moves.append(
                        {"b_id": row.id, "b_segment": segment, "b_qi": wanted[key][1].qi_level}
                    )
    return out


def _apply(conn: Connection, changes: _Changes, now: dt.datetime) -> None:
    for ids, state, error in (
        (changes.suppress, "suppressed", SUPPRESSED),
        (changes.in_file, "suppressed", IN_FILE),
        (changes.in_file_uncertain, "suppressed", IN_FILE_UNCERTAIN),
        (changes.remove, "cancelled", REMOVED),
        (changes.restore, "pending", None),
        (changes.park, "cancelled", REMOVED_UNCERTAIN),
        (changes.unpark, "uncertain", "in flight when a send stopped"),
    ):
        for chunk in chunks(ids):
            conn.execute(
                ledger.update()
                .where(ledger.c.id.in_(chunk))
                .values(state=state, error=error, updated_at=now)
            )
    if changes.moves:
        conn.execute(
            ledger.update()
            .where(ledger.c.id == sa.bindparam("b_id"))
            .values(
                segment=sa.bindparam("b_segment"), qi_level=sa.bindparam("b_qi"), updated_at=now
            ),
            changes.moves,
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


def _bulk_insert_pending(conn: Connection, rows: list[tuple[Any, ...]], now: dt.datetime) -> None:
    """executemany straight on the driver: SQLAlchemy's per-row parameter processing costs
    more than the insert itself (~2 s per 100,000 rows)."""
    if not rows:
        return
    mark, stamp = placeholder(conn), driver_time(conn, now)  # SQLite: SQLAlchemy's format
    sql = (
        f"INSERT INTO {ledger.name} ({', '.join(_NEW_ROW_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(_NEW_ROW_COLUMNS))})"
    )
    tail = ("pending", 0, stamp, stamp)
    conn.exec_driver_sql(sql, [row + tail for row in rows])
