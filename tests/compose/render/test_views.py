"""What each segment's reader sees: the course menu for their QI level, worded for them."""

from __future__ import annotations

import re

from support.rendering import make_project, section

from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.render.views import PALETTE
from equip_mailer.compose.spec import load_campaign


def test_new_readers_are_offered_basics_and_see_what_comes_after(rendered):
    mail = rendered["getting-started"]
    featured = section(mail.html, "Your next step", "Coming next")
    assert "EQUIP Basics" in featured
    assert "Also open to you" not in mail.html
    assert "EQUIP in Action</strong> &mdash; Next step after EQUIP Basics" in mail.html.replace(
        "\u2014", "&mdash;"
    )
    assert "Data masterclass</strong> &mdash; Next step after EQUIP in Action" in mail.html.replace(
        "\u2014", "&mdash;"
    )
    assert "- EQUIP in Action \u2014 Next step after EQUIP Basics" in mail.text
    # No sign-up link for a course they cannot attend yet.
    assert {link.course_id for link in mail.links} == {"equip-basics", None}


def test_project_leads_are_offered_the_data_masterclass_first(rendered):
    mail = rendered["project-leads"]
    featured = section(mail.html, "Your next step", "Also open to you")
    also = section(mail.html, "Also open to you", "Unsubscribe")
    assert "Data masterclass" in featured and "EQUIP Basics" not in featured
    assert "EQUIP Basics" in also and "EQUIP in Action" in also
    assert "Next step after" not in mail.html
    text_featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "DATA MASTERCLASS" in text_featured
    assert [link.key for link in mail.links][:1] == ["data-masterclass"]


def test_readers_with_basics_get_equip_in_action_first(rendered):
    mail = rendered["ready-for-action"]
    featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "EQUIP IN ACTION" in featured
    assert "Data masterclass \u2014 Next step after EQUIP in Action" in mail.text
    # EQUIP in Action is one course-level sign-up for all three days.
    assert "Sign up for EQUIP in Action" in mail.html
    assert "To complete the course you will need to attend all 3 days." in featured
    assert (
        "Dates:\n- Thursday 13 June 2019, 09:00\u201317:00, Example Training Rooms, London E1\n"
        in featured
    )


def test_locked_courses_can_be_hidden(tmp_path):
    def hide(spec):
        spec["locked_courses"] = "hide"

    campaign = load_campaign(make_project(tmp_path, hide), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    assert "Next step after" not in mail.html and "Next step after" not in mail.text
    assert "Coming next" not in mail.html
    assert "Data masterclass</strong>" not in mail.html  # (the preheader still names it)
    assert "DATA MASTERCLASS" not in mail.text and "Data masterclass" not in mail.text


def per_session_pages(spec):
    """EQUIP Basics as it was before it signed up here: a booking page per afternoon."""
    basics = spec["courses"][0]
    del basics["sign_up"]
    for s in basics["sessions"]:
        del s["places"]
        s["sign_up_url"] = f"https://equip.example.org/courses/basics?date={s['date']}"


def test_sessions_with_their_own_sign_up_page_get_their_own_button(tmp_path):
    campaign = load_campaign(make_project(tmp_path, per_session_pages), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    assert [link.key for link in mail.links] == [
        "equip-basics@2019-06-27",
        "equip-basics@2019-09-10",
        "link:about",
        "link:contact",
    ]
    first = mail.links[0]
    assert first.session == "2019-06-27" and first.course_id == "equip-basics"
    assert first.url.startswith(
        "https://equip.example.org/courses/basics?date=2019-06-27&utm_source=equip-newsletter"
    )
    assert "utm_content=equip-basics%402019-06-27" in first.url
    # The button's text says what it does, for screen readers and for people scanning.
    button = re.search(r'<a href="-eq_link_0-"[^>]*>([^<]*)</a>', mail.html)
    assert button and button.group(1).strip() == "Sign up for EQUIP Basics on Thursday 27 June"
    assert (
        "- Thursday 27 June 2019, 13:00\u201317:00, Example Community Centre, London E1\n"
        "  Sign up: -eqt_link_0-" in mail.text
    )


def test_colours_meet_wcag_aa_contrast():
    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    for what, fg, bg in PALETTE.contrast_pairs():
        a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
        assert (a + 0.05) / (b + 0.05) >= 4.5, what


def test_a_course_taken_here_links_to_its_pages_and_can_be_shared(demo):
    pages = "https://signup.example.org"
    mail = render_campaign(demo, ["getting-started"], pages_url=pages)["getting-started"]
    open_page = f"{pages}/join/2019-04-equip-training/equip-basics"
    basics = next(link for link in mail.links if link.key == "equip-basics")
    assert (basics.url, basics.course_id, basics.session) == (open_page, "equip-basics", None)
    assert f"Share this course: {open_page}" in mail.text
    assert f'href="{open_page}"' in mail.html  # shared as it is, not as a tracked link
    masterclass = render_campaign(demo, ["project-leads"], pages_url=pages)["project-leads"]
    assert "/join/2019-04-equip-training/data-masterclass" not in masterclass.text
