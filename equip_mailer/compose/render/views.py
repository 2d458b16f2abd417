"""The view models the templates read: each course, session, locked course and the footer,
already worded (dates spelled out, button labels, "You will need to attend all 3 days.").

Templates stay free of logic and of the spec's structure: what a segment's email shows is
decided by ``menu``, how each item is phrased is decided here, and the templates only lay it
out. The NHS palette lives here too, so every colour pair the templates use can be checked
for contrast in one place.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from markupsafe import Markup

from equip_mailer.config import DEFAULT_PUBLIC_URL

from ..campaign import Campaign, Course, Segment, Session
from ..menu import SegmentMenu, segment_menu
from ..spec_fields import PLACEHOLDER_RE
from .mail_links import LinkBook, LinkRef, LinkSpec, other_link, target_url
from .markdown import Rich, markdown
from .tokens import PLACEHOLDERS, html_token, text_token

PAGES_URL = DEFAULT_PUBLIC_URL  # where the sign-up pages are, unless the caller says

# ---------------------------------------------------------------------------------------
# Colours: NHS identity colours, each text/background pair at least 4.5:1 (tested).


@dataclass(frozen=True)
class Palette:
    text: str = "#212B32"  # NHS black
    secondary: str = "#4C6272"  # NHS dark grey, for small print
    blue: str = "#005EB8"  # NHS blue: header, headings, links
    button: str = "#007F3B"  # NHS green: the sign-up buttons
    button_text: str = "#FFFFFF"
    white: str = "#FFFFFF"
    page: str = "#F0F4F5"  # NHS pale grey around the email
    featured: str = "#E8F1FA"  # pale blue behind the featured course
    border: str = "#D8DDE0"

    def contrast_pairs(self) -> list[tuple[str, str, str]]:
        """(what, foreground, background) for every text colour the templates use."""
        return [
            ("body text", self.text, self.white),
            ("body text on featured card", self.text, self.featured),
            ("headings and links", self.blue, self.white),
            ("links on featured card", self.blue, self.featured),
            ("header text", self.white, self.blue),
            ("button text", self.button_text, self.button),
            ("footer text", self.secondary, self.page),
            ("footer links", self.blue, self.page),
        ]


PALETTE = Palette()


# ---------------------------------------------------------------------------------------
# Dates

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def long_date(day: dt.date) -> str:
    """'Thursday 27 June 2019', spelled out whatever the machine's locale."""
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def short_date(day: dt.date) -> str:
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"


def time_range(session: Session) -> str:
    return f"{session.start:%H:%M}\u2013{session.end:%H:%M}"


# ---------------------------------------------------------------------------------------
# What the templates see


@dataclass(frozen=True)
class SessionView:
    session: Session
    long_date: str  # Thursday 27 June 2019
    short_date: str  # Thursday 27 June
    times: str  # 13:00–17:00
    venue: str | None
    sign_up: LinkRef | None  # only when sessions have their own sign-up pages
    button_text: str  # Sign up for EQUIP Basics on Thursday 27 June


@dataclass(frozen=True)
class CourseView:
    course: Course
    name: str
    format_line: str  # "Half-day training, delivered by our ELFT colleagues"
    blurb: Rich
    who_can_register: str
    attendance: str | None
    sessions: tuple[SessionView, ...]
    sign_up: LinkRef | None  # one sign-up for the whole course
    button_text: str
    # A course taken here (sign_up: equip): its open sign-up page, to pass on to others.
    share_url: str | None = None
    # Above the dates: "Choose a date" only when there is a choice to make.
    when_heading: str = "Choose a date"


@dataclass(frozen=True)
class LockedView:
    name: str
    note: str  # "Next step after EQUIP in Action"
    line: str  # "Data masterclass — Next step after EQUIP in Action"


@dataclass(frozen=True)
class FooterView:
    organisation: str
    address: str | None
    why: str
    segment_name: str
    links: tuple[LinkRef, ...]  # the campaign's other links (about, contact, ...)
    privacy_url: str | None  # the privacy notice: linked as it is, never tracked
    # Why this reader got this version: "Our list records you as new to QI, so ..."
    version_note: str = ""


def open_signup_url(pages_url: str, campaign: Campaign, course: Course) -> str:
    """A hosted course's open sign-up page on the tracking service (``signup.open_signup``):
    where its tracked link leads a test send, and what "share this course" shows."""
    return f"{pages_url.rstrip('/')}/join/{campaign.id}/{course.id}"


def _course_view(
    campaign: Campaign,
    book: LinkBook,
    course: Course,
    pages_url: str,
    constants: Mapping[str, str],
) -> CourseView:
    per_session = any(s.sign_up_url for s in course.sessions)
    course_ref = None
    share_url = open_signup_url(pages_url, campaign, course) if course.hosted else None
    # A hosted course's link is tracked like any other; the service sends each reader's
    # click on to their own sign-up page (track.clicks), so its URL is the open page.
    course_url = share_url or course.sign_up_url
    if course_url:
        course_ref = LinkRef(
            LinkSpec(
                key=course.id,
                url=course_url if course.hosted else target_url(campaign, course_url, course.id),
                label=f"Sign up for {course.name}",
                course_id=course.id,
            ),
            book,
        )
    sessions = []
    for s in course.sessions:
        ref = None
        if per_session:
            if s.sign_up_url:
                key = f"{course.id}@{s.key}"
                ref = LinkRef(
                    LinkSpec(
                        key=key,
                        url=target_url(campaign, s.sign_up_url, key),
                        label=f"Sign up for {course.name} on {short_date(s.date)}",
                        course_id=course.id,
                        session=s.key,
                    ),
                    book,
                )
            else:
                ref = course_ref
        sessions.append(
            SessionView(
                session=s,
                long_date=long_date(s.date),
                short_date=short_date(s.date),
                times=time_range(s),
                venue=s.venue,
                sign_up=ref,
                button_text=f"Sign up for {course.name} on {short_date(s.date)}",
            )
        )
    if course.dates_tbc:
        heading = "Dates to be confirmed"
    elif course.schedule == "attend_all" and len(course.sessions) > 1:
        heading = "Dates"
    else:
        heading = "Choose a date" if len(course.sessions) > 1 else "Date"
    fmt = course.format + (f", delivered by {course.delivered_by}" if course.delivered_by else "")
    attendance = course.attendance
    if attendance is None and course.schedule == "attend_all" and len(course.sessions) > 1:
        attendance = f"You will need to attend all {len(course.sessions)} days."
    return CourseView(
        course=course,
        name=course.name,
        format_line=fmt,
        blurb=markdown(campaign, book, course.blurb, f"courses.{course.id}.blurb", constants),
        who_can_register=course.who_can_register,
        attendance=attendance,
        sessions=tuple(sessions),
        sign_up=None if per_session else course_ref,
        button_text=(
            f"Register your interest in {course.name}"
            if course.dates_tbc
            else f"Sign up for {course.name}"
        ),
        share_url=share_url,
        when_heading=heading,
    )


# ---------------------------------------------------------------------------------------
# Placeholders and phone numbers in the spec's plain-text fields (subject, preheader, signature)

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# How the footer names a reader's QI level: "Our list records you as ..."
LEVEL_PHRASES = {
    "none": "new to QI",
    "basics": "having basic QI knowledge",
    "project": "running a QI project",
}


def names_list(names: list[str]) -> str:
    """'A', 'A and B', 'A, B and C'."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def segment_constants(campaign: Campaign, menu: SegmentMenu) -> dict[str, str]:
    """The segment's own placeholders: the courses its readers may sign up to, and how many."""
    open_courses = [c.name for c in campaign.courses if c in menu.eligible]
    count = len(open_courses)
    return {
        "open_courses": names_list(open_courses) if open_courses else "no course",
        "open_count": NUMBER_WORDS[count] if count < len(NUMBER_WORDS) else str(count),
    }


def plain_text(text: str, constants: Mapping[str, str], token: Callable[[str], str]) -> str:
    """A plain field with its placeholders filled: a reader's as ``token`` (send time), the
    segment's as their values."""

    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in constants:
            return constants[name]
        return token(name) if name in PLACEHOLDERS else m.group(0)

    return PLACEHOLDER_RE.sub(fill, text)


# A UK number: 020 7946 0321, 01632 960 123, 07700 900 123, +44 20 7946 0321.
PHONE_RE = re.compile(r"(?<![\w+])(?:\+44\s?(?:\(0\)\s?)?|0)\d(?:[ -]?\d){8,9}(?!\w)")


def tel_uri(number: str) -> str:
    """'020 7946 0321' -> 'tel:+442079460321' (RFC 3966, international form)."""
    digits = re.sub(r"\D", "", number.replace("(0)", ""))
    national = digits[2:] if number.lstrip().startswith("+") else digits[1:]
    return f"tel:+44{national}"


def html_text(text: str, constants: Mapping[str, str], *, phones: bool = False) -> Markup:
    """A plain field for the HTML part: escaped, placeholders as HTML tokens, and (with
    ``phones``) each UK phone number a ``tel:`` link, so a phone dials it with one tap."""
    out = html_lib.escape(text, quote=False)
    if phones:
        out = PHONE_RE.sub(
            lambda m: f'<a href="{tel_uri(m.group(0))}" class="eq-tel">{m.group(0)}</a>', out
        )
    escaped = {name: html_lib.escape(value, quote=False) for name, value in constants.items()}
    return Markup(plain_text(out, escaped, html_token))


def version_note(segment: Segment) -> str:
    """Why the reader got this version of the email, in words they can check."""
    who = " or ".join(LEVEL_PHRASES[level] for level in segment.qi_levels)
    if segment.roles:
        who = f"{' or '.join(segment.roles)}, {who}"
    return (
        f"Our list records you as {who}, so this version shows the courses open to you; "
        "if that has changed, reply to let us know."
    )


class TemplateContext(TypedDict):
    """Every name the course-menu templates may use (StrictUndefined: no other name exists)."""

    campaign: Campaign
    segment: Segment
    menu: SegmentMenu
    lang: str
    title: str
    subject: str
    preheader: str
    intro: Rich
    sign_off: Rich
    signature: str
    featured: list[CourseView]
    others: list[CourseView]
    locked: list[LockedView]
    footer: FooterView
    first_name: str  # a token: Markup in the HTML part, plain in the text part
    practice: str
    unsubscribe: str
    palette: Palette


def template_context(
    campaign: Campaign, segment: Segment, book: LinkBook, pages_url: str = PAGES_URL
) -> TemplateContext:
    """What the HTML template of ``segment`` reads; links are numbered in ``book`` as used.
    ``pages_url`` is where the sign-up pages are (the service's ``EQUIP_PUBLIC_URL``)."""
    menu: SegmentMenu = segment_menu(campaign, segment)
    constants = segment_constants(campaign, menu)
    footer_links = tuple(
        other_link(campaign, book, url, name.replace("-", " ").replace("_", " ").capitalize())
        for name, url in campaign.links.items()
    )
    return {
        "campaign": campaign,
        "segment": segment,
        "menu": menu,
        "lang": campaign.language,
        "title": campaign.title,
        "subject": html_text(segment.subject or campaign.subject, constants),
        "preheader": html_text(segment.preheader or campaign.preheader, constants),
        "intro": markdown(
            campaign,
            book,
            segment.intro or campaign.intro,
            f"segments.{segment.id}.intro" if segment.intro else "intro",
            constants,
        ),
        "sign_off": markdown(campaign, book, campaign.sign_off, "sign_off", constants),
        "signature": html_text(campaign.signature, constants, phones=True),
        "featured": [_course_view(campaign, book, c, pages_url, constants) for c in menu.featured],
        "others": [_course_view(campaign, book, c, pages_url, constants) for c in menu.others],
        "locked": [
            LockedView(name=lc.course.name, note=lc.note, line=f"{lc.course.name} \u2014 {lc.note}")
            for lc in menu.locked
        ],
        "footer": FooterView(
            organisation=campaign.footer.organisation,
            address=campaign.footer.address,
            why=campaign.footer.why,
            segment_name=segment.name,
            links=footer_links,
            privacy_url=campaign.footer.privacy_url,
            version_note=version_note(segment),
        ),
        "first_name": Markup(html_token("first_name")),
        "practice": Markup(html_token("practice")),
        "unsubscribe": Markup(html_token("unsubscribe")),
        "palette": PALETTE,
    }


def text_context(ctx: TemplateContext) -> TemplateContext:
    """The same context for the text template: the reader's tokens as text-part tokens."""
    text = ctx.copy()
    segment, campaign = ctx["segment"], ctx["campaign"]
    constants = segment_constants(campaign, ctx["menu"])
    text["subject"] = plain_text(segment.subject or campaign.subject, constants, text_token)
    text["preheader"] = plain_text(segment.preheader or campaign.preheader, constants, text_token)
    text["signature"] = plain_text(campaign.signature, constants, text_token)
    text["first_name"] = text_token("first_name")
    text["practice"] = text_token("practice")
    text["unsubscribe"] = text_token("unsubscribe")
    return text
