"""QI levels that follow training: completing a course raises a person to its ``leads_to``
level (never lowers it), the team can set a level by hand with a reason, and every change is
kept with its source and date.

The level a mailing list gives is not copied here. Lists stay the manager's: check and send
take, per person, the higher of the list's level and the one recorded here
(``people.records``), so completing EQUIP Basics moves someone to the "ready for action"
segment next quarter without anyone editing a spreadsheet, and a list that already says
more wins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from equip_mailer.compose.campaign import QI_LEVELS, level_rank
from equip_mailer.errors import EquipError
from equip_mailer.signup.catalogue import CourseInfo
from equip_mailer.store import person_levels


@dataclass(frozen=True)
class LevelChange:
    id: int
    email_key: str
    level: str
    previous_level: str | None
    source: str  # course | hand
    reason: str  # "completed EQUIP Basics, 2019-06-27" or the team's words
    signup_course_id: int | None
    campaign_id: str | None
    course_name: str | None
    effective_on: dt.date
    recorded_by: str | None
    created_at: dt.datetime
    withdrawn_at: dt.datetime | None
    withdrawn_reason: str | None

    @classmethod
    def of(cls, row: Row) -> LevelChange:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})

    @property
    def why(self) -> str:
        """How check words the move: "after EQUIP Basics, 2019-06-27" or "set by hand: …"."""
        if self.source == "course":
            return f"after {self.course_name}, {self.effective_on.isoformat()}"
        return f"set by hand on {self.effective_on.isoformat()} ({self.reason})"


def _check_level(level: str) -> str:
    if level not in QI_LEVELS:
        raise EquipError(
            f"{level!r} is not a QI level", hint=f"Use one of: {', '.join(QI_LEVELS)}."
        )
    return level


def history(conn: Connection, email_key: str) -> list[LevelChange]:
    """Every recorded change for one person, oldest first, withdrawn ones included."""
    rows = conn.execute(
        sa.select(person_levels)
        .where(person_levels.c.email_key == email_key.lower())
        .order_by(person_levels.c.id)
    )
    return [LevelChange.of(r) for r in rows]


def current(conn: Connection, email_key: str) -> LevelChange | None:
    """The change that gives a person their recorded level now (newest not withdrawn)."""
    row = conn.execute(
        sa.select(person_levels)
        .where(
            person_levels.c.email_key == email_key.lower(),
            person_levels.c.withdrawn_at.is_(None),
        )
        .order_by(person_levels.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else LevelChange.of(row)


def recorded_levels(conn: Connection) -> dict[str, LevelChange]:
    """Everyone's current recorded level, by lower-cased address: one pass, for a send."""
    found: dict[str, LevelChange] = {}
    rows = conn.execute(
        sa.select(person_levels)
        .where(person_levels.c.withdrawn_at.is_(None))
        .order_by(person_levels.c.id)
    )
    for row in rows:
        found[row.email_key] = LevelChange.of(row)  # newest wins
    return found


def _insert(conn: Connection, **values) -> LevelChange:
    pk = conn.execute(person_levels.insert().values(**values)).inserted_primary_key
    assert pk is not None
    row = conn.execute(sa.select(person_levels).where(person_levels.c.id == pk[0])).one()
    return LevelChange.of(row)


def raise_for_course(
    conn: Connection,
    email_key: str,
    course: CourseInfo,
    completed_on: dt.date,
    by: str | None,
    now: dt.datetime,
) -> LevelChange | None:
    """Record that completing ``course`` raised a person to its ``leads_to`` level; None when
    the course leads nowhere, this completion is recorded already, or the person's recorded
    level is that high already (a level never goes down by training)."""
    if not course.leads_to:
        return None
    key = email_key.lower()
    already = conn.execute(
        sa.select(person_levels.c.id).where(
            person_levels.c.email_key == key,
            person_levels.c.signup_course_id == course.id,
            person_levels.c.withdrawn_at.is_(None),
        )
    ).first()
    if already is not None:
        return None
    now_level = current(conn, key)
    before = now_level.level if now_level else None
    if before is not None and level_rank(before) >= level_rank(course.leads_to):
        return None
    return _insert(
        conn,
        email_key=key,
        level=course.leads_to,
        previous_level=before,
        source="course",
        reason=f"completed {course.name}, {completed_on.isoformat()}",
        signup_course_id=course.id,
        campaign_id=course.campaign_id,
        course_name=course.name,
        effective_on=completed_on,
        recorded_by=by,
        created_at=now,
    )


def withdraw_course(
    conn: Connection, email_key: str, course_row: int, why: str, now: dt.datetime
) -> LevelChange | None:
    """Undo the raise a completion gave, when a correction shows the course was not completed
    after all; the row stays, marked withdrawn, so the history shows both."""
    row = conn.execute(
        sa.select(person_levels).where(
            person_levels.c.email_key == email_key.lower(),
            person_levels.c.signup_course_id == course_row,
            person_levels.c.withdrawn_at.is_(None),
        )
    ).first()
    if row is None:
        return None
    conn.execute(
        person_levels.update()
        .where(person_levels.c.id == row.id)
        .values(withdrawn_at=now, withdrawn_reason=why)
    )
    return LevelChange.of(
        conn.execute(sa.select(person_levels).where(person_levels.c.id == row.id)).one()
    )


def set_level(
    conn: Connection, email: str, level: str, reason: str, by: str | None, now: dt.datetime
) -> LevelChange:
    """Set a person's recorded level by hand (up or down), with the reason the team gives."""
    _check_level(level)
    if not reason.strip():
        raise EquipError(
            "a level set by hand needs a reason", hint='Add e.g. --reason "finished a QI project"'
        )
    key = email.strip().lower()
    before = current(conn, key)
    return _insert(
        conn,
        email_key=key,
        level=level,
        previous_level=before.level if before else None,
        source="hand",
        reason=reason.strip(),
        effective_on=now.date(),
        recorded_by=by,
        created_at=now,
    )


def describe_moves(moves: Iterable[tuple[str, LevelChange]]) -> list[str]:
    """Who moved and why, one line per reason, biggest group first:
    "12 people now at basics after EQUIP Basics, 2019-06-27"."""
    groups: dict[tuple[str, str], int] = {}
    for _key, change in moves:
        what = (change.level, change.why)
        groups[what] = groups.get(what, 0) + 1
    ordered = sorted(groups.items(), key=lambda item: (-item[1], item[0]))
    return [
        f"{n:,} {'person' if n == 1 else 'people'} now at {level} {why}"
        for (level, why), n in ordered
    ]
