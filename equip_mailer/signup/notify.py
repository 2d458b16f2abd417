"""Every change of places becomes its mail in the same transaction: a registration, a
promotion, a cancellation (``registration`` decides, ``mails`` words, the notices ledger
sends exactly once).

Callers hold the ``store.immediate`` transaction in which the change was made and pass its
connection here; once it commits, they wake the notice worker (``Service.notices.wake()``)
or, outside the service, run ``NoticeSender.deliver_pending``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from equip_mailer.send.notices import enqueue

from . import mails
from .catalogue import CourseInfo, load_course
from .registration import (
    Change,
    Outcome,
    Registration,
    course_registrations,
    session_of,
    waiting_position,
)
from .tokens import registration_url


@dataclass(frozen=True)
class Stranded:
    """People holding a place, or waiting for one, on a date no longer in the spec: nobody
    can tell where they should go instead, so the team is told, not them."""

    course: str  # the course's name
    session: str  # the dropped date, "2019-06-27"
    people: int


@dataclass(frozen=True)
class MailLinks:
    """Where links in the mails point: the service's public URL, signed with the link key."""

    public_url: str
    secret: bytes

    def manage(self, registration_id: int) -> str:
        return registration_url(self.public_url, self.secret, registration_id)


def _context(course: CourseInfo, links: MailLinks, reg: Registration, now: dt.datetime):
    return mails.Context(course=course, manage_url=links.manage(reg.id), now=now)


def _course(conn: Connection, course_row: int) -> CourseInfo:
    # With inactive sessions: a registration for a date since dropped from the spec still
    # gets its (cancelled) calendar.
    course = load_course(conn, course_row, include_inactive=True)
    assert course is not None  # a registration's course is never deleted
    return course


def registered(conn: Connection, outcome: Outcome, links: MailLinks, now: dt.datetime) -> int:
    """Enqueue the mail for a new registration (none for an existing one); 1 or 0."""
    if not outcome.created:
        return 0
    reg = outcome.registration
    course = outcome.course or _course(conn, reg.signup_course_id)
    ctx = _context(course, links, reg, now)
    sessions = session_of(course, reg)
    if reg.status == "confirmed":
        notice = mails.place_given(ctx, reg, sessions, promoted=False)
    else:
        notice = mails.waiting(ctx, reg, sessions, waiting_position(conn, reg) or 1)
    return 1 if enqueue(conn, notice) is not None else 0


def promoted(
    conn: Connection, regs: tuple[Registration, ...], links: MailLinks, now: dt.datetime
) -> int:
    """Enqueue "a place has come up" for each registration moved off the waiting list."""
    sent = 0
    for reg in regs:
        course = _course(conn, reg.signup_course_id)
        notice = mails.place_given(
            _context(course, links, reg, now), reg, session_of(course, reg), promoted=True
        )
        sent += enqueue(conn, notice) is not None
    return sent


def changed(
    conn: Connection, change: Change, links: MailLinks, now: dt.datetime, by: str = "self"
) -> int:
    """Enqueue the cancellation's confirmation and the promotions it caused; ``by`` is who
    cancelled ("self", or "team" from the roster page), which the mail's wording follows."""
    sent = 0
    if change.cancelled is not None:
        reg = change.cancelled
        course = _course(conn, reg.signup_course_id)
        had_place = reg.confirmed_at is not None
        notice = mails.cancelled(
            _context(course, links, reg, now),
            reg,
            session_of(course, reg),
            had_place=had_place,
            by_team=by == "team",
        )
        sent += enqueue(conn, notice) is not None
    return sent + promoted(conn, change.promoted, links, now)


def rescheduled(
    conn: Connection,
    course_rows: list[int],
    before: dict[int, tuple[int, bool]],
    links: MailLinks,
    now: dt.datetime,
    skip: frozenset[int] = frozenset(),
) -> tuple[int, list[Stranded]]:
    """After the spec's courses were copied again (``before``: ``session_states`` taken
    first), enqueue the new details for everyone whose dates changed: on a choose-one course,
    the people of a date whose time or venue moved; on an attend-all course, everyone, when
    any of its dates moved, appeared or was dropped. People on a choose-one date that was
    dropped are returned instead. ``skip``: registrations already mailed the new details in
    this transaction (promoted into a place). Returns (mails queued, stranded).

    A date already begun is history, not news: a correction of its time or venue (made
    before ``attendance``, say) mails nobody, and an attend-all course is mailed only when
    a date still to come changed. Nor is anyone ``forget`` erased (no address) mailed."""
    sent, stranded = 0, []
    for row in course_rows:
        course = _course(conn, row)
        changed = {
            s.id
            for s in course.sessions
            if before.get(s.id) != (s.revision, s.active) and s.starts_at > now
        }
        if not changed:
            continue
        dropped: dict[int, int] = {}
        for reg in course_registrations(conn, row):
            if reg.status == "cancelled" or reg.id in skip or not reg.email.strip():
                continue
            if reg.session_id is not None:
                if reg.session_id not in changed:
                    continue
                session = next(s for s in course.sessions if s.id == reg.session_id)
                if not session.active:
                    dropped[session.id] = dropped.get(session.id, 0) + 1
                    continue
                if not before.get(session.id, (0, False))[1]:
                    continue  # a date put back: it is the one they were told
            notice = mails.rescheduled(
                _context(course, links, reg, now),
                reg,
                session_of(course, reg),
                waiting_position(conn, reg),
            )
            sent += enqueue(conn, notice) is not None
        stranded += [
            Stranded(course.name, s.key, dropped[s.id]) for s in course.sessions if s.id in dropped
        ]
    return sent, stranded
