"""The privacy notice the spec names (footer.privacy_url) is linked, untracked, from every
part of the newsletter, every sign-up mail and the sign-up pages."""

from __future__ import annotations

from support.signup_data import NOW

from equip_mailer import store
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.signup import mails, pages
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses
from equip_mailer.signup.notify import MailLinks

PRIVACY = "https://equip.example.org/privacy"


def test_every_segment_links_the_notice_in_both_parts(demo_path):
    rendered = render_campaign(load_campaign(demo_path, allow_past=True))
    assert len(rendered) == 3
    for segment in rendered.values():
        assert f'<a href="{PRIVACY}"' in segment.html and ">Privacy notice</a>" in segment.html
        assert f"Privacy notice: {PRIVACY}" in segment.text


def test_sign_up_mails_and_pages_link_the_notice(demo_path, sqlite_url):
    from support.link_secrets import LINK_SECRET

    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        register_courses(conn, load_campaign(demo_path, allow_past=True))
        basics = find_course(conn, "2019-04-equip-training", "equip-basics")
    with store.immediate(engine) as conn:
        outcome = reg.register(
            conn, basics.id, reg.Applicant("ann@nhs.example", "Ann"), basics.sessions[0].id, NOW
        )
        links = MailLinks("https://equip.example.org", LINK_SECRET.encode())
        from equip_mailer.signup import notify

        notify.registered(conn, outcome, links, NOW)
        texts = conn.execute(store.notices.select()).all()
    assert basics.privacy_url == PRIVACY
    assert texts and all(f"Privacy notice: {PRIVACY}" in n.text for n in texts)
    assert all(f'href="{PRIVACY}"' in n.html for n in texts)
    invite = mails.invite(basics, 1, "ann@nhs.example", "https://equip.example.org/i/x")
    assert f"Privacy notice: {PRIVACY}" in invite.text

    page = pages.render(
        "join.html.j2",
        title="Sign up",
        course=basics,
        sessions=list(basics.sessions),
        free={},
        values={},
        errors={},
        anchors={},
        csrf="",
    ).body.decode()
    assert f'<a href="{PRIVACY}">Privacy notice</a>' in page
    engine.dispose()
