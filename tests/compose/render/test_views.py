"""What each segment's reader sees: the course menu for their QI level, worded for them."""

from __future__ import annotations

import re

from support.rendering import make_project, plain_urls, reader, section

from equip_mailer.compose.render.personalisation import personalise, recipient_values
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.render.views import PALETTE, html_text, tel_uri, version_note
from equip_mailer.compose.spec import load_campaign
from equip_mailer.send.backends.outbox import substitute


def test_new_readers_are_offered_basics_and_see_what_comes_after(rendered):
    mail = rendered["getting-started"]
    featured = section(mail.html, "Your next step", "Coming next")
    assert "EQUIP Basics" in featured
    assert "Also open to you" not in mail.html
    html = mail.html.replace("\u2014", "&mdash;")
    assert (
        "EQUIP in Action</strong> &mdash; Needs basic QI knowledge: EQUIP Basics gets you there"
        in html
    )
    # The masterclass's real requirement, not "after EQUIP in Action".
    assert (
        "Data masterclass</strong> &mdash; Needs basic QI knowledge and a QI project: "
        "EQUIP in Action gets you there" in html
    )
    assert "- EQUIP in Action \u2014 Needs basic QI knowledge: EQUIP Basics gets you there" in (
        mail.text
    )
    # No sign-up link for a course they cannot attend yet.
    assert {link.course_id for link in mail.links} == {"equip-basics", None}


def test_project_leads_are_offered_the_data_masterclass_first(rendered):
    mail = rendered["project-leads"]
    featured = section(mail.html, "Your next step", "Also open to you")
    also = section(mail.html, "Also open to you", "Unsubscribe")
    assert "Data masterclass" in featured and "EQUIP Basics" not in featured
    assert "EQUIP Basics" in also and "EQUIP in Action" in also
    assert "Needs basic QI" not in mail.html
    text_featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "DATA MASTERCLASS" in text_featured
    assert [link.key for link in mail.links][:1] == ["data-masterclass"]


def test_readers_with_basics_get_equip_in_action_first(rendered):
    mail = rendered["ready-for-action"]
    featured = section(mail.text, "YOUR NEXT STEP", "ALSO OPEN TO YOU")
    assert "EQUIP IN ACTION" in featured
    assert (
        "- Data masterclass \u2014 Needs basic QI knowledge and a QI project: EQUIP in\n"
        "  Action gets you there" in mail.text
    )
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
    assert "Needs basic QI" not in mail.html and "Needs basic QI" not in mail.text
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
    assert f"Share this course:\n{open_page}" in mail.text
    assert f'href="{open_page}"' in mail.html  # shared as it is, not as a tracked link
    masterclass = render_campaign(demo, ["project-leads"], pages_url=pages)["project-leads"]
    assert "/join/2019-04-equip-training/data-masterclass" not in masterclass.text


def test_the_intro_names_the_courses_each_segment_may_sign_up_to(rendered):
    """Readers new to QI may sign up to one course; the intro must not promise three."""
    intro = {
        seg: " ".join(mail.text.split("YOUR NEXT STEP")[0].split())
        for seg, mail in rendered.items()
    }
    assert "you can sign up to EQUIP Basics. Here’s your menu." in intro["getting-started"]
    assert "sign up to EQUIP Basics and EQUIP in Action." in intro["ready-for-action"]
    assert (
        "sign up to EQUIP Basics, EQUIP in Action and Data masterclass." in intro["project-leads"]
    )
    assert "three types" not in " ".join(intro.values())


def test_a_segment_may_have_its_own_intro(tmp_path):
    def own_intro(spec):
        spec["segments"][0]["intro"] = "Hello {first_name}: {open_count} course is open to you."

    campaign = load_campaign(make_project(tmp_path, own_intro), allow_past=True)
    mails = render_campaign(campaign)
    assert (
        "<p>Hello -eq_first_name-: one course is open to you.</p>" in mails["getting-started"].html
    )
    assert "Hello -eqt_first_name-: one course is open to you." in mails["getting-started"].text
    assert "On this day before the Easter break" not in mails["getting-started"].text
    assert "On this day before the Easter break" in mails["ready-for-action"].text


def test_choose_a_date_only_above_a_choice(rendered):
    masterclass = section(rendered["project-leads"].html, "Data masterclass", "Also open to you")
    assert ">Date</h4>" in masterclass and "Choose a date" not in masterclass
    text = section(rendered["project-leads"].text, "DATA MASTERCLASS", "ALSO OPEN TO YOU")
    assert "\nDate:\n- Tuesday 15 October 2019" in text and "Choose a date" not in text
    basics = section(rendered["getting-started"].text, "EQUIP BASICS", "COMING NEXT")
    assert "\nChoose a date:\n" in basics
    in_action = section(rendered["ready-for-action"].text, "EQUIP IN ACTION", "ALSO OPEN TO YOU")
    assert "\nDates:\n" in in_action and "Choose a date" not in in_action


def test_the_footer_says_why_the_reader_got_this_version(rendered):
    for segment, level in [
        ("getting-started", "new to QI"),
        ("ready-for-action", "having basic QI knowledge"),
        ("project-leads", "running a QI project"),
    ]:
        mail = rendered[segment]
        note = f"Our list records you as {level}, so this version shows the courses open to you"
        assert note in mail.html
        assert note in " ".join(mail.text.split())
        assert "version for readers" not in mail.html + mail.text


def test_the_phone_number_is_a_tel_link(rendered):
    html = rendered["getting-started"].html
    assert re.search(r'<a href="tel:\+442079460321"[^>]*>020 7946 0321</a>', html)
    assert "Telephone 020 7946 0321." in rendered["getting-started"].text


def test_the_text_part_reads_as_plain_mail(rendered):
    """Paragraphs apart, the footer after the "-- " separator mail clients fold, and a
    postcode never split from its town at a line end."""
    text = rendered["ready-for-action"].text
    assert (
        "Who can register? To enrol on this course you will need some basic QI\nknowledge.\n\n"
        "To complete the course you will need to attend all 3 days." in text
    )
    assert "\n-- \nEQUIP (Enabling Quality Improvement in Practice)" in text
    for mail in rendered.values():
        assert not re.search(r"London\n", mail.text)
        assert not re.search(r"\n\s*(E1|0AA)\b", mail.text)


def test_a_course_with_dates_to_be_confirmed_asks_for_interest(tmp_path):
    def tbc(spec):
        course = spec["courses"][2]
        del course["sessions"]
        course["dates_tbc"] = True

    campaign = load_campaign(make_project(tmp_path, tbc), allow_past=True)
    mail = render_campaign(campaign, ["project-leads"])["project-leads"]
    card = section(mail.html, "Data masterclass", "Also open to you")
    assert ">Dates to be confirmed</h4>" in card
    assert "Register your interest in Data masterclass" in card
    assert (
        "Dates to be confirmed.\n\nRegister your interest in Data masterclass:\n-eqt_link_0-"
        in (mail.text)
    )


def test_placeholders_in_subject_preheader_and_signature_are_filled_per_reader(tmp_path):
    def personal(spec):
        spec["segments"][0]["subject"] = "{first_name}, EQUIP Basics is open to {practice}"
        spec["segments"][0]["preheader"] = "For {first_name}: {open_courses}"
        spec["signature"] = "Write to me, {first_name}: Telephone 020 7946 0321."

    campaign = load_campaign(make_project(tmp_path, personal), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    # The subject keeps text-part tokens: SendGrid substitutes in the subject too.
    assert mail.subject == "-eqt_first_name-, EQUIP Basics is open to -eqt_practice-"
    values = recipient_values(mail, reader(practice="Smith & Jones"), plain_urls(mail), "#u")
    assert substitute(mail.subject, values) == "Ann, EQUIP Basics is open to Smith & Jones"
    html, text = personalise(mail, values)
    assert "<title>Ann, EQUIP Basics is open to Smith &amp; Jones</title>" in html
    assert '<div class="eq-preheader"' in html and ">For Ann: EQUIP Basics" in html
    assert "Write to me, Ann: Telephone" in text
    assert re.search(r"Write to me, Ann: Telephone <a href=\"tel:\+442079460321\"", html)


def test_phone_numbers_dial_in_international_form():
    assert tel_uri("020 7946 0321") == "tel:+442079460321"
    assert tel_uri("+44 (0)20 7946 0321") == "tel:+442079460321"
    assert tel_uri("+44 7700 900123") == "tel:+447700900123"
    linked = html_text("Call 01632 960123 or +44 20 7946 0321 (Mon-Fri).", {}, phones=True)
    assert linked.count('href="tel:') == 2
    assert 'href="tel:+441632960123"' in linked and 'href="tel:+442079460321"' in linked
    assert html_text("Ref 2019-04-22, room 12", {}, phones=True) == "Ref 2019-04-22, room 12"


def test_a_role_segment_says_which_roles_it_is_for(demo):
    citizens = demo.segments[0].model_copy(
        update={"roles": ["Citizen", "Service user"], "qi_levels": ["none"]}
    )
    assert version_note(citizens).startswith(
        "Our list records you as Citizen or Service user, new to QI, so this version"
    )


def test_the_text_part_keeps_lines_short_and_puts_a_long_link_on_its_own_line(demo):
    """A text reader (or a client that wraps at 78 characters and breaks what follows)
    sees every line within 78 characters; only a link too long for any line may run past,
    alone after its indent. The sign-up, per-date and share lines used to run to 120."""
    site = "https://equip.example.org"
    mails = render_campaign(demo, pages_url=site)
    for segment, mail in mails.items():
        urls = {
            link.key: f"{site}/c/uwFF5xrK1w0qpu53-DY/{n}" for n, link in enumerate(mail.links, 1)
        }
        text = mail.text
        for key, value in recipient_values(mail, reader(), urls, f"{site}/u/x").items():
            text = text.replace(key, value)
        long_lines = [
            line for line in text.splitlines() if len(line) > 78 and len(line.split()) > 1
        ]
        assert long_lines == [], segment
    basics = mails["getting-started"].text
    assert f"Share this course:\n{site}/join/2019-04-equip-training/equip-basics" in basics
