"""Who gets a place: register once per course, places never oversold, a waiting list served in
arrival order, and a cancellation that promotes the first person waiting.

Every change of places happens in ONE transaction that holds the course's lock: open it with
``store.immediate(engine)`` (SQLite: ``BEGIN IMMEDIATE``) and the functions here take the
course row's lock themselves (PostgreSQL: ``SELECT ... FOR UPDATE``), then count and write.
So 200 people pressing "confirm" at once for 20 places give exactly 20 confirmed and 180
waiting, numbered in the order they got the lock (``queue_seq``). The caller enqueues the
mails for the returned registrations (``signup.notify``) in the same transaction, so a
confirmation is sent if and only if the place was given.

API for other stages (rosters, imports, reports, ``forget``):

- ``register(conn, course_row, applicant, session_id, now) -> Outcome``: a place, a place on
  the waiting list, or the person's existing registration (``created`` False);
- ``cancel(conn, registration_id, now, by) -> Change``: frees the place, promotes;
- ``give_place(conn, registration_id, now)``: the team moves one person from the waiting
  list into a place, out of turn (the session may go over its places: the team decides);
- ``record_external(conn, course_row, applicant, session_id, now) -> Outcome``: a place
  given by an external booking tool (``signups import``): confirmed, no deadline or
  capacity check (the other tool decided), once per course;
- ``fill_free_places(conn, course_row, now)``: promote into places that became free (the
  spec's ``places`` grew);
- ``availability(conn, course)``, ``get_registration``, ``find_registration``,
  ``waiting_position``, ``course_registrations``.

Registrations are keyed by (course, lower-cased address): a second submit, a double click, a
back-button resubmit or the same person arriving through the open sign-up page all find the
existing row. A cancelled registration is reused if the person signs up again (joining the
end of the queue).

The module stays whole past 400 lines on purpose: every rule about who holds a place lives
here, under the one lock, so a reader can check "never oversold" in one file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from equip_mailer.store import lock_row, registrations, signup_courses

from .catalogue import CourseInfo, SessionInfo, load_course

# Lengths people may type (forms refuse more; the store keeps at most this).
MAX_NAME = 200
MAX_PRACTICE = 200
MAX_ROLE = 200
MAX_ACCESS_NEEDS = 1000


@dataclass(frozen=True)
class Applicant:
    """Who is signing up, as the form (or an import) gives it."""

    email: str
    name: str
    practice: str | None = None
    role: str | None = None
    access_needs: str | None = None
    ledger_id: int | None = None  # their row in the campaign's ledger, when from a list
    source: str = "list"  # store.REGISTRATION_SOURCES


@dataclass(frozen=True)
class Registration:
    id: int
    signup_course_id: int
    session_id: int | None  # None: every session of the course (attend_all)
    campaign_id: str
    course_id: str
    ledger_id: int | None
    email: str
    name: str
    practice: str | None
    role: str | None
    access_needs: str | None
    status: str  # confirmed | waiting | cancelled
    source: str
    queue_seq: int
    revision: int
    created_at: dt.datetime
    confirmed_at: dt.datetime | None
    cancelled_at: dt.datetime | None

    @classmethod
    def of(cls, row: Row) -> Registration:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Outcome:
    registration: Registration
    created: bool  # False: they were registered already; nothing changed
    # The course as read under the lock, with every session (dropped ones too): its mail is
    # written from this instead of reading the course a third time in the same submit.
    course: CourseInfo | None = None


@dataclass(frozen=True)
class Change:
    cancelled: Registration | None  # None: it was cancelled already (nothing changed)
    promoted: tuple[Registration, ...]  # moved from the waiting list into a place


@dataclass(frozen=True)
class Availability:
    places: int | None  # None: unlimited
    confirmed: int
    waiting: int

    @property
    def left(self) -> int | None:
        return None if self.places is None else max(0, self.places - self.confirmed)

    @property
    def full(self) -> bool:
        return self.places is not None and self.confirmed >= self.places


class Refused(Exception):
    """No registration was made; ``reason`` is a stable code, the message a plain sentence.

    Reasons: ``closed`` (deadline passed, or the course is not taken here), ``full`` (no
    place and no waiting list), ``session`` (no such session to choose, or it has started).
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


_COLUMNS = [registrations.c[name] for name in Registration.__dataclass_fields__]

# The statements of a sign-up, built once: one submit runs about fifteen, and building each
# anew (and its cache key) cost SQLAlchemy several times what SQLite takes to run it.
_COURSE: sa.BindParameter[int] = sa.bindparam("course_row")
_BY_ID = sa.select(*_COLUMNS).where(registrations.c.id == sa.bindparam("registration_id"))
_BY_ADDRESS = sa.select(*_COLUMNS).where(
    registrations.c.signup_course_id == _COURSE,
    registrations.c.email_key == sa.bindparam("email_key"),
)
_COUNTS = (
    sa.select(registrations.c.session_id, registrations.c.status, sa.func.count())
    .where(
        registrations.c.signup_course_id == _COURSE,
        registrations.c.status.in_(("confirmed", "waiting")),
    )
    .group_by(registrations.c.status, registrations.c.session_id)  # the index's order
)
_CONFIRMED = sa.select(sa.func.count()).where(
    registrations.c.signup_course_id == _COURSE, registrations.c.status == "confirmed"
)
_CONFIRMED_FOR_DATE = _CONFIRMED.where(registrations.c.session_id == sa.bindparam("session_id"))
_WAITING_AHEAD = sa.select(sa.func.count()).where(
    registrations.c.signup_course_id == _COURSE,
    registrations.c.status == "waiting",
    registrations.c.queue_seq <= sa.bindparam("queue_seq"),
)
_WAITING_AHEAD_FOR_DATE = _WAITING_AHEAD.where(
    registrations.c.session_id == sa.bindparam("session_id")
)
_LAST_SEQ = sa.select(sa.func.max(registrations.c.queue_seq)).where(
    registrations.c.signup_course_id == _COURSE
)
_INSERT = registrations.insert()
# SET takes the columns named in the parameters; the row is ``registration_id``.
_UPDATE = registrations.update().where(registrations.c.id == sa.bindparam("registration_id"))


def _update(conn: Connection, registration_id: int, **values: object) -> None:
    conn.execute(_UPDATE, {"registration_id": registration_id, **values})


def get_registration(conn: Connection, registration_id: int) -> Registration | None:
    row = conn.execute(_BY_ID, {"registration_id": registration_id}).first()
    return None if row is None else Registration.of(row)


def find_registration(conn: Connection, course_row: int, email: str) -> Registration | None:
    row = conn.execute(
        _BY_ADDRESS, {"course_row": course_row, "email_key": email.strip().lower()}
    ).first()
    return None if row is None else Registration.of(row)


def course_registrations(conn: Connection, course_row: int) -> list[Registration]:
    """Every registration of a course (cancelled ones too), in arrival order."""
    rows = conn.execute(
        sa.select(*_COLUMNS)
        .where(registrations.c.signup_course_id == course_row)
        .order_by(registrations.c.queue_seq)
    )
    return [Registration.of(r) for r in rows]


def _capacity_key(course: CourseInfo, session_id: int | None) -> int | None:
    return None if course.attend_all else session_id


def _places(course: CourseInfo, key: int | None) -> int | None:
    """A session's places; for attend_all (key None) the smallest session's."""
    if key is not None:
        session = course.session(key)
        return session.places if session else 0
    limits = [s.places for s in course.sessions if s.places is not None]
    return min(limits) if limits else None


def _counts(conn: Connection, course: CourseInfo) -> dict[tuple[int | None, str], int]:
    rows = conn.execute(_COUNTS, {"course_row": course.id})
    out: dict[tuple[int | None, str], int] = {}
    for session_id, status, n in rows:
        key = (_capacity_key(course, session_id), status)
        out[key] = out.get(key, 0) + n
    return out


def availability(conn: Connection, course: CourseInfo) -> dict[int | None, Availability]:
    """Places per session id (choose_one) or for the whole course under key None
    (attend_all, where one registration takes a place on every date)."""
    counts = _counts(conn, course)
    keys: list[int | None] = [None] if course.attend_all else [s.id for s in course.sessions]
    return {
        k: Availability(
            places=_places(course, k),
            confirmed=counts.get((k, "confirmed"), 0),
            waiting=counts.get((k, "waiting"), 0),
        )
        for k in keys
    }


def _full(conn: Connection, course: CourseInfo, key: int | None) -> bool:
    """``availability(conn, course)[key].full``, counting only the confirmed places of that
    date (bounded by its places) instead of every registration of the course."""
    places = _places(course, key)
    if places is None:
        return False
    if key is None:
        confirmed = conn.execute(_CONFIRMED, {"course_row": course.id}).scalar_one()
    else:
        confirmed = conn.execute(
            _CONFIRMED_FOR_DATE, {"course_row": course.id, "session_id": key}
        ).scalar_one()
    return bool(confirmed >= places)


def waiting_position(conn: Connection, registration: Registration) -> int | None:
    """1 for the next person to get a place; None unless waiting."""
    if registration.status != "waiting":
        return None
    params = {"course_row": registration.signup_course_id, "queue_seq": registration.queue_seq}
    if registration.session_id is None:
        return conn.execute(_WAITING_AHEAD, params).scalar_one()
    params["session_id"] = registration.session_id
    return conn.execute(_WAITING_AHEAD_FOR_DATE, params).scalar_one()


def _locked_course(
    conn: Connection, course_row: int, *, include_inactive: bool = False
) -> CourseInfo:
    """Take the course's lock, then read it (so places changed by a sync are seen)."""
    if not lock_row(conn, signup_courses, course_row):
        raise Refused("closed", "There is no such course.")
    course = load_course(conn, course_row, include_inactive=include_inactive)
    assert course is not None  # locked just now
    return course


def _chosen_session(course: CourseInfo, session_id: int | None, now: dt.datetime):
    if course.attend_all:
        return None
    session = course.session(session_id) if session_id is not None else None
    if session is None:
        raise Refused("session", "Please choose one of the dates.")
    if session.starts_at <= now:
        raise Refused("session", "That date has already started; please choose another.")
    return session


def _next_seq(conn: Connection, course_row: int) -> int:
    top = conn.execute(_LAST_SEQ, {"course_row": course_row}).scalar()
    return (top or 0) + 1


def _applicant_columns(applicant: Applicant) -> dict[str, object]:
    """What a registration keeps of who signed up, cut to the lengths the store keeps."""
    return {
        "ledger_id": applicant.ledger_id,
        "email": applicant.email.strip(),
        "name": applicant.name[:MAX_NAME],
        "practice": (applicant.practice or None) and applicant.practice[:MAX_PRACTICE],
        "role": (applicant.role or None) and applicant.role[:MAX_ROLE],
        "access_needs": (applicant.access_needs or None)
        and applicant.access_needs[:MAX_ACCESS_NEEDS],
        "source": applicant.source,
    }


def _insert(
    conn: Connection, course: CourseInfo, email: str, now: dt.datetime, values: dict
) -> int:
    """A new registration of ``course`` for ``email`` (keyed lower-cased); its id."""
    pk = conn.execute(
        _INSERT,
        {
            "signup_course_id": course.id,
            "campaign_id": course.campaign_id,
            "course_id": course.course_id,
            "email_key": email.strip().lower(),
            "revision": 0,
            "created_at": now,
            **values,
        },
    ).inserted_primary_key
    assert pk is not None
    registration_id: int = pk[0]
    return registration_id


def register(
    conn: Connection,
    course_row: int,
    applicant: Applicant,
    session_id: int | None,
    now: dt.datetime,
) -> Outcome:
    """Give ``applicant`` a place (or a place on the waiting list) on the course, once.

    Runs inside the caller's ``store.immediate`` transaction and takes the course's lock.
    Raises ``Refused`` when nothing could be given (closed, full without a waiting list,
    no such date); an existing registration is returned unchanged with ``created`` False.
    """
    every_session = _locked_course(conn, course_row, include_inactive=True)
    course = every_session.without_inactive()
    existing = find_registration(conn, course.id, applicant.email)
    if existing is not None and existing.status != "cancelled":
        return Outcome(existing, created=False)
    if not course.is_open(now):
        raise Refused("closed", "Sign-ups for this course have closed.")
    session = _chosen_session(course, session_id, now)
    key = _capacity_key(course, session.id if session else None)
    if not _full(conn, course, key):
        status = "confirmed"
    elif course.waiting_list:
        status = "waiting"
    else:
        raise Refused("full", "Sorry, this course is full.")
    values = {
        "session_id": session.id if session else None,
        **_applicant_columns(applicant),
        "status": status,
        "queue_seq": _next_seq(conn, course.id),
        "updated_at": now,
        "confirmed_at": now if status == "confirmed" else None,
        "cancelled_at": None,
        "cancelled_by": None,
    }
    if existing is None:
        registration_id = _insert(conn, course, applicant.email, now, values)
    else:  # signing up again after cancelling: the same row, at the end of the queue
        registration_id = existing.id
        _update(conn, existing.id, revision=existing.revision + 1, **values)
    made = get_registration(conn, registration_id)
    assert made is not None
    return Outcome(made, created=True, course=every_session)


def record_external(
    conn: Connection,
    course_row: int,
    applicant: Applicant,
    session_id: int | None,
    now: dt.datetime,
) -> Outcome:
    """Record a place someone booked elsewhere (an import); idempotent per (course, address).

    The booking tool already gave the place, so it is confirmed without checking the
    deadline or the places; an existing registration is returned unchanged.
    """
    course = _locked_course(conn, course_row)
    existing = find_registration(conn, course.id, applicant.email)
    if existing is not None:
        return Outcome(existing, created=False)
    if session_id is not None and course.session(session_id) is None:
        raise Refused("session", "There is no such date for this course.")
    registration_id = _insert(
        conn,
        course,
        applicant.email,
        now,
        {
            "session_id": None if course.attend_all else session_id,
            **_applicant_columns(applicant),
            "status": "confirmed",
            "queue_seq": _next_seq(conn, course.id),
            "updated_at": now,
            "confirmed_at": now,
        },
    )
    made = get_registration(conn, registration_id)
    assert made is not None
    return Outcome(made, created=True)


def _confirm(
    conn: Connection, registration_id: int, revision: int, now: dt.datetime
) -> Registration:
    """A waiting registration gets its place (its next revision: a new mail)."""
    _update(
        conn,
        registration_id,
        status="confirmed",
        confirmed_at=now,
        updated_at=now,
        revision=revision + 1,
    )
    made = get_registration(conn, registration_id)
    assert made is not None
    return made


def _promote(conn: Connection, course: CourseInfo, key: int | None, n: int, now: dt.datetime):
    query = (
        sa.select(registrations.c.id, registrations.c.revision)
        .where(
            registrations.c.signup_course_id == course.id,
            registrations.c.status == "waiting",
        )
        .order_by(registrations.c.queue_seq)
        .limit(n)
    )
    if key is not None:
        query = query.where(registrations.c.session_id == key)
    promoted = []
    for row in conn.execute(query).all():
        promoted.append(_confirm(conn, row.id, row.revision, now))
    return promoted


def _not_started(course: CourseInfo, key: int | None, now: dt.datetime) -> bool:
    """A place is worth giving only before its session (or the course's first) starts."""
    sessions = course.sessions if key is None else [s for s in course.sessions if s.id == key]
    return bool(sessions) and min(s.starts_at for s in sessions) > now


def _fill(conn: Connection, course: CourseInfo, now: dt.datetime) -> tuple[Registration, ...]:
    promoted: list[Registration] = []
    for key, free in availability(conn, course).items():
        if free.waiting and _not_started(course, key, now):
            room = free.waiting if free.places is None else free.places - free.confirmed
            if room > 0:
                promoted += _promote(conn, course, key, room, now)
    return tuple(promoted)


def fill_free_places(conn: Connection, course_row: int, now: dt.datetime) -> tuple:
    """Promote waiting people into places that are free (after a cancellation, or when the
    spec's ``places`` grew), first come first served. Takes the course's lock."""
    course = _locked_course(conn, course_row)
    return _fill(conn, course, now) if course.hosted else ()


def cancel(conn: Connection, registration_id: int, now: dt.datetime, by: str = "self") -> Change:
    """Cancel a registration (confirmed or waiting) and give any freed place to the first
    person waiting for it. Cancelling twice changes nothing the second time."""
    found = get_registration(conn, registration_id)
    if found is None:
        raise Refused("closed", "There is no such registration.")
    course = _locked_course(conn, found.signup_course_id)
    current = get_registration(conn, registration_id)  # as it is now we hold the lock
    assert current is not None
    if current.status == "cancelled":
        return Change(cancelled=None, promoted=())
    _update(
        conn,
        current.id,
        status="cancelled",
        cancelled_at=now,
        cancelled_by=by,
        updated_at=now,
        revision=current.revision + 1,
    )
    cancelled = get_registration(conn, current.id)
    promoted = _fill(conn, course, now) if current.status == "confirmed" else ()
    return Change(cancelled=cancelled, promoted=promoted)


def give_place(conn: Connection, registration_id: int, now: dt.datetime) -> Registration | None:
    """Move one waiting person into a place, whatever their position and even when the
    session is full (the team's decision, made on the team pages). Takes the course's lock;
    None when they were not waiting (given a place already, or cancelled meanwhile)."""
    found = get_registration(conn, registration_id)
    if found is None:
        raise Refused("closed", "There is no such registration.")
    _locked_course(conn, found.signup_course_id)
    current = get_registration(conn, registration_id)  # as it is now we hold the lock
    assert current is not None
    if current.status != "waiting":
        return None
    return _confirm(conn, current.id, current.revision, now)


def session_of(course: CourseInfo, registration: Registration) -> tuple[SessionInfo, ...]:
    """The dates a registration covers: its chosen one, or all of them (attend_all)."""
    if registration.session_id is None:
        return course.sessions
    return tuple(s for s in course.sessions if s.id == registration.session_id)
