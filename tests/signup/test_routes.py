"""The sign-up pages over HTTP, as a reader's browser uses them: the email's link, the form,
the registration page, cancelling; forged links, CSRF and the open sign-up's double opt-in."""

from __future__ import annotations

import email
import email.policy
import html
import re

import httpx
import pytest
import sqlalchemy as sa
from support.link_secrets import LINK_SECRET
from support.service import running_app
from support.signup_data import form_fields, hosted_campaign, seed_readers, signup_app

from equip_mailer import store
from equip_mailer.compose.render.mail_links import LinkSpec
from equip_mailer.send.links import click_path, register_links
from equip_mailer.signup import tokens
from equip_mailer.signup.catalogue import find_course, register_courses

SECRET = LINK_SECRET.encode()


@pytest.fixture
def site(settings, tmp_path, demo_path):
    """A running service over a campaign with Basics (2 afternoons, 2 places each) and In
    Action (3 days, 1 place) taken here, and 5 readers in its ledger."""
    engine = store.open_store(settings.database_url)
    campaign = hosted_campaign(tmp_path, demo_path, basics_places=(2, 2), action_places=1)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        courses = {
            c: find_course(conn, campaign.id, c) for c in ("equip-basics", "equip-in-action")
        }
        link_ids = register_links(
            conn,
            campaign.id,
            [
                LinkSpec(
                    key="equip-basics",
                    url="https://equip.example.org/join/x/y",
                    label="Sign up",
                    course_id="equip-basics",
                )
            ],
        )
    readers = seed_readers(engine, campaign, 5)
    outbox = tmp_path / "outbox"
    app = signup_app(settings, engine, outbox)
    with running_app(app) as base, httpx.Client(base_url=base) as client:
        yield Site(client, app, engine, campaign, courses, readers, link_ids, outbox)
    engine.dispose()


class Site:
    def __init__(self, client, app, engine, campaign, courses, readers, link_ids, outbox):
        self.client, self.app, self.engine = client, app, engine
        self.campaign, self.courses, self.readers = campaign, courses, readers
        self.link_ids, self.outbox = link_ids, outbox

    def page(self, course: str, reader: int) -> str:
        return f"/s/{tokens.signup_token(SECRET, self.courses[course].id, self.readers[reader])}"

    def sign_up(self, course: str, reader: int, **fields) -> httpx.Response:
        """Open the reader's page and press the button (choosing the first date)."""
        path = self.page(course, reader)
        shown = self.client.get(path)
        assert shown.status_code == 200, shown.text
        data = form_fields(shown.text)
        if not self.courses[course].attend_all:
            data["session"] = str(self.courses[course].sessions[0].id)
        data.update(fields)
        return self.client.post(path, data=data)

    def mails(self) -> list[email.message.EmailMessage]:
        self.app.state.service.notices.drain()
        files = sorted((self.outbox / "notices").glob("*.eml"))
        return [
            email.message_from_bytes(f.read_bytes(), policy=email.policy.default) for f in files
        ]


def test_the_emails_link_leads_to_a_prefilled_page_and_one_press_confirms(site):
    click = site.client.get(click_path(SECRET, site.link_ids["equip-basics"], site.readers[0]))
    assert click.status_code == 302 and click.headers["location"].startswith("/s/")
    page = site.client.get(click.headers["location"])
    assert page.status_code == 200
    assert '<html lang="en-GB">' in page.text  # as the mail: British spelling and dates read out
    assert 'value="Reader Number0"' in page.text and 'value="Example Health Centre"' in page.text
    assert "r***@n***.example" in page.text and "reader0@nhs.example" not in page.text
    assert "2 places left" in page.text
    done = site.sign_up("equip-basics", 0, access_needs="Step-free access, please")
    assert done.status_code == 303 and done.headers["location"].startswith("/r/")
    shown = site.client.get(done.headers["location"])
    assert "Your place is confirmed" in shown.text and "Step-free" not in shown.text
    [mail] = site.mails()
    assert mail["To"].addresses[0].addr_spec == "reader0@nhs.example"
    assert "confirmed" in mail["Subject"] and "Step-free" not in mail.as_string()
    # Greeted as the newsletter greets: "Dear" and the first name, in both parts.
    assert mail.get_body(("plain",)).get_content().splitlines()[0] == "Dear Reader,"
    assert "<p>Dear Reader,</p>" in mail.get_body(("html",)).get_content()
    calendar = next(p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar")
    assert "BEGIN:VEVENT" in calendar.get_content()


def test_a_name_typed_with_its_title_is_greeted_with_title_and_surname(site):
    """The form's name, as the reader typed it, is what the confirmation greets: title and
    surname, not "Dear Dr,"; the envelope keeps the name as typed."""
    done = site.sign_up("equip-basics", 1, name="dr. Zoë Ó Ceallaigh")
    assert done.status_code == 303, done.text
    [mail] = site.mails()
    assert mail["To"].addresses[0].display_name == "dr. Zoë Ó Ceallaigh"
    assert mail.get_body(("plain",)).get_content().splitlines()[0] == "Dear Dr Ó Ceallaigh,"
    assert "<p>Dear Dr Ó Ceallaigh,</p>" in mail.get_body(("html",)).get_content()


def test_a_confirmation_repeats_what_attendance_means_only_where_it_binds(site):
    """Found in the walkthrough: a confirmed EQUIP Basics afternoon still told the reader to
    "Choose one of the two afternoons"; attending all three days still needs saying."""
    site.sign_up("equip-basics", 2)
    site.sign_up("equip-in-action", 3)
    basics, action = (m.get_body(("plain",)).get_content() for m in site.mails())
    assert "Your place on EQUIP Basics is confirmed" in basics
    assert site.courses["equip-basics"].attendance == "Choose one of the two afternoons."
    assert "Choose one" not in basics
    assert "To complete the course you will need to attend all 3 days." in action


def test_a_second_submit_shows_the_existing_registration(site):
    path = site.page("equip-basics", 1)
    data = form_fields(site.client.get(path).text)
    data["session"] = str(site.courses["equip-basics"].sessions[0].id)
    first = site.client.post(path, data=data)
    double = site.client.post(path, data=data)  # a double click, or the back button and again
    assert first.status_code == double.status_code == 303
    own = first.headers["location"].removesuffix("?new=1")  # their link, as mailed
    assert double.headers["location"] == own + "?again=1"
    assert site.client.get(path).headers["location"] == double.headers["location"]
    assert "You had already signed up" in site.client.get(double.headers["location"]).text
    # Found in the audit: opening their own link later said so too, as if they had tried
    # to sign up twice.
    assert "already signed up" not in site.client.get(own).text
    with site.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.registrations)).scalar() == 1
        )
    assert len(site.mails()) == 1


def _csrf_for(site, path):
    from equip_mailer.signup.forms import CSRF_COOKIE, csrf_field

    return csrf_field(SECRET, site.client.cookies[CSRF_COOKIE], path)


def test_full_sessions_offer_the_waiting_list_and_a_cancellation_promotes(site):
    site.sign_up("equip-in-action", 0)  # the one place
    page = site.client.get(site.page("equip-in-action", 1))
    assert "Full \u2014 join the waiting list" in page.text and "Join the waiting list" in page.text
    waiting = site.client.get(site.sign_up("equip-in-action", 1).headers["location"])
    assert "number 1" in waiting.text
    first = site.client.get(site.page("equip-in-action", 0), follow_redirects=True)
    cancel = site.client.post(str(first.url.path), data=form_fields(first.text))
    assert cancel.status_code == 303
    assert "Your place is cancelled" in site.client.get(cancel.headers["location"]).text
    subjects = [m["Subject"] for m in site.mails()]
    assert subjects == [
        "Your place on EQUIP in Action is confirmed",
        "You are on the waiting list for EQUIP in Action",
        "Cancelled: your place on EQUIP in Action",
        "A place has come up for you on EQUIP in Action",
    ]
    said = site.mails()[2].get_body(("plain",)).get_content()
    assert "Thank you for letting us know" in said  # they cancelled it themselves


def test_forged_and_cross_campaign_links_are_not_found(site):
    basics = site.courses["equip-basics"]
    forged = site.page("equip-basics", 0)[:-2] + "AA"
    assert site.client.get(forged).status_code == 404
    other = seed_other_campaign_reader(site)
    cross = f"/s/{tokens.signup_token(SECRET, basics.id, other)}"  # signed, but not this campaign's
    assert site.client.get(cross).status_code == 404
    assert site.client.get(f"/r/{tokens.registration_token(SECRET, 999)}").status_code == 404
    assert site.client.get("/join/2019-04-equip-training/data-masterclass").status_code == 404


def seed_other_campaign_reader(site) -> int:
    now = store.utcnow()
    with site.engine.begin() as conn:
        store.ensure_campaign(conn, "2019-07-other", "Another campaign")
        return conn.execute(
            store.ledger.insert().values(
                campaign_id="2019-07-other",
                email="x@nhs.example",
                email_key="x@nhs.example",
                segment="s",
                state="sent",
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]


def test_posts_without_our_csrf_token_change_nothing(site):
    path = site.page("equip-basics", 0)
    site.client.get(path)
    data = {"name": "Mallory", "session": str(site.courses["equip-basics"].sessions[0].id)}
    assert site.client.post(path, data={**data, "csrf": "0" * 32}).status_code == 403
    cross = site.client.post(
        path,
        data={**data, "csrf": _csrf_for(site, path)},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    with site.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.registrations)).scalar() == 0
        )


def test_errors_are_tied_to_their_fields(site):
    path = site.page("equip-basics", 0)
    data = form_fields(site.client.get(path).text)
    bad = site.client.post(path, data={**data, "name": "", "role": "r" * 300})
    assert bad.status_code == 400
    assert 'href="#name"' in bad.text and 'aria-describedby="name-error"' in bad.text
    assert "Choose the date you would like to come" in bad.text
    assert 'id="role-error"' in bad.text and 'aria-invalid="true"' in bad.text


def test_open_sign_up_mails_a_link_first_and_is_rate_limited(site):
    join = "/join/2019-04-equip-training/equip-basics"
    page = site.client.get(join)
    assert page.status_code == 200 and 'autocomplete="email"' in page.text
    sent = site.client.post(join, data={**form_fields(page.text), "email": "Citizen@Example.org"})
    assert "Check your email" in sent.text
    with site.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.registrations)).scalar() == 0
        )
    [mail] = site.mails()
    link = re.search(r"(/i/[A-Za-z0-9_-]+)", mail.get_body(("plain",)).get_content()).group(1)
    form = site.client.get(link)
    assert "C***@e***.org" in form.text
    data = {
        **form_fields(form.text),
        "name": "Cy Citizen",
        "session": str(site.courses["equip-basics"].sessions[1].id),
    }
    done = site.client.post(link, data=data)
    assert done.status_code == 303
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(store.registrations)).one()
    assert (row.email, row.source, row.status) == ("Citizen@example.org", "open", "confirmed")
    for _ in range(2):
        site.client.post(join, data={**form_fields(page.text), "email": "citizen@example.org"})
    limited = site.client.post(
        join, data={**form_fields(page.text), "email": "citizen@example.org"}
    )
    assert limited.status_code == 429
    assert "already sent you links today" in limited.text
    assert "You can ask for another tomorrow" in limited.text  # not "try again in an hour"


def test_colleagues_behind_one_practice_connection_are_not_refused(site):
    """Found in the audit: ten links an hour per IP, when a practice's staff all reach us
    through one NHS gateway address; a forwarded "Share this course" filled it by lunch.
    The limit is now thirty, and meeting it says so in its own words."""
    from equip_mailer.signup import limits

    join = "/join/2019-04-equip-training/equip-basics"
    fields = form_fields(site.client.get(join).text)
    answers = [
        site.client.post(join, data={**fields, "email": f"colleague{i}@nhs.example"})
        for i in range(limits.PER_IP + 1)
    ]
    assert limits.PER_IP >= 25
    assert [a.status_code for a in answers[:-1]] == [200] * limits.PER_IP
    assert answers[-1].status_code == 429
    assert "Too many requests from your network" in answers[-1].text
    assert 'href="mailto:' in answers[-1].text  # somewhere to turn meanwhile


def test_the_calendar_is_offered_on_the_registration_page(site):
    done = site.sign_up("equip-basics", 3)
    page = site.client.get(done.headers["location"])
    ics = re.search(r'href="(/r/[^"]+/calendar\.ics)"', page.text).group(1)
    got = site.client.get(html.unescape(ics))
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/calendar")
    assert b"METHOD:PUBLISH" in got.content and b"TZID=Europe/London:20190627T130000" in got.content


def test_the_link_of_someone_forgotten_no_longer_signs_anyone_up(site, tmp_path):
    """After `forget`, the reader's old email still holds their sign-up link; it must not
    take a place in the name of the erased row's hash (nor mail a confirmation to it): it
    says the link no longer works and points to the course's own page."""
    from equip_mailer.people.forget import forget

    path = site.page("equip-basics", 1)
    shown = site.client.get(path)
    data = form_fields(shown.text)
    data["session"] = str(site.courses["equip-basics"].sessions[0].id)
    forget(site.engine, "reader1@nhs.example", SECRET, outbox=tmp_path, now=store.utcnow())

    again = site.client.get(path)
    pressed = site.client.post(path, data=data)

    for answer in (again, pressed):
        assert answer.status_code == 410
        assert "This link no longer works" in answer.text
        assert "/join/2019-04-equip-training/equip-basics" in answer.text
        assert "erased:" not in answer.text
    with site.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.registrations)).scalar() == 0
        )
    assert site.mails() == []


def test_the_button_says_waiting_list_when_every_date_still_to_come_is_full(
    settings, tmp_path, demo_path
):
    """In July the June afternoon (places left, but over) is no longer offered; with the
    September one full, pressing the button joins its waiting list, and the button says so
    instead of "Confirm my place"."""
    from dataclasses import replace

    from support.signup_data import NOW

    engine = store.open_store(settings.database_url)
    campaign = hosted_campaign(
        tmp_path,
        demo_path,
        basics_places=(2, 1),
        extra=(("    sign_up: equip\n", "    sign_up: equip\n    closes: 2019-09-09\n"),),
    )
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
    readers = seed_readers(engine, campaign, 2)
    app = signup_app(settings, engine, tmp_path / "outbox", now=NOW)
    june, september = basics.sessions
    with running_app(app) as base, httpx.Client(base_url=base) as client:
        first = f"/s/{tokens.signup_token(SECRET, basics.id, readers[0])}"
        data = {**form_fields(client.get(first).text), "session": str(september.id)}
        assert client.post(first, data=data).status_code == 303  # September's one place
        app.state.signup = replace(app.state.signup, now=lambda: june.starts_at)
        page = client.get(f"/s/{tokens.signup_token(SECRET, basics.id, readers[1])}").text
    engine.dispose()
    assert "27 June" not in page and "Full \u2014 join the waiting list" in page
    assert ">Join the waiting list</button>" in page


def test_the_closed_page_says_how_to_reach_the_team(site):
    """ "Please contact the EQUIP team" left a reader on a phone with no way to do it: the
    page now gives the course's reply-to address as a link that opens a new email."""
    from dataclasses import replace

    basics = site.courses["equip-basics"]
    site.app.state.signup = replace(site.app.state.signup, now=lambda: basics.closes_at)
    page = site.client.get(site.page("equip-basics", 0)).text
    assert "Sign-ups for EQUIP Basics have closed" in page
    assert 'href="mailto:equip-training@example.org"' in page


def test_an_expired_sign_up_link_leads_to_where_a_new_one_is_asked_for(site):
    """The page said "ask for a new one on the course's page" without a link to it; someone
    who came by a shared link and the mail it sent has nothing else to find that page by."""
    import datetime as dt
    from dataclasses import replace

    join = "/join/2019-04-equip-training/equip-basics"
    page = site.client.get(join)
    site.client.post(join, data={**form_fields(page.text), "email": "late@example.org"})
    [mail] = site.mails()
    link = re.search(r"(/i/[A-Za-z0-9_-]+)", mail.get_body(("plain",)).get_content()).group(1)
    later = store.utcnow() + dt.timedelta(days=8)
    site.app.state.signup = replace(site.app.state.signup, now=lambda: later)
    expired = site.client.get(link)
    assert expired.status_code == 410 and "This link has expired" in expired.text
    assert f'href="{join}"' in expired.text


def test_a_full_course_without_a_waiting_list_says_so_instead_of_blaming_the_name(
    settings, tmp_path, demo_path
):
    """EQUIP in Action (every day, one place, no waiting list) once taken: the form used to
    be shown, and pressing its button marked the Full name field "Sorry, this course is
    full." Now the page says the course is full, before and after a press."""
    engine = store.open_store(settings.database_url)
    campaign = hosted_campaign(
        tmp_path,
        demo_path,
        basics_places=(1, 20),
        action_places=1,
        extra=(
            ("    schedule: attend_all\n", "    schedule: attend_all\n    waiting_list: false\n"),
            ("    schedule: choose_one\n", "    schedule: choose_one\n    waiting_list: false\n"),
        ),
    )
    with engine.begin() as conn:
        register_courses(conn, campaign)
        action = find_course(conn, campaign.id, "equip-in-action")
        basics = find_course(conn, campaign.id, "equip-basics")
    readers = seed_readers(engine, campaign, 3)
    app = signup_app(settings, engine, tmp_path / "outbox")
    paths = [f"/s/{tokens.signup_token(SECRET, action.id, r)}" for r in readers]
    with running_app(app) as base, httpx.Client(base_url=base) as client:
        late = client.get(paths[2]).text  # opened while a place was left
        first = client.post(paths[0], data=form_fields(client.get(paths[0]).text))
        assert first.status_code == 303
        shown = client.get(paths[1])
        pressed = client.post(paths[2], data=form_fields(late))
        june = str(basics.sessions[0].id)
        for r in readers[:2]:  # June's one place, then June again: September has places
            path = f"/s/{tokens.signup_token(SECRET, basics.id, r)}"
            date_full = client.post(
                path, data={**form_fields(client.get(path).text), "session": june}
            )
    engine.dispose()
    assert date_full.status_code == 400
    assert 'id="session-error"><span class="visually-hidden">Error:</span> That date is full' in (
        date_full.text
    )
    for page in (shown, pressed):
        assert "EQUIP in Action is full" in page.text, page.text
        assert "<form" not in page.text and 'aria-invalid="true"' not in page.text
        assert 'href="mailto:equip-training@example.org"' in page.text


def test_the_last_date_taken_while_the_form_was_open_says_the_course_is_full(
    settings, tmp_path, demo_path
):
    """Found in review: a menu of dates without a waiting list, whose last free date was
    taken while the form stood open: the press answered "That date is full; please choose
    another." when there was none to choose. It now says the course is full, as the page
    opened then would."""
    engine = store.open_store(settings.database_url)
    campaign = hosted_campaign(
        tmp_path,
        demo_path,
        basics_places=(1, 1),
        action_places=1,
        extra=(
            ("    schedule: choose_one\n", "    schedule: choose_one\n    waiting_list: false\n"),
        ),
    )
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
    readers = seed_readers(engine, campaign, 3)
    app = signup_app(settings, engine, tmp_path / "outbox")
    paths = [f"/s/{tokens.signup_token(SECRET, basics.id, r)}" for r in readers]
    with running_app(app) as base, httpx.Client(base_url=base) as client:
        late = form_fields(client.get(paths[2]).text)  # opened while places were left
        for path, date in zip(paths[:2], basics.sessions, strict=True):  # June, then September
            taken = client.post(
                path, data={**form_fields(client.get(path).text), "session": str(date.id)}
            )
            assert taken.status_code == 303, taken.text
        pressed = client.post(paths[2], data={**late, "session": str(basics.sessions[0].id)})
    engine.dispose()
    assert f"{basics.name} is full" in pressed.text, pressed.text
    assert "choose another" not in pressed.text and "<form" not in pressed.text


def test_a_place_on_a_date_already_over_cannot_be_cancelled(site):
    """Opening the confirmation's "see or cancel your place" link after the afternoon still
    asked "Can't come?" and one press cancelled the place: the roster then said cancelled
    for someone who came. A date under way or over is history; the page says so."""
    from dataclasses import replace

    done = site.sign_up("equip-basics", 4)
    place = done.headers["location"].split("?")[0]
    before = form_fields(site.client.get(place).text)  # the page as left open in a tab
    june = site.courses["equip-basics"].sessions[0]
    site.app.state.signup = replace(site.app.state.signup, now=lambda: june.starts_at)
    page = site.client.get(place)
    assert "Cancel my place" not in page.text and "Can&#39;t come?" not in page.text
    assert "This date has passed" in page.text
    pressed = site.client.post(place, data=before)
    with site.engine.connect() as conn:
        status = conn.execute(sa.select(store.registrations.c.status)).scalar_one()
    assert status == "confirmed", pressed.text


def test_a_place_on_a_course_already_under_way_cannot_be_cancelled(site):
    """Found in review: on a course attended whole, the page went on offering "Cancel my
    place" after its first day, since later days were still to come. A press then said
    cancelled on the first day's roster for someone who came, and gave the place to the
    first person waiting, mailed to join a course half over."""
    from dataclasses import replace

    site.sign_up("equip-in-action", 0)  # the one place
    site.sign_up("equip-in-action", 1)  # waiting
    first = site.client.get(site.page("equip-in-action", 0), follow_redirects=True)
    before = form_fields(first.text)  # the page as left open in a tab
    day_one = site.courses["equip-in-action"].sessions[0]
    site.app.state.signup = replace(site.app.state.signup, now=lambda: day_one.starts_at)

    page = site.client.get(str(first.url.path))
    pressed = site.client.post(str(first.url.path), data=before)

    assert "Cancel my place" not in page.text and "This course has started" in page.text
    with site.engine.connect() as conn:
        statuses = conn.execute(
            sa.select(store.registrations.c.status).order_by(store.registrations.c.id)
        ).scalars()
        assert list(statuses) == ["confirmed", "waiting"], pressed.text
