"""A registration's dates as an iCalendar file (RFC 5545) that Outlook, Google and Apple
Calendar add in one tap: one VEVENT per session, in Europe/London with its VTIMEZONE.

The file is written by hand (it is small, and every line is ours): CRLF line ends, lines
folded at 75 octets, text values escaped. Each event's UID is fixed per (registration,
session), and SEQUENCE grows with every change of the registration or the session, so a
calendar sent again (after a promotion, a new time, a cancellation) replaces the entry it
sent before instead of adding a second one. METHOD:PUBLISH: the events are published to
the reader, who is not asked to reply. A cancelled registration gives the same events with
STATUS:CANCELLED, which removes them from calendars that had them; so does a date since
dropped from the spec, in the calendar of a course attended on every date.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from .catalogue import CourseInfo, SessionInfo

PRODID = "-//EQUIP Tower Hamlets//equip-mailer//EN"
CONTENT_TYPE = "text/calendar; charset=utf-8; method=PUBLISH"

# Europe/London since 1996: BST from 01:00 UTC on the last Sunday of March to 01:00 UTC on
# the last Sunday of October. DTSTART is local time in the offset it changes from.
VTIMEZONE = (
    "BEGIN:VTIMEZONE",
    "TZID:Europe/London",
    "X-LIC-LOCATION:Europe/London",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0000",
    "TZOFFSETTO:+0100",
    "TZNAME:BST",
    "DTSTART:19700329T010000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0000",
    "TZNAME:GMT",
    "DTSTART:19701025T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
)


@dataclass(frozen=True)
class CalendarEntry:
    """What the calendar says about one registration."""

    registration_id: int
    revision: int  # the registration's; added to each session's for SEQUENCE
    cancelled: bool
    manage_url: str  # where to see or cancel the place
    uid_domain: str  # the sender's domain: UIDs must be globally unique


def escape_text(value: str) -> str:
    """TEXT value escaping (RFC 5545 3.3.11)."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 3.1)."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts, start, limit = [], 0, 75
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # a continuation byte
            end -= 1
        parts.append(data[start:end].decode("utf-8"))
        start, limit = end, 74  # continuation lines start with a space
    return "\r\n ".join(parts)


def _local(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def _utc(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def uid(course: CourseInfo, session: SessionInfo, entry: CalendarEntry) -> str:
    return (
        f"{course.campaign_id}.{course.course_id}.{session.key}.r{entry.registration_id}"
        f"@{entry.uid_domain}"
    )


def _event(
    course: CourseInfo, session: SessionInfo, entry: CalendarEntry, stamp: dt.datetime, n: int
) -> list[str]:
    summary = course.name + (f" (day {n} of {len(course.sessions)})" if course.attend_all else "")
    description = "\n".join(
        part
        for part in (
            course.format,
            # "Choose one of the two afternoons" is done by now; "attend all 3 days" binds.
            course.attendance if course.attend_all else None,
            f"See or cancel your place: {entry.manage_url}",
        )
        if part
    )
    off = entry.cancelled or not session.active  # a date dropped from the spec is off too
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid(course, session, entry)}",
        f"DTSTAMP:{_utc(stamp)}",
        f"SEQUENCE:{entry.revision + session.revision}",
        f"DTSTART;TZID=Europe/London:{_local(session.starts_local)}",
        f"DTEND;TZID=Europe/London:{_local(session.ends_local)}",
        f"SUMMARY:{escape_text(summary)}",
        f"DESCRIPTION:{escape_text(description)}",
        f"URL:{entry.manage_url}",
        f"STATUS:{'CANCELLED' if off else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
    ]
    if session.venue:
        lines.insert(6, f"LOCATION:{escape_text(session.venue)}")
    if not off:
        lines += [
            "BEGIN:VALARM",
            "ACTION:DISPLAY",
            f"DESCRIPTION:{escape_text(course.name)}",
            "TRIGGER:-PT1H",
            "END:VALARM",
        ]
    return [*lines, "END:VEVENT"]


def calendar(
    course: CourseInfo,
    sessions: Iterable[SessionInfo],
    entry: CalendarEntry,
    stamp: dt.datetime,
) -> bytes:
    """The .ics file for a registration's ``sessions`` (``stamp``: naive UTC, now)."""
    chosen = list(sessions)
    numbers = {s.id: i + 1 for i, s in enumerate(course.sessions)}
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(course.name)}",
        *VTIMEZONE,
    ]
    for session in chosen:
        lines += _event(course, session, entry, stamp, numbers.get(session.id, 1))
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")


def filename(course: CourseInfo) -> str:
    return f"{course.course_id}.ics"
