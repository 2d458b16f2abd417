"""A completed sign-in sheet in, attendance recorded: the roster's own CSV/XLSX with its
"Attended" column filled in by the trainer, or a plain list of ``email, session`` rows (one
per session attended).

Rows are matched by ``Registration`` (the roster's stable id), falling back to Email +
Session; someone with no place on the course (booked elsewhere, or came anyway) is recorded
as a walk-in. The whole sheet is checked before anything is written: one bad row (an
unknown id, a date that is not a session, "maybe" in the Attended column, two rows marking
one person both ways) stops the import
with every such row named, so a half-imported sheet never exists. Importing the same sheet
twice changes nothing; a sheet that says "no" where an earlier one said "yes" is a
correction, recorded as such.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.cell_values import normalise_email
from equip_mailer.compose.list_files import Reject, column_indexes, header_key, read_table
from equip_mailer.errors import EquipError
from equip_mailer.signup.catalogue import CourseInfo, SessionInfo, load_course
from equip_mailer.store import registrations, signup_courses

from .attendance import Change, record_attendance, record_attendance_by_email
from .records import erased_among

YES = {"yes", "y", "x", "✓", "✔", "1", "true", "attended", "present", "came"}
NO = {"no", "n", "0", "false", "absent", "dna", "didnotattend", "noshow"}
_HEADERS = {
    "registration": {"registration", "registrationid", "registrationno", "bookingid"},
    "session": {"session", "sessiondate", "date", "day"},
    "attended": {"attended", "attendance", "present", "signedin"},
    "course": {"course", "coursename", "courseid"},
}


class SheetError(EquipError, ValueError):
    """The sheet has rows that cannot be recorded; nothing was imported."""

    def __init__(self, rejects: list[Reject], shown: str):
        self.rejects = rejects
        count = len(rejects)
        super().__init__(
            f"{count} row{'s' if count != 1 else ''} cannot be recorded, so nothing was "
            "imported:\n" + "\n".join(str(r) for r in rejects[:50]),
            where=shown,
            hint="Fix the rows named above in the sheet, then run the same command again "
            "(rows already recorded are not recorded twice).",
        )


@dataclass(frozen=True)
class Mark:
    """One row of a sheet: who, which session, and whether they came."""

    where: str  # "rosters/basics-2019-06-27.csv:4"
    attended: bool
    registration_id: int | None
    email: str | None
    session_key: str | None  # "2019-06-27"
    course: str | None  # the Course column, when the sheet has one


@dataclass
class Imported:
    """What an import did, for the command to print."""

    changes: list[Change] = field(default_factory=list)
    blank: int = 0  # rows whose Attended cell was left empty (not marked yet)
    walk_ins: list[str] = field(default_factory=list)  # rows with no place on the course
    erased: list[str] = field(default_factory=list)  # rows naming someone forget erased

    @property
    def recorded(self) -> list[Change]:
        return [c for c in self.changes if c.before is None]

    @property
    def corrected(self) -> list[Change]:
        return [c for c in self.changes if c.corrected]

    @property
    def unchanged(self) -> int:
        return sum(1 for c in self.changes if not c.changed)

    @property
    def completed(self) -> list[Change]:
        return [c for c in self.changes if c.changed and c.completed and c.attended]


def _session_key(value: str) -> str | None:
    """A session's date as its key, from what a spreadsheet makes of it: "2019-06-27",
    "2019-06-27 00:00:00" (an Excel date cell), "27/06/2019" (a UK date)."""
    value = value.strip()
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?", value)
    if m is None:
        m2 = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", value)
        if m2 is None:
            return None
        m_year, m_month, m_day = m2.group(3), m2.group(2), m2.group(1)
    else:
        m_year, m_month, m_day = m.group(1), m.group(2), m.group(3)
    try:
        return dt.date(int(m_year), int(m_month), int(m_day)).isoformat()
    except ValueError:
        return None


def _mark(value: str) -> bool | None:
    word = re.sub(r"[\s'_-]", "", value.strip().lower())
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValueError(value)


def read_sheet(path: Path, shown: str) -> tuple[list[Mark], list[Reject], int]:
    """The marks of one sheet, the rows that cannot be read, and the rows left blank."""
    if not path.is_file():  # before read_table, whose hint is about the spec's lists
        raise EquipError(
            "no such file" if not path.exists() else "is not a file",
            where=shown,
            hint="Give the roster file (CSV or XLSX) with its Attended column filled in, "
            "as equip-mailer roster wrote it under rosters/<campaign id>/.",
        )
    table = read_table(path, shown, need="email")
    columns = column_indexes(table)
    for i, heading in enumerate(table.header):
        for name, spellings in _HEADERS.items():
            if header_key(heading) in spellings and name not in columns:
                columns[name] = i
    if "session" not in columns:
        raise EquipError(
            "has no Session column (the session's date, e.g. 2019-06-27)",
            where=shown,
            hint="Use the roster file as it was written, or a list with the columns "
            "email and session.",
        )
    marks: list[Mark] = []
    rejects = list(table.broken)
    blank = 0
    for cells, where in zip(table.rows, table.wheres, strict=True):
        if not "".join(cells).strip():
            continue

        def cell(name: str, cells: list[str] = cells) -> str:
            i = columns.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""

        problems = []
        attended: bool | None = True  # a plain list names the people who came
        if "attended" in columns:
            if not cell("attended"):
                blank += 1
                continue
            try:
                attended = _mark(cell("attended"))
            except ValueError:
                problems.append(
                    f'Attended "{cell("attended")[:40]}" is not yes or no '
                    "(yes/y/x/✓/1/attended, or no/n/0/absent)"
                )
        registration_id = None
        if cell("registration"):
            if not cell("registration").isdigit():
                problems.append(f'Registration "{cell("registration")[:40]}" is not a number')
            else:
                registration_id = int(cell("registration"))
        email = None
        if cell("email"):
            email, problem = normalise_email(cell("email"))
            if problem:
                problems.append(problem)
        elif registration_id is None:
            problems.append("has neither an email nor a Registration number")
        session_key = _session_key(cell("session"))
        if session_key is None:
            problems.append(f'Session "{cell("session")[:40]}" is not a date (e.g. 2019-06-27)')
        if problems:
            rejects.append(Reject(where, "; ".join(problems)))
            continue
        assert attended is not None
        marks.append(
            Mark(where, attended, registration_id, email, session_key, cell("course") or None)
        )
    return marks, rejects, blank


def _courses(conn: Connection, campaign_id: str) -> list[CourseInfo]:
    ids = conn.execute(
        sa.select(signup_courses.c.id)
        .where(signup_courses.c.campaign_id == campaign_id)
        .order_by(signup_courses.c.id)
    ).scalars()
    return [c for c in (load_course(conn, i, include_inactive=True) for i in ids) if c]


def _registration(conn: Connection, registration_id: int):
    return conn.execute(
        sa.select(
            registrations.c.id,
            registrations.c.signup_course_id,
            registrations.c.email_key,
            registrations.c.campaign_id,
        ).where(registrations.c.id == registration_id)
    ).first()


def _place(
    conn: Connection, mark: Mark, courses: list[CourseInfo], campaign_id: str
) -> tuple[SessionInfo, int | None, str | None] | str:
    """(session, registration id, email) for one mark, or why it cannot be recorded."""
    if mark.registration_id is not None:
        reg = _registration(conn, mark.registration_id)
        if reg is None or reg.campaign_id != campaign_id:
            return f"Registration {mark.registration_id} is not a sign-up of {campaign_id}"
        if mark.email and mark.email.lower() != reg.email_key:
            return (
                f"Registration {mark.registration_id} belongs to another address than "
                f"{mark.email} (was the row's email edited?)"
            )
        course = next(c for c in courses if c.id == reg.signup_course_id)
        session = next((s for s in course.sessions if s.key == mark.session_key), None)
        if session is None:
            return f"{course.name} has no session on {mark.session_key}"
        return session, reg.id, None
    wanted = [
        c
        for c in courses
        if mark.course is None or mark.course.lower() in (c.name.lower(), c.course_id.lower())
    ]
    if not wanted:  # a typo in the Course column: say so, not that the date is wrong
        names = ", ".join(c.name for c in courses)
        return (
            f'Course "{mark.course[:40] if mark.course else ""}" is not a course of '
            f"{campaign_id} (its courses: {names})"
        )
    candidates = [
        (c, s) for c in wanted for s in c.sessions if s.key == mark.session_key and s.active
    ]
    if not candidates:
        if mark.course is not None:
            return f"{wanted[0].name} has no session on {mark.session_key}"
        return f"no course of {campaign_id} has a session on {mark.session_key}"
    assert mark.email is not None
    if len(candidates) > 1:  # two courses meet that day: the one they booked
        booked = [
            (c, s)
            for c, s in candidates
            if conn.execute(
                sa.select(registrations.c.id).where(
                    registrations.c.signup_course_id == c.id,
                    registrations.c.email_key == mark.email.lower(),
                )
            ).first()
        ]
        if len(booked) != 1:
            names = " and ".join(c.name for c, _ in candidates)
            return f"{names} both meet on {mark.session_key}: add a Course column"
        candidates = booked
    return candidates[0][1], None, mark.email


def _contradictions(
    planned: list[tuple[Mark, SessionInfo, int | None, str | None]],
) -> list[Reject]:
    """Two rows of one sheet marking the same person at the same session differently (a
    copied row, two trainers' sheets pasted together): which is right is not ours to guess,
    and recording both would file the later one as a "correction" of the earlier."""
    first: dict[tuple[int, int | str], Mark] = {}
    found = []
    for mark, session, reg_id, email in planned:
        # by address when the row gives one (a roster row gives both), so that a row matched
        # by Registration and one typed with the address alone are the same person
        address = (mark.email or email or "").strip().lower()
        who: int | str = address or (reg_id if reg_id is not None else "")
        seen = first.setdefault((session.id, who), mark)
        if seen.attended != mark.attended:
            said = {True: "attended", False: "absent"}
            found.append(
                Reject(
                    mark.where,
                    f"marks the same person {said[mark.attended]} on {session.key}, but "
                    f"{seen.where} marks them {said[seen.attended]}: keep one of the two rows",
                )
            )
    return found


def import_sheet(
    engine: Engine,
    campaign_id: str,
    path: Path,
    shown: str,
    by: str | None,
    now: dt.datetime,
    secret: bytes | None = None,
) -> Imported:
    """Check every row of a sheet, then record them all in one transaction (or none).

    With the link ``secret``, a row naming by address someone ``forget`` erased is left
    out and listed: recording it would put their address back in the store."""
    marks, rejects, blank = read_sheet(path, shown)
    result = Imported(blank=blank)
    with engine.begin() as conn:
        if secret is not None:
            gone = erased_among(conn, secret, [m.email for m in marks if m.email])
            result.erased = [m.where for m in marks if m.email and m.email.lower() in gone]
            marks = [m for m in marks if not (m.email and m.email.lower() in gone)]
        courses = _courses(conn, campaign_id)
        planned: list[tuple[Mark, SessionInfo, int | None, str | None]] = []
        for mark in marks:
            place = _place(conn, mark, courses, campaign_id)
            if isinstance(place, str):
                rejects.append(Reject(mark.where, place))
                continue
            session, reg_id, email = place
            if session.starts_at > now:
                rejects.append(Reject(mark.where, f"the session on {session.key} is still to come"))
                continue
            planned.append((mark, session, reg_id, email))
        rejects += _contradictions(planned)
        if rejects:
            raise SheetError(rejects, shown)
        for mark, session, reg_id, email in planned:
            source = f"sheet {mark.where}"
            if reg_id is not None:
                change = record_attendance(conn, reg_id, session.id, mark.attended, source, by, now)
            else:
                assert email is not None
                change = record_attendance_by_email(
                    conn, session.id, email, mark.attended, source, by, now
                )
                if change.registration_id is None:
                    result.walk_ins.append(mark.where)
            result.changes.append(change)
    return result


def summary(result: Imported) -> Sequence[str]:
    """What an import did, in lines for the terminal."""
    lines = [
        f"Recorded {len(result.recorded):,} new mark(s), {len(result.corrected):,} "
        f"correction(s); {result.unchanged:,} row(s) were recorded already"
        + (f"; {result.blank:,} row(s) left blank (not marked)" if result.blank else "")
        + "."
    ]
    for change in result.corrected:
        lines.append(
            f"  corrected: {change.course_name} {change.session_key}: "
            f"{'attended' if change.attended else 'absent'} (was "
            f"{'attended' if change.before else 'absent'})"
        )
    if result.walk_ins:
        lines.append(
            f"{len(result.walk_ins):,} row(s) for people with no place on the course "
            "(recorded as walk-ins): "
            + ", ".join(result.walk_ins[:10])
            + (" …" if len(result.walk_ins) > 10 else "")
        )
    if result.erased:
        lines.append(
            f"{len(result.erased):,} row(s) for people erased at their request, not recorded: "
            + ", ".join(result.erased[:10])
            + (" …" if len(result.erased) > 10 else "")
        )
    completions: dict[str, int] = {}
    for change in result.completed:
        completions[change.course_name] = completions.get(change.course_name, 0) + 1
    for name, n in sorted(completions.items()):
        lines.append(f"{n:,} {'person' if n == 1 else 'people'} completed {name}.")
    raised: dict[tuple[str, str], int] = {}
    for change in result.changes:
        if change.raised is not None:
            what = (change.raised.level, change.raised.why)
            raised[what] = raised.get(what, 0) + 1
    for (level, why), n in sorted(raised.items()):
        lines.append(f"{n:,} {'person' if n == 1 else 'people'} now at {level} {why}.")
    withdrawn = sum(1 for c in result.changes if c.withdrawn is not None)
    if withdrawn:
        lines.append(f"{withdrawn:,} level raise(s) taken back after a correction.")
    return lines
