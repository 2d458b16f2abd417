"""/u/ over real HTTP: the page shows one button and changes nothing; a POST (RFC 8058
one-click or the page's form) suppresses the address once; bad tokens get the 404 page; a
failure says plainly that nothing happened.
"""

from __future__ import annotations

import logging

import httpx
import sqlalchemy as sa
from support.service import running_app
from support.tracking_data import ANN, BOB
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.send.links import click_token, reader_token, unsubscribe_token
from equip_mailer.signup.tokens import registration_token
from equip_mailer.track.app import create_app


def test_unsubscribe_page_shows_one_button_and_changes_nothing(service, campaign, engine):
    _, client = service
    response = client.get(campaign.unsubscribe_path(ANN))
    assert response.status_code == 200
    page = response.text
    assert page.count("<button") == 1 and '<form method="post">' in page
    assert 'lang="en-GB"' in page and "<h1>" in page
    assert ANN not in page and "a***@e***.org" in page  # masked, even to the reader
    assert rows(engine, store.suppressions) == []
    assert rows(engine) == []
    assert client.head(campaign.unsubscribe_path(ANN)).status_code == 200
    assert rows(engine, store.suppressions) == []


def test_one_click_unsubscribe_suppresses_once(service, campaign, engine, caplog):
    caplog.set_level(logging.INFO, logger="equip_mailer")
    _, client = service
    path = campaign.unsubscribe_path(ANN)
    for attempt in range(2):  # RFC 8058 one-click, then the same again
        response = client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, attempt
        assert "You are unsubscribed" in response.text
    suppressed = rows(engine, store.suppressions)
    assert [(s.email_key, s.reason, s.campaign_id) for s in suppressed] == [
        (ANN, "unsubscribe", campaign.id)
    ]
    unsubs = rows(engine, store.events, store.events.c.event == "unsubscribe")
    assert len(unsubs) == 1 and unsubs[0].ledger_id == campaign.recipients[ANN]
    # The page now says so, and the log never held the address.
    assert "already off our mailing list" in client.get(path).text
    assert ANN not in caplog.text and "a***@e***.org" in caplog.text


def test_the_link_of_someone_forgotten_names_no_hash_and_keeps_no_trace(
    service, campaign, engine, settings, tmp_path
):
    """Found in the audit: after ``forget``, their old unsubscribe link's page showed the
    masked keyed hash ("e***"), and a POST stored its user agent and IP hash again."""
    from equip_mailer.people.forget import forget

    forget(engine, ANN, settings.require_link_secret(), outbox=tmp_path, now=store.utcnow())
    _, client = service
    path = campaign.unsubscribe_path(ANN)

    page = client.get(path).text
    posted = client.post(path, content=b"List-Unsubscribe=One-Click")

    assert "This address is already off our mailing list" in page and "e***" not in page
    assert posted.status_code == 200 and "e***" not in posted.text
    unsubs = rows(engine, store.events, store.events.c.event == "unsubscribe")
    assert [(u.user_agent, u.ip_hash) for u in unsubs] == [(None, None)]


def test_a_reader_who_unsubscribed_by_mistake_can_subscribe_again(service, campaign, engine):
    """Found in the audit: the page said "If this was a mistake, contact the EQUIP team",
    and the team had no way to lift the suppression. The same link now takes it back."""
    _, client = service
    path = campaign.unsubscribe_path(ANN)
    done = client.post(path, content=b"List-Unsubscribe=One-Click")
    form = f'<form method="post" action="{path}/resubscribe">'
    assert "You are unsubscribed" in done.text and form in done.text
    assert form in client.get(path).text  # coming back to the link later offers it too
    assert client.get(f"{path}/resubscribe").status_code == 405  # a scanner's GET changes nothing
    assert [s.email_key for s in rows(engine, store.suppressions)] == [ANN]

    back = client.post(f"{path}/resubscribe")

    assert back.status_code == 200 and "You are subscribed again" in back.text
    assert "a***@e***.org" in back.text and ANN not in back.text
    assert rows(engine, store.suppressions) == []
    (event,) = rows(engine, store.events, store.events.c.event == "resubscribe")
    assert (event.ledger_id, event.campaign_id) == (campaign.recipients[ANN], campaign.id)
    assert "Stop sending EQUIP course emails" in client.get(path).text  # the button again
    again = client.post(f"{path}/resubscribe")  # a second press changes nothing
    assert "You are on our mailing list" in again.text
    assert len(rows(engine, store.events, store.events.c.event == "resubscribe")) == 1
    client.post(path, content=b"List-Unsubscribe=One-Click")  # and they can leave again
    assert [s.email_key for s in rows(engine, store.suppressions)] == [ANN]


def test_leaving_again_after_subscribing_again_is_recorded(service, campaign, engine):
    """Found in review: the unsubscribe event's dedupe key was fixed per recipient, so once
    a reader had taken an unsubscribe back, leaving again suppressed them with no event:
    their history ended on "resubscribe" while no mail went to them. Each change of mind is
    an event; a repeated POST still adds nothing."""
    _, client = service
    path = campaign.unsubscribe_path(ANN)
    client.post(path, content=b"List-Unsubscribe=One-Click")
    client.post(f"{path}/resubscribe")

    for _ in range(2):  # leaving again, and the same POST once more
        client.post(path, content=b"List-Unsubscribe=One-Click")

    assert [s.email_key for s in rows(engine, store.suppressions)] == [ANN]
    history = rows(engine, store.events, store.events.c.source == "tracker")
    assert [e.event for e in sorted(history, key=lambda e: e.id)] == [
        "unsubscribe",
        "resubscribe",
        "unsubscribe",
    ]


def test_only_their_own_unsubscribe_can_be_taken_back(service, campaign, engine):
    """A bounce, a spam report or the team's suppression is not the reader's to lift."""
    with engine.begin() as conn:
        store.add_suppression(conn, BOB, "bounce", source="webhook")
    _, client = service
    path = campaign.unsubscribe_path(BOB)
    assert "Subscribe again" not in client.get(path).text
    assert "Subscribe again" not in client.post(path, content=b"List-Unsubscribe=One-Click").text

    refused = client.post(f"{path}/resubscribe")

    assert "This link cannot turn emails back on" in refused.text
    assert [(s.email_key, s.reason) for s in rows(engine, store.suppressions)] == [(BOB, "bounce")]
    assert rows(engine, store.events, store.events.c.event == "resubscribe") == []


def test_unsubscribe_form_post_and_bad_tokens(service, campaign, engine, settings):
    _, client = service
    response = client.post(campaign.unsubscribe_path(BOB), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert [s.email_key for s in rows(engine, store.suppressions)] == [BOB]
    secret = settings.require_link_secret()
    ann = campaign.recipients[ANN]
    bad = [click_token(secret, campaign.link_ids["about"], ann), registration_token(secret, ann)]
    for good in (reader_token(secret, ann), unsubscribe_token(secret, ann)):
        bad += [good[:-2], good[:4] + ("x" if good[4] != "x" else "y") + good[5:]]
    for token in bad:
        assert client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click").status_code == 404
        missing = client.get(f"/u/{token}")
        assert (
            missing.status_code == 404 and "help you sign up" not in missing.text
        )  # not a sign-up
    for preview in (reader_token(secret, 0), unsubscribe_token(secret, 0)):
        assert client.post(f"/u/{preview}").status_code == 200  # a test send's or preview's
    assert [s.email_key for s in rows(engine, store.suppressions)] == [BOB]


def test_an_unsubscribe_link_in_mail_sent_before_reader_tokens_still_works(
    service, campaign, engine
):
    _, client = service
    path = campaign.old_unsubscribe_path(ANN)
    assert client.get(path).status_code == 200
    assert client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 200
    assert [s.email_key for s in rows(engine, store.suppressions)] == [ANN]


def test_unsubscribe_failure_says_so_plainly(settings, engine, campaign):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE suppressions"))
    with running_app(create_app(settings, engine)) as base:
        page = httpx.get(base + campaign.unsubscribe_path(ANN))
        done = httpx.post(
            base + campaign.unsubscribe_path(ANN), content=b"List-Unsubscribe=One-Click"
        )
    assert page.status_code == 503 and "try the link again" in page.text
    assert done.status_code == 500 and "not</strong> unsubscribed" in done.text
