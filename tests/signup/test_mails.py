"""The sign-up mails greet the reader as the newsletter does: "Dear Vik," (first name), and
"Dear colleague," when there is no name, in both the text and the HTML part of every mail
about a place; the full name stays on the envelope, and the calendar does not change."""

from __future__ import annotations

import dataclasses
import re

import pytest
from support.signup_data import NOW, hosted_campaign

from equip_mailer import store
from equip_mailer.signup import calendar, mails
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


@pytest.fixture
def signed_up(sqlite_url, tmp_path, demo_path):
    """Vik Fernández, confirmed on the June afternoon of EQUIP Basics."""
    engine = store.open_store(sqlite_url)
    campaign = hosted_campaign(tmp_path, demo_path)
    with store.immediate(engine) as conn:
        register_courses(conn, campaign)
        course = find_course(conn, campaign.id, "equip-basics")
        assert course is not None
        applicant = reg.Applicant(email="vik.fernandez@nhs.example", name="Vik Fernández")
        registration = reg.register(conn, course.id, applicant, course.sessions[0].id, NOW)
    engine.dispose()
    ctx = mails.Context(course=course, manage_url="https://equip.example.org/r/abc", now=NOW)
    return ctx, registration.registration, course.sessions[:1]


def every_mail(ctx, registration, sessions):
    return {
        "confirmed": mails.place_given(ctx, registration, sessions, promoted=False),
        "promoted": mails.place_given(ctx, registration, sessions, promoted=True),
        "waiting": mails.waiting(ctx, registration, sessions, 2),
        "cancelled": mails.cancelled(ctx, registration, sessions, had_place=True),
        "cancelled by the team": mails.cancelled(
            ctx, registration, sessions, had_place=True, by_team=True
        ),
    }


def first_lines(notice) -> tuple[str, str]:
    """The text part's first paragraph and the HTML body's first paragraph."""
    html_first = re.search(r"<body[^>]*><p>(.*?)</p>", notice.html or "")
    return notice.text.split("\n\n", 1)[0], html_first.group(1) if html_first else ""


def test_every_mail_about_a_place_opens_dear_and_the_first_name(signed_up):
    ctx, registration, sessions = signed_up
    for kind, notice in every_mail(ctx, registration, sessions).items():
        assert first_lines(notice) == ("Dear Vik,", "Dear Vik,"), kind
        assert "Hello" not in notice.text and "Fernández," not in notice.text, kind
        assert notice.to_name == "Vik Fernández", kind  # the envelope keeps the full name


def test_no_name_gets_the_newsletters_fallback(signed_up):
    """An import without a name column leaves the name empty; the newsletter greets a blank
    first name "Dear colleague,", and so do these mails (never "Dear ,")."""
    ctx, registration, sessions = signed_up
    for name in ("", "   "):
        nameless = dataclasses.replace(registration, name=name)
        for kind, notice in every_mail(ctx, nameless, sessions).items():
            assert first_lines(notice) == ("Dear colleague,", "Dear colleague,"), kind


def test_only_the_greeting_depends_on_the_name(signed_up):
    """The subject, the rest of the words and the calendar attachment are the same for any
    name: the greeting is the one place a name appears in the body."""
    ctx, registration, sessions = signed_up
    named = every_mail(ctx, registration, sessions)
    other = every_mail(ctx, dataclasses.replace(registration, name="Ana"), sessions)
    for kind, notice in named.items():
        again = other[kind]
        assert notice.subject == again.subject, kind
        assert notice.attachments == again.attachments, kind
        assert notice.text.replace("Dear Vik,", "Dear Ana,") == again.text, kind
        assert (notice.html or "").replace("Dear Vik,", "Dear Ana,") == again.html, kind
    [invite] = named["confirmed"].attachments
    assert invite.content_type == calendar.CONTENT_TYPE and b"BEGIN:VEVENT" in invite.data


def test_the_address_confirmation_greets_with_the_fallback_and_every_mail_keeps_a_narrow_column(
    signed_up,
):
    """Before anyone has given a name, the confirm-your-address mail opens as a nameless
    newsletter does; every mail's HTML keeps to a 600px column, the newsletter's width, so
    lines stay readable in a wide reading pane."""
    ctx, registration, sessions = signed_up
    invite = mails.invite(ctx.course, 1, "vik.fernandez@nhs.example", "https://x.example/i/1")
    assert first_lines(invite) == ("Dear colleague,", "Dear colleague,")
    for kind, notice in {**every_mail(ctx, registration, sessions), "invite": invite}.items():
        assert re.search(r"<body[^>]*max-width:600px", notice.html), kind
