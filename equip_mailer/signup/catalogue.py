"""The courses and sessions as the sign-up service sees them: copied from the spec into the
store when a campaign is sent or checked, read back from the store by the service.

The service may run on another server, against the same database, and must never need the
spec file: ``register_courses`` writes everything a sign-up page and its mails need (names,
London times as UTC, venues, places, schedule, waiting list, deadline, sender), and
``load_course`` / ``find_course`` read it back as a ``CourseInfo``. Running it again after
the spec changed updates rows in place; a session whose time or venue changed gets a new
``revision`` (so a calendar sent again replaces the entry), and courses or sessions that
left the spec are kept but marked inactive (their registrations stay).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.campaign import Campaign, Course, Session
from equip_mailer.store import (
    campaigns,
    ensure_campaign,
    signup_courses,
    signup_sessions,
    utcnow,
)

LONDON = ZoneInfo("Europe/London")


def london_to_utc(local: dt.datetime) -> dt.datetime:
    """A London wall-clock time as the store's naive UTC."""
    return local.replace(tzinfo=LONDON).astimezone(dt.UTC).replace(tzinfo=None)


def utc_to_london(utc: dt.datetime) -> dt.datetime:
    return utc.replace(tzinfo=dt.UTC).astimezone(LONDON)


@dataclass(frozen=True)
class SessionInfo:
    id: int
    key: str  # "2019-06-27"
    position: int
    starts_at: dt.datetime  # naive UTC, as stored
    ends_at: dt.datetime
    venue: str | None
    places: int | None  # None: unlimited
    active: bool
    revision: int

    @property
    def starts_local(self) -> dt.datetime:
        return utc_to_london(self.starts_at)

    @property
    def ends_local(self) -> dt.datetime:
        return utc_to_london(self.ends_at)


@dataclass(frozen=True)
class CourseInfo:
    id: int  # the signup_courses row: what tokens and registrations name
    campaign_id: str
    course_id: str
    name: str
    format: str | None
    schedule: str  # choose_one | attend_all
    attendance: str | None
    who_can_register: str | None
    leads_to: str | None  # the QI level completing it gives (people.levels)
    privacy_url: str | None  # the campaign's privacy notice, linked from the pages' footer
    hosted: bool
    sign_up_url: str | None  # the external booking page, when not hosted
    waiting_list: bool
    closes_at: dt.datetime | None  # naive UTC
    sender_email: str
    sender_name: str | None
    reply_to_email: str | None
    reply_to_name: str | None
    organisation: str | None
    active: bool
    sessions: tuple[SessionInfo, ...]  # active ones, in spec order
    requires: str | None = None  # the lowest QI level the spec asks for (None: open to all)

    @property
    def attend_all(self) -> bool:
        return self.schedule == "attend_all"

    def is_open(self, now: dt.datetime) -> bool:
        """Taking sign-ups at ``now`` (naive UTC): hosted, in the spec, before the deadline,
        and with a session still to come."""
        if not (self.hosted and self.active and self.sessions):
            return False
        if self.closes_at is not None and now >= self.closes_at:
            return False
        return any(s.starts_at > now for s in self.sessions)

    def session(self, session_id: int) -> SessionInfo | None:
        return next((s for s in self.sessions if s.id == session_id), None)

    def without_inactive(self) -> CourseInfo:
        """The course as ``load_course`` gives it by default, from one read with every
        session (a sign-up decides on the active dates; its mail's calendar needs all)."""
        return replace(self, sessions=tuple(s for s in self.sessions if s.active))


def attendance_text(course: Course) -> str | None:
    """What attendance means, as the email says it (the spec's words, else a default)."""
    if course.attendance:
        return course.attendance
    if course.schedule == "attend_all" and len(course.sessions) > 1:
        return f"You will need to attend all {len(course.sessions)} days."
    return None


def _course_values(campaign: Campaign, course: Course) -> dict:
    reply_to = campaign.reply_to
    return {
        "name": course.name,
        "format": course.format,
        "schedule": course.schedule,
        "attendance": attendance_text(course),
        "who_can_register": course.who_can_register,
        "requires": course.requires,
        "leads_to": course.leads_to,
        "privacy_url": campaign.footer.privacy_url,
        "hosted": course.hosted,
        "sign_up_url": course.sign_up_url,
        "waiting_list": course.waiting_list,
        "closes_at": london_to_utc(course.closes_local) if course.hosted else None,
        "sender_email": campaign.sender.email,
        "sender_name": campaign.sender.name,
        "reply_to_email": reply_to.email if reply_to else None,
        "reply_to_name": reply_to.name if reply_to else None,
        "organisation": campaign.footer.organisation,
        "active": True,
    }


def _session_values(session: Session, position: int) -> dict:
    return {
        "position": position,
        "starts_at": london_to_utc(dt.datetime.combine(session.date, session.start)),
        "ends_at": london_to_utc(dt.datetime.combine(session.date, session.end)),
        "venue": session.venue,
        "places": session.places,
        "active": True,
    }


def register_courses(conn: Connection, campaign: Campaign) -> dict[str, int]:
    """Write the campaign's courses and sessions to the store; return course id -> row id.

    Idempotent. Does not move anyone between confirmed and waiting: when places grew, the
    caller fills them (``registration.fill_free_places``) under the course's lock.
    """
    now = utcnow()
    known = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign.id)).first()
    if known is None:  # send made it already; a check of a campaign not yet sent makes it here
        ensure_campaign(conn, campaign.id, campaign.subject)
    existing = {
        r.course_id: r.id
        for r in conn.execute(
            sa.select(signup_courses.c.id, signup_courses.c.course_id).where(
                signup_courses.c.campaign_id == campaign.id
            )
        )
    }
    ids: dict[str, int] = {}
    for course in campaign.courses:
        row_id = existing.get(course.id)
        if row_id is None:
            row_id = _insert_course(conn, campaign, course, now)
        else:
            conn.execute(
                signup_courses.update()
                .where(signup_courses.c.id == row_id)
                .values(updated_at=now, **_course_values(campaign, course))
            )
        ids[course.id] = row_id
        _register_sessions(conn, row_id, course, now)
    gone = set(existing) - set(ids)
    if gone:
        conn.execute(
            signup_courses.update()
            .where(signup_courses.c.id.in_([existing[c] for c in gone]))
            .values(active=False, updated_at=now)
        )
    return ids


def _insert_course(conn: Connection, campaign: Campaign, course: Course, now: dt.datetime) -> int:
    pk = conn.execute(
        signup_courses.insert().values(
            campaign_id=campaign.id,
            course_id=course.id,
            created_at=now,
            updated_at=now,
            **_course_values(campaign, course),
        )
    ).inserted_primary_key
    assert pk is not None  # a one-row INSERT always has its key
    row_id: int = pk[0]
    return row_id


def register_new_courses(conn: Connection, campaign: Campaign) -> list[str]:
    """Write only the campaign's courses the store does not have yet (a test send: its
    sign-up links must lead somewhere), leaving the known ones as they are, so that nobody
    signed up is told of an edit before the real send. Returns the ids written."""
    known = set(
        conn.execute(
            sa.select(signup_courses.c.course_id).where(signup_courses.c.campaign_id == campaign.id)
        ).scalars()
    )
    new = [course for course in campaign.courses if course.id not in known]
    if not new:
        return []
    if known:  # written alongside: register_courses would retire the known ones
        now = utcnow()
        for course in new:
            _register_sessions(conn, _insert_course(conn, campaign, course, now), course, now)
    else:
        register_courses(conn, campaign)
    return [course.id for course in new]


def _register_sessions(conn: Connection, course_row: int, course: Course, now: dt.datetime):
    existing = {
        r.session_key: r
        for r in conn.execute(
            sa.select(signup_sessions).where(signup_sessions.c.signup_course_id == course_row)
        )
    }
    keys = set()
    for position, session in enumerate(course.sessions):
        values = _session_values(session, position)
        keys.add(session.key)
        row = existing.get(session.key)
        if row is None:
            conn.execute(
                signup_sessions.insert().values(
                    signup_course_id=course_row,
                    session_key=session.key,
                    revision=0,
                    created_at=now,
                    updated_at=now,
                    **values,
                )
            )
            continue
        moved = (row.starts_at, row.ends_at, row.venue) != (
            values["starts_at"],
            values["ends_at"],
            values["venue"],
        )
        conn.execute(
            signup_sessions.update()
            .where(signup_sessions.c.id == row.id)
            .values(updated_at=now, revision=row.revision + (1 if moved else 0), **values)
        )
    gone = [r.id for key, r in existing.items() if key not in keys and r.active]
    if gone:
        conn.execute(
            signup_sessions.update()
            .where(signup_sessions.c.id.in_(gone))
            .values(active=False, updated_at=now)
        )


def first_session_day(conn: Connection, campaign_id: str) -> dt.date | None:
    """The London date of the campaign's earliest session in the spec (None: no sessions):
    before today, ``send`` refuses the spec without --allow-past, so a command suggested for
    it must carry that flag to run as shown."""
    first = conn.execute(
        sa.select(sa.func.min(signup_sessions.c.starts_at))
        .join(signup_courses, signup_courses.c.id == signup_sessions.c.signup_course_id)
        .where(signup_courses.c.campaign_id == campaign_id, signup_sessions.c.active.is_(True))
    ).scalar()
    return utc_to_london(first).date() if first is not None else None


def session_states(conn: Connection, campaign_id: str) -> dict[int, tuple[int, bool]]:
    """Every session of the campaign's courses as ``{id: (revision, active)}``: taken before
    and after ``register_courses``, the two say which dates moved, appeared or were dropped
    (``service.sync`` tells the people signed up for them)."""
    rows = conn.execute(
        sa.select(signup_sessions.c.id, signup_sessions.c.revision, signup_sessions.c.active)
        .join(signup_courses, signup_courses.c.id == signup_sessions.c.signup_course_id)
        .where(signup_courses.c.campaign_id == campaign_id)
    )
    return {r.id: (r.revision, bool(r.active)) for r in rows}


# Built once: a sign-up submit reads its course three times (the page, under the lock, for
# the mail), and building a statement costs SQLAlchemy more than SQLite takes to run it.
_COURSE_BY_ID = sa.select(signup_courses).where(signup_courses.c.id == sa.bindparam("course_row"))
_ALL_SESSIONS = (
    sa.select(signup_sessions)
    .where(signup_sessions.c.signup_course_id == sa.bindparam("course_row"))
    .order_by(signup_sessions.c.position, signup_sessions.c.id)
)
_ACTIVE_SESSIONS = _ALL_SESSIONS.where(signup_sessions.c.active.is_(True))


def _sessions(conn: Connection, course_row: int, include_inactive: bool) -> tuple:
    query = _ALL_SESSIONS if include_inactive else _ACTIVE_SESSIONS
    return tuple(
        SessionInfo(
            id=r.id,
            key=r.session_key,
            position=r.position,
            starts_at=r.starts_at,
            ends_at=r.ends_at,
            venue=r.venue,
            places=r.places,
            active=r.active,
            revision=r.revision,
        )
        for r in conn.execute(query, {"course_row": course_row})
    )


def load_course(
    conn: Connection, course_row: int, *, include_inactive: bool = False
) -> CourseInfo | None:
    """The course behind a sign-up token (its active sessions, unless asked for all)."""
    row = conn.execute(_COURSE_BY_ID, {"course_row": course_row}).first()
    if row is None:
        return None
    return CourseInfo(
        id=row.id,
        campaign_id=row.campaign_id,
        course_id=row.course_id,
        name=row.name,
        format=row.format,
        schedule=row.schedule,
        attendance=row.attendance,
        who_can_register=row.who_can_register,
        leads_to=row.leads_to,
        privacy_url=row.privacy_url,
        hosted=row.hosted,
        sign_up_url=row.sign_up_url,
        waiting_list=row.waiting_list,
        closes_at=row.closes_at,
        sender_email=row.sender_email,
        sender_name=row.sender_name,
        reply_to_email=row.reply_to_email,
        reply_to_name=row.reply_to_name,
        organisation=row.organisation,
        active=row.active,
        sessions=_sessions(conn, row.id, include_inactive),
        requires=row.requires,
    )


def find_course(conn: Connection, campaign_id: str, course_id: str) -> CourseInfo | None:
    """The course a campaign's spec calls ``course_id`` (open sign-up pages name it so)."""
    row_id = conn.execute(
        sa.select(signup_courses.c.id).where(
            signup_courses.c.campaign_id == campaign_id, signup_courses.c.course_id == course_id
        )
    ).scalar()
    return None if row_id is None else load_course(conn, row_id)
