"""The sign-up service's transactions, one per thing a person does: sign up, cancel, ask for
an open sign-up link; and the sync that runs when a campaign is sent or checked.

Each is ONE ``store.immediate`` transaction holding the course's lock: the change and the
mail it causes commit together, so a place given always has its confirmation queued and a
rolled-back one never does. ``writing`` is the process's own queue for SQLite writes (the
tracking service's ``Service.writing``; a no-op elsewhere). The pages (``routes``) call
the ``*_in`` forms through the group-committing ``writer`` and then wake the notice
worker; commands and tests call the plain forms; ``send`` calls ``sync``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.campaign import Campaign
from equip_mailer.send.notices import enqueue
from equip_mailer.store import immediate, signup_invites

from . import limits, mails, notify
from .catalogue import CourseInfo, register_courses, session_states
from .registration import (
    Applicant,
    Change,
    Outcome,
    Registration,
    cancel,
    fill_free_places,
    give_place,
    register,
)
from .tokens import invite_token

INVITE_DAYS = 7  # an open sign-up link works this long


@dataclass(frozen=True)
class Writer:
    """What a transaction needs: the engine, the process's write queue, the mail links."""

    engine: Engine
    links: notify.MailLinks
    writing: AbstractContextManager[Any] = contextlib.nullcontext()


def sign_up_in(
    conn: Connection,
    links: notify.MailLinks,
    course_row: int,
    applicant: Applicant,
    session_id: int | None,
    now: dt.datetime,
    invite_id: int | None = None,
) -> Outcome:
    """Register (or find the registration) and queue its mail, in the caller's transaction;
    raises ``Refused``. An open sign-up's invite is marked used by the registration."""
    outcome = register(conn, course_row, applicant, session_id, now)
    notify.registered(conn, outcome, links, now)
    if invite_id is not None:
        conn.execute(
            signup_invites.update()
            .where(signup_invites.c.id == invite_id, signup_invites.c.used_at.is_(None))
            .values(used_at=now)
        )
    return outcome


def withdraw_in(
    conn: Connection, links: notify.MailLinks, registration_id: int, now: dt.datetime, by: str
) -> Change:
    """Cancel and promote, queuing the cancellation's mail and each promotion's."""
    change = cancel(conn, registration_id, now, by)
    notify.changed(conn, change, links, now, by)
    return change


def give_place_in(
    conn: Connection, links: notify.MailLinks, registration_id: int, now: dt.datetime
) -> Registration | None:
    """The team moves a waiting person into a place; they get the "a place has come up"
    mail with its calendar, as when the list moves by itself. None if they were not waiting."""
    given = give_place(conn, registration_id, now)
    if given is not None:
        notify.promoted(conn, (given,), links, now)
    return given


def invite_in(
    conn: Connection,
    links: notify.MailLinks,
    course: CourseInfo,
    email: str,
    ip_hash: str | None,
    now: dt.datetime,
) -> int | str:
    """Store an open sign-up invite and queue its mail: its id, or which rate limit refused
    it (``limits.refused``)."""
    over = limits.refused(conn, email, ip_hash, now)
    if over is not None:
        return over
    pk = conn.execute(
        signup_invites.insert().values(
            signup_course_id=course.id,
            email=email,
            email_key=email.strip().lower(),
            ip_hash=ip_hash,
            created_at=now,
        )
    ).inserted_primary_key
    assert pk is not None
    url = f"{links.public_url.rstrip('/')}/i/{invite_token(links.secret, pk[0])}"
    enqueue(conn, mails.invite(course, pk[0], email, url))
    invite_id: int = pk[0]
    return invite_id


def sign_up(
    w: Writer,
    course_row: int,
    applicant: Applicant,
    session_id: int | None,
    now: dt.datetime,
    invite_id: int | None = None,
) -> Outcome:
    """``sign_up_in`` in a transaction of its own."""
    with w.writing, immediate(w.engine) as conn:
        return sign_up_in(conn, w.links, course_row, applicant, session_id, now, invite_id)


def withdraw(w: Writer, registration_id: int, now: dt.datetime, by: str = "self") -> Change:
    """``withdraw_in`` in a transaction of its own."""
    with w.writing, immediate(w.engine) as conn:
        return withdraw_in(conn, w.links, registration_id, now, by)


@dataclass(frozen=True)
class Synced:
    """What copying the spec changed for the people signed up."""

    promoted: tuple[Registration, ...]  # given a place that became free (places grew)
    rescheduled: int  # mailed the new time, venue or dates of their course
    stranded: list[notify.Stranded]  # on a date dropped from the spec: for the team


def sync(w: Writer, campaign: Campaign, now: dt.datetime) -> Synced:
    """Copy the campaign's courses into the store, give places that became free (the spec's
    ``places`` grew) to the people waiting, and send the new details to the people whose
    dates moved (a calendar they were sent would otherwise keep the old time or place);
    all with their mails, in one transaction."""
    with w.writing, immediate(w.engine) as conn:
        before = session_states(conn, campaign.id)
        ids = register_courses(conn, campaign)
        hosted = [ids[course.id] for course in campaign.courses if course.hosted]
        promoted: tuple[Registration, ...] = ()
        for row in hosted:
            promoted += fill_free_places(conn, row, now)
        notify.promoted(conn, promoted, w.links, now)
        rescheduled, stranded = notify.rescheduled(
            conn, hosted, before, w.links, now, skip=frozenset(r.id for r in promoted)
        )
    return Synced(promoted, rescheduled, stranded)
