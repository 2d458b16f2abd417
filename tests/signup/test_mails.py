"""The sign-up mails greet the reader as the newsletter does: "Dear Vik," (first name), and
"Dear colleague," when there is no name, in both the text and the HTML part of every mail
about a place; a name typed with its title, "Dr Vik Patel", is "Dear Dr Patel,". The full
name stays on the envelope, and the calendar does not change."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from support.lists import write
from support.signup_data import NOW, hosted_campaign

from equip_mailer import store
from equip_mailer.compose.audience import read_list
from equip_mailer.compose.render.tokens import BLANK_VALUES
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


@pytest.mark.parametrize(
    ("name", "greeting"),
    [
        ("Dr Vik Patel", "Dear Dr Patel,"),  # title and surname, the usual British form
        ("Dr Patel", "Dear Dr Patel,"),
        ("dr.  Zoë Ó Ceallaigh ", "Dear Dr Ó Ceallaigh,"),
        ("Prof. Siân Lloyd-Jones", "Dear Prof Lloyd-Jones,"),
        ("Sir Vik Patel", "Dear Sir Vik,"),  # Sir and Dame go with the first name
        ("Vik Patel", "Dear Vik,"),
        ("Dr", "Dear colleague,"),  # a title alone is no name
    ],
)
def test_a_name_given_with_its_title_is_greeted_with_title_and_surname(signed_up, name, greeting):
    """A registration holds the name as typed on the form; a title in it is never taken for
    the first name ("Dear Dr," before), in the text and the HTML part of every mail."""
    ctx, registration, sessions = signed_up
    titled = dataclasses.replace(registration, name=name)
    for kind, notice in every_mail(ctx, titled, sessions).items():
        assert first_lines(notice) == (greeting, html.escape(greeting)), kind
        assert notice.to_name == name, kind
        assert (notice.html or "").startswith('<!doctype html><html lang="en-GB">'), kind


def test_a_listed_reader_is_greeted_as_the_newsletter_greets_them(tmp_path):
    """A list with only a Name column keeps no title, and a listed reader's sign-up form is
    filled in with the list's first and last name: the mails about their place then open as
    their newsletter did ("Dear {first_name},", "colleague" when blank)."""
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,QI level\n"
        "vik@nhs.example,Dr Vik Patel,none\n"
        "zoe@nhs.example,Zoë Ó Ceallaigh,none\n"
        "pat@nhs.example,Mrs Patel,none\n"
        "ann@nhs.example,Rev Dr Ann Smith,none\n"
        "sam@nhs.example,Dr,none\n",
    )
    recipients, _, _ = read_list(path, "staff.csv")
    greeted = []
    for who in recipients:
        on_the_form = " ".join(p for p in (who.first_name, who.last_name) if p)
        newsletter = f"Dear {who.first_name or BLANK_VALUES['first_name']},"
        assert mails.greeting(on_the_form) == newsletter, who.source
        greeted.append(newsletter)
    assert greeted == [
        "Dear Vik,",
        "Dear Zoë,",
        "Dear Mrs Patel,",
        "Dear Ann,",
        "Dear colleague,",
    ]


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


def test_the_words_follow_how_many_dates_there_are(signed_up, tmp_path, demo_path):
    """Found in the audit: cancelling one afternoon "removes the dates", and the invite to
    EQUIP in Action (every date attended) asked to "choose a date"."""
    ctx, registration, sessions = signed_up
    cancelled = mails.cancelled(ctx, registration, sessions, had_place=True)
    assert "removes the date from your calendar" in cancelled.text
    basics_invite = mails.invite(ctx.course, 1, "vik@nhs.example", "https://x.example/i/1")
    assert "To choose a date and sign up, follow the link below" in basics_invite.text

    engine = store.open_store(f"sqlite:///{tmp_path / 'action.db'}")
    with store.immediate(engine) as conn:
        register_courses(conn, hosted_campaign(tmp_path, demo_path))
        action = find_course(conn, "2019-04-equip-training", "equip-in-action")
    engine.dispose()
    invite = mails.invite(action, 2, "vik@nhs.example", "https://x.example/i/2")
    assert "To sign up, follow the link below" in invite.text and "choose" not in invite.text
    every_day = mails.cancelled(
        dataclasses.replace(ctx, course=action), registration, action.sessions, had_place=True
    )
    assert "removes the dates from your calendar" in every_day.text
