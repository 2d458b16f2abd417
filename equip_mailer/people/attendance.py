"""Recording who attended a session, and what completing a course does to their QI level.

``record_attendance`` is the one way attendance is written: the ``attendance`` command (a
completed sign-in sheet) and the team's roster page both call it, in the caller's
transaction. Marking the same thing twice changes nothing; a correction (attended → absent,
or back) is allowed, logged with who made it and where, and its consequence follows: a
course counts as completed when every session of an ``attend_all`` course was attended, or
any one of a ``choose_one`` course (the person's chosen date, or another date they came to
instead); completing it raises the person to the course's ``leads_to`` level
(``levels.raise_for_course``), and a correction that un-completes it withdraws that raise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.errors import EquipError
from equip_mailer.signup.catalogue import CourseInfo, SessionInfo, load_course
from equip_mailer.store import attendance, attendance_log, registrations, signup_sessions

from . import levels
from .levels import LevelChange


class AttendanceError(EquipError, ValueError):
    """Attendance that cannot be recorded (no such session or registration, a session not
    yet started); nothing was written."""


@dataclass(frozen=True)
class Change:
    attendance_id: int
    email_key: str
    registration_id: int | None  # None: a walk-in (no place on the course)
    course_name: str
    session_key: str
    before: bool | None  # None: not marked before
    attended: bool
    completed: bool  # the course is completed for this person, after this change
    raised: LevelChange | None  # the level this completion gave
    withdrawn: LevelChange | None  # the raise this correction took back

    @property
    def changed(self) -> bool:
        return self.before is None or self.before != self.attended

    @property
    def corrected(self) -> bool:
        return self.before is not None and self.before != self.attended


def _session(conn: Connection, session_id: int) -> tuple[CourseInfo, SessionInfo]:
    row = conn.execute(
        sa.select(signup_sessions.c.signup_course_id).where(signup_sessions.c.id == session_id)
    ).first()
    course = None if row is None else load_course(conn, row[0], include_inactive=True)
    session = None if course is None else course.session(session_id)
    if course is None or session is None:
        raise AttendanceError(f"there is no session {session_id}")
    return course, session


def record_attendance(
    conn: Connection,
    registration_id: int,
    session_id: int,
    attended: bool,
    source: str,
    by: str | None,
    now: dt.datetime,
) -> Change:
    """Mark one registered person present or absent at one session of their course."""
    reg = conn.execute(
        sa.select(registrations.c.signup_course_id, registrations.c.email_key).where(
            registrations.c.id == registration_id
        )
    ).first()
    if reg is None:
        raise AttendanceError(f"there is no registration {registration_id}")
    course, session = _session(conn, session_id)
    if reg.signup_course_id != course.id:
        raise AttendanceError(
            f"registration {registration_id} is for another course than {course.name} "
            f"({session.key})"
        )
    return _record(conn, course, session, reg.email_key, registration_id, attended, source, by, now)


def record_attendance_by_email(
    conn: Connection,
    session_id: int,
    email: str,
    attended: bool,
    source: str,
    by: str | None,
    now: dt.datetime,
) -> Change:
    """Mark a person by address: their registration on the course when they have one, else a
    walk-in (someone booked elsewhere, or who came without booking)."""
    course, session = _session(conn, session_id)
    key = email.strip().lower()
    reg_id = conn.execute(
        sa.select(registrations.c.id).where(
            registrations.c.signup_course_id == course.id, registrations.c.email_key == key
        )
    ).scalar()
    return _record(conn, course, session, key, reg_id, attended, source, by, now)


def _record(
    conn: Connection,
    course: CourseInfo,
    session: SessionInfo,
    email_key: str,
    registration_id: int | None,
    attended: bool,
    source: str,
    by: str | None,
    now: dt.datetime,
) -> Change:
    if session.starts_at > now:
        raise AttendanceError(
            f"{course.name} on {session.key} has not started yet, so nobody can have attended it"
        )
    row = conn.execute(
        sa.select(attendance.c.id, attendance.c.attended).where(
            attendance.c.session_id == session.id, attendance.c.email_key == email_key
        )
    ).first()
    before = None if row is None else bool(row.attended)
    if row is None:
        pk = conn.execute(
            attendance.insert().values(
                signup_course_id=course.id,
                session_id=session.id,
                registration_id=registration_id,
                email_key=email_key,
                attended=attended,
                source=source,
                recorded_by=by,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
        assert pk is not None
        attendance_id = pk[0]
    else:
        attendance_id = row.id
        if before != attended:
            conn.execute(
                attendance.update()
                .where(attendance.c.id == row.id)
                .values(attended=attended, source=source, recorded_by=by, updated_at=now)
            )
    if before != attended:
        conn.execute(
            attendance_log.insert().values(
                attendance_id=attendance_id,
                attended=attended,
                previous=before,
                source=source,
                recorded_by=by,
                at=now,
            )
        )
    completed_on = completion_date(conn, course, email_key)
    raised = withdrawn = None
    if before != attended:
        if completed_on is not None:
            raised = levels.raise_for_course(conn, email_key, course, completed_on, by, now)
        else:
            why = f"attendance corrected: absent from {course.name} on {session.key} ({source})"
            withdrawn = levels.withdraw_course(conn, email_key, course.id, why, now)
    return Change(
        attendance_id=attendance_id,
        email_key=email_key,
        registration_id=registration_id,
        course_name=course.name,
        session_key=session.key,
        before=before,
        attended=attended,
        completed=completed_on is not None,
        raised=raised,
        withdrawn=withdrawn,
    )


def completion_date(conn: Connection, course: CourseInfo, email_key: str) -> dt.date | None:
    """The day a person completed ``course`` (the last session that completed it, London
    date), or None: every active session of an attend_all course, any of a choose_one."""
    attended = set(
        conn.execute(
            sa.select(attendance.c.session_id).where(
                attendance.c.signup_course_id == course.id,
                attendance.c.email_key == email_key,
                attendance.c.attended.is_(True),
            )
        ).scalars()
    )
    sessions = [s for s in course.sessions if s.active]
    came = [s for s in sessions if s.id in attended]
    if not came or (course.attend_all and len(came) < len(sessions)):
        return None
    pick = max if course.attend_all else min
    return pick(came, key=lambda s: s.starts_at).starts_local.date()
