"""The short mails a sign-up sends: a place confirmed, a place on the waiting list, a place
given from the waiting list, a place cancelled, new details after a course's dates changed,
and the link that confirms an address given on the open sign-up page.

Pure functions from what happened to a ``Notice`` (text and HTML, and the calendar when a
place is given or taken back). Each notice's key names the registration and its revision,
so the same change enqueued twice (a retried request) is one mail, and every later change
is a new one. Mails come from the campaign's sender, reply to its reply-to, and carry no
access needs (those are for the roster only).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass

from equip_mailer.compose.names import addressed_as
from equip_mailer.compose.render.tokens import BLANK_VALUES
from equip_mailer.send.notices import Attachment, Notice

from . import calendar
from .catalogue import CourseInfo, SessionInfo
from .registration import Registration


def long_when(session: SessionInfo) -> str:
    """``Thursday 27 June 2019, 13:00–17:00`` in London time."""
    start, end = session.starts_local, session.ends_local
    return f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M}\u2013{end:%H:%M}"


def short_day(session: SessionInfo) -> str:
    start = session.starts_local
    return f"{start:%A} {start.day} {start:%B}"


def greeting(name: str) -> str:
    """``Dear Vik,``, or ``Dear Dr Patel,`` for a name given with its title (the usual
    British form), never ``Dear Dr,``. The newsletter's intro opens ``Dear {first_name},``
    and a list keeps no title, so a listed reader, whose sign-up form is filled in with the
    list's first and last name, is greeted the same way in both unless they add a title
    themselves. The name is split as a list's Name column is (``compose/names.py``). With no
    name at all (an import without a name column), or a title alone, it is the newsletter's
    own fallback for a blank first name: "colleague"."""
    return f"Dear {addressed_as(name) or BLANK_VALUES['first_name']},"


@dataclass(frozen=True)
class Context:
    """What every sign-up mail needs beside the registration."""

    course: CourseInfo
    manage_url: str  # /r/<token>: see, add to calendar, cancel
    now: dt.datetime  # naive UTC: the calendar's DTSTAMP


def _sender(course: CourseInfo) -> dict:
    return {
        "from_email": course.sender_email,
        "from_name": course.sender_name,
        "reply_to": course.reply_to_email,
        "campaign_id": course.campaign_id,
    }


def _uid_domain(course: CourseInfo) -> str:
    return course.sender_email.rpartition("@")[2].lower() or "equip-mailer"


def calendar_attachment(
    ctx: Context, registration: Registration, sessions: tuple[SessionInfo, ...]
) -> Attachment:
    entry = calendar.CalendarEntry(
        registration_id=registration.id,
        revision=registration.revision,
        cancelled=registration.status == "cancelled",
        manage_url=ctx.manage_url,
        uid_domain=_uid_domain(ctx.course),
    )
    return Attachment(
        filename=calendar.filename(ctx.course),
        content_type=calendar.CONTENT_TYPE,
        data=calendar.calendar(ctx.course, sessions, entry, ctx.now),
    )


def _html(
    paragraphs: list[str | list[str]],
    link: tuple[str, str] | None,
    footer: str,
    privacy: str | None = None,
) -> str:
    """A plain, readable HTML part: paragraphs (a list inside is one line per item)."""
    parts = []
    for p in paragraphs:
        if isinstance(p, list):
            parts.append("<p>" + "<br>".join(html.escape(line) for line in p) + "</p>")
        else:
            parts.append(f"<p>{html.escape(p)}</p>")
    if link:
        label, url = link
        parts.append(
            f'<p><a href="{html.escape(url, quote=True)}" style="color:#005eb8;'
            f'font-weight:bold">{html.escape(label)}</a></p>'
        )
    notice = (
        f' &middot; <a href="{html.escape(privacy, quote=True)}" style="color:#005eb8">'
        "Privacy notice</a>"
        if privacy
        else ""
    )
    parts.append(f'<p style="color:#4c6272;font-size:14px">{html.escape(footer)}{notice}</p>')
    return (
        '<!doctype html><html lang="en-GB"><head><meta charset="utf-8"></head>'
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;'
        'color:#1d1d1b;max-width:600px">' + "".join(parts) + "</body></html>"
    )


def _text(
    paragraphs: list[str | list[str]],
    link: tuple[str, str] | None,
    footer: str,
    privacy: str | None = None,
) -> str:
    blocks = ["\n".join(p) if isinstance(p, list) else p for p in paragraphs]
    if link:
        blocks.append(f"{link[0]}:\n{link[1]}")
    blocks.append(footer + (f"\nPrivacy notice: {privacy}" if privacy else ""))
    return "\n\n".join(blocks) + "\n"


def _notice(
    ctx: Context,
    registration: Registration,
    kind: str,
    subject: str,
    paragraphs: list[str | list[str]],
    link: tuple[str, str] | None,
    attachments: tuple[Attachment, ...] = (),
    key: str = "",
) -> Notice:
    footer = ctx.course.sender_name or ctx.course.organisation or "EQUIP"
    return Notice(
        key=f"signup:{registration.id}:{registration.revision}:{kind}{key}",
        kind=f"signup-{kind}",
        to_email=registration.email,
        to_name=registration.name,
        subject=subject,
        text=_text(paragraphs, link, footer, ctx.course.privacy_url),
        html=_html(paragraphs, link, footer, ctx.course.privacy_url),
        attachments=attachments,
        **_sender(ctx.course),
    )


def _dates(sessions: tuple[SessionInfo, ...]) -> list[str | list[str]]:
    return [[long_when(s)] + ([s.venue] if s.venue else []) for s in sessions]


def place_given(
    ctx: Context,
    registration: Registration,
    sessions: tuple[SessionInfo, ...],
    *,
    promoted: bool,
) -> Notice:
    """A confirmed place: on signing up, or when the waiting list moved (``promoted``)."""
    course = ctx.course
    when = f": {short_day(sessions[0])}" if len(sessions) == 1 else ""
    subject = (
        f"A place has come up for you on {course.name}{when}"
        if promoted
        else f"Your place on {course.name} is confirmed{when}"
    )
    opening = (
        f"Good news: a place has come up on {course.name}, and it is yours. "
        "You were on the waiting list; you do not need to do anything to take it."
        if promoted
        else f"Thank you for signing up. Your place on {course.name} is confirmed."
    )
    paragraphs: list[str | list[str]] = [greeting(registration.name), opening]
    paragraphs += _dates(sessions)
    if course.attend_all and course.attendance:  # "Choose one of …" is done by now
        paragraphs.append(course.attendance)
    paragraphs.append(
        "The calendar file attached adds the "
        + ("dates" if len(sessions) > 1 else "date")
        + " to your calendar. If you cannot come, please cancel your place so that "
        "someone on the waiting list can have it."
    )
    return _notice(
        ctx,
        registration,
        "promoted" if promoted else "confirmed",
        subject,
        paragraphs,
        ("See or cancel your place", ctx.manage_url),
        (calendar_attachment(ctx, registration, sessions),),
    )


def waiting(
    ctx: Context, registration: Registration, sessions: tuple[SessionInfo, ...], position: int
) -> Notice:
    course = ctx.course
    when = f" on {short_day(sessions[0])}" if len(sessions) == 1 else ""
    paragraphs: list[str | list[str]] = [
        greeting(registration.name),
        f"{course.name}{when} is full, so we have put you on the waiting list: "
        f"you are number {position}.",
        "If a place comes up, it is given to the next person on the list and we will email "
        "you straight away, with a calendar file for the "
        + ("dates." if len(sessions) > 1 else "date."),
    ]
    paragraphs += _dates(sessions)
    return _notice(
        ctx,
        registration,
        "waiting",
        f"You are on the waiting list for {course.name}{when}",
        paragraphs,
        ("See your place on the list, or leave it", ctx.manage_url),
    )


def cancelled(
    ctx: Context,
    registration: Registration,
    sessions: tuple[SessionInfo, ...],
    *,
    had_place: bool,
    by_team: bool = False,
) -> Notice:
    """Confirms a cancellation; a cancelled calendar removes the entry sent before. When the
    team cancelled it (on the roster page), the mail says so rather than thanking the person
    for a cancellation they did not make."""
    course = ctx.course
    what = "place on" if had_place else "place on the waiting list for"
    said = (
        f"The training team has cancelled your {what} {course.name}. If you did not expect "
        "this, reply to this email and we will put it right."
        if by_team
        else f"Your {what} {course.name} is cancelled. Thank you for letting us know."
    )
    paragraphs: list[str | list[str]] = [greeting(registration.name), said]
    if had_place:
        dates = "date" if len(sessions) == 1 else "dates"
        paragraphs.append(f"The calendar file attached removes the {dates} from your calendar.")
    paragraphs.append("Changed your mind? You can sign up again while places are open:")
    return _notice(
        ctx,
        registration,
        "cancelled",
        f"Cancelled: your {what} {course.name}",
        paragraphs,
        ("Sign up again", ctx.manage_url),
        (calendar_attachment(ctx, registration, sessions),) if had_place else (),
    )


def rescheduled(
    ctx: Context,
    registration: Registration,
    sessions: tuple[SessionInfo, ...],
    position: int | None,
) -> Notice:
    """The time, place or dates of a course changed after someone signed up (the spec was
    edited and sent again): the new details and, for a place, a calendar that replaces the
    entry sent before (same UIDs, higher SEQUENCE; a dropped date comes back cancelled).
    Its key names each date's revision, so one change is one mail, and a later one another.
    ``position`` is their place on the waiting list, None for a confirmed place."""
    course = ctx.course
    current = tuple(s for s in sessions if s.active)
    kept = (
        "Your place is kept."
        if position is None
        else f"You are still on the waiting list: number {position}."
    )
    paragraphs: list[str | list[str]] = [
        greeting(registration.name),
        f"The details of {course.name} have changed. {kept} This is when and where it is now:",
    ]
    paragraphs += _dates(current)
    if position is None:
        paragraphs.append(
            "The calendar file attached updates the entry we sent before. If you can no "
            "longer come, please cancel your place so that someone on the waiting list can "
            "have it."
        )
    return _notice(
        ctx,
        registration,
        "changed",
        f"Changed: {course.name}" + (f", {short_day(current[0])}" if len(current) == 1 else ""),
        paragraphs,
        (
            "See or cancel your place"
            if position is None
            else "See your place on the list, or leave it",
            ctx.manage_url,
        ),
        (calendar_attachment(ctx, registration, sessions),) if position is None else (),
        key=":" + ".".join(f"{s.id}-{s.revision}-{int(s.active)}" for s in sessions),
    )


def invite(course: CourseInfo, invite_id: int, email: str, url: str) -> Notice:
    """The double opt-in: the address's owner follows this link to sign up."""
    footer = course.sender_name or course.organisation or "EQUIP"
    paragraphs: list[str | list[str]] = [
        greeting(""),  # no name yet: the newsletter's fallback
        f"Someone, probably you, asked to sign up for {course.name} with this address. "
        f"To {choose_and(course)}sign up, follow the link below (it works for 7 days).",
        "If it was not you, ignore this email: nobody has been signed up.",
    ]
    link = (f"Sign up for {course.name}", url)
    return Notice(
        key=f"signup-invite:{invite_id}",
        kind="signup-invite",
        to_email=email,
        subject=f"Confirm your address to sign up for {course.name}",
        text=_text(paragraphs, link, footer, course.privacy_url),
        html=_html(paragraphs, link, footer, course.privacy_url),
        **_sender(course),
    )


def choose_and(course: CourseInfo) -> str:
    """ "choose a date and " when there is one to choose: a course attended on every date
    (EQUIP in Action) or held once has nothing to choose."""
    return "choose a date and " if not course.attend_all and len(course.sessions) > 1 else ""
