"""Signing in with a link from one's mail, over real HTTP: the link comes through the
outbox, works once, for 15 minutes, for its own address; the answer to "send me a link" is
the same whoever asks; sign-out ends the session for good."""

from __future__ import annotations

import datetime as dt
import html
import logging
import re

import sqlalchemy as sa
from support.team_pages import csrf_token, link_in, sign_in_mails, team_service

from equip_mailer import store
from equip_mailer.team import audit


def test_a_team_member_signs_in_with_the_link_from_the_outbox(team, engine, caplog):
    caplog.set_level(logging.INFO, logger="equip_mailer")
    client = team.client()
    form = client.get("/team/sign-in")
    assert form.status_code == 200 and "Email me a sign-in link" in form.text
    assert 'type="password"' not in form.text
    answer = team.ask_for_link(client, "Ann@NHS.example")
    assert answer.status_code == 200 and "Check your email" in answer.text
    team.delivered()
    [mail] = sign_in_mails(team.outbox)
    assert mail["To"] == "ann@nhs.example"
    assert "sign-in link" in mail["Subject"]
    link = link_in(mail)
    assert link.startswith(f"{team.base_url}/team/sign-in/")  # the service's public URL
    path = link.removeprefix(team.base_url)
    # Opening the link (as a mail scanner would) signs nobody in; the button does.
    assert client.get(path).status_code == 200
    assert client.get("/team/").status_code == 303
    signed_in = team.use_link(client, path)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/team/"
    cookie = signed_in.headers["set-cookie"]
    assert cookie.startswith("equip_team=") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/team/")
    assert home.status_code == 200 and "Signed in as ann@nhs.example" in home.text
    with engine.connect() as conn:
        assert [e.action for e in audit.recent(conn)] == ["signed in"]
        stored = conn.execute(sa.select(store.team_signin_links.c.token_hash)).scalars().all()
    token = path.rsplit("/", 1)[1]
    assert token not in stored  # only its hash is kept
    assert token not in caplog.text and "ann@nhs.example" not in caplog.text


def test_the_answer_is_the_same_for_team_and_other_addresses(team):
    client = team.client()
    member = team.ask_for_link(client, "ann@nhs.example")
    stranger = team.ask_for_link(client, "mallory@nhs.example")
    assert member.status_code == stranger.status_code == 200
    assert member.text == stranger.text
    assert {k: v for k, v in member.headers.items() if k not in ("date", "content-length")} == {
        k: v for k, v in stranger.headers.items() if k not in ("date", "content-length")
    }
    team.delivered()
    assert [m["To"] for m in sign_in_mails(team.outbox)] == ["ann@nhs.example"]


def test_a_link_works_once(team):
    client = team.client()
    team.ask_for_link(client, "ann@nhs.example")
    path = team.latest_link_path()
    page = client.get(path)
    assert team.use_link(client, path).status_code == 303
    again = client.post(path, data={"csrf_token": csrf_token(page.text)})
    assert again.status_code == 410 and "cannot be used" in again.text
    assert client.get(path).status_code == 410
    other = team.client()  # a second browser with the same link
    assert other.get(path).status_code == 410


def test_a_link_expires_after_fifteen_minutes(team, engine):
    client = team.client()
    team.ask_for_link(client, "ann@nhs.example")
    path = team.latest_link_path()
    page = client.get(path)
    with engine.begin() as conn:  # sixteen minutes pass
        conn.execute(
            store.team_signin_links.update().values(
                expires_at=store.utcnow() - dt.timedelta(minutes=1)
            )
        )
    answer = client.post(path, data={"csrf_token": csrf_token(page.text)})
    assert answer.status_code == 410
    assert client.get("/team/").status_code == 303


def test_a_link_is_bound_to_its_address(team, engine, settings, tmp_path):
    """Bob's link signs in Bob, whoever opens it; once Bob leaves the team it is void and
    his session ends."""
    client = team.client()
    team.ask_for_link(client, "bob@nhs.example")
    team.use_link(client, team.latest_link_path())
    assert "Signed in as bob@nhs.example" in client.get("/team/").text
    team.ask_for_link(team.client(), "bob@nhs.example")
    unused = team.latest_link_path()
    # The service restarts with Bob off the team.
    with team_service(settings, engine, team.outbox, team=("ann@nhs.example",)) as after:
        with after.client() as same_browser:
            same_browser.cookies.update(dict(client.cookies))
            assert same_browser.get("/team/").status_code == 303
        fresh = after.client()
        page = fresh.get(unused)
        assert page.status_code == 200  # still unused...
        answer = fresh.post(unused, data={"csrf_token": csrf_token(page.text)})
        assert answer.status_code == 410  # ...but it signs nobody in


def test_a_stolen_cookie_stops_working_after_sign_out(team):
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    stolen = dict(client.cookies)
    thief = team.client()
    thief.cookies.update(stolen)
    assert thief.get("/team/").status_code == 200
    home = client.get("/team/")
    out = client.post("/team/sign-out", data={"csrf_token": csrf_token(home.text)})
    assert out.status_code == 303 and out.headers["location"] == "/team/sign-in?signed_out=1"
    assert 'equip_team=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert "You have signed out" in client.get("/team/sign-in?signed_out=1").text
    refused = thief.get("/team/")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/team/sign-in")


def test_too_many_requests_from_one_network_are_refused_and_one_address_gets_three_links(team):
    client = team.client()
    answers = [team.ask_for_link(client, "ann@nhs.example").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 200]
    team.delivered()
    assert len(sign_in_mails(team.outbox)) == 3  # the fourth was quietly not sent
    for i in range(6):
        team.ask_for_link(client, f"someone{i}@nhs.example")
    limited = team.ask_for_link(client, "bob@nhs.example")
    assert limited.status_code == 429 and "15 minutes" in limited.text
    team.delivered()
    assert len(sign_in_mails(team.outbox)) == 3


def test_an_address_that_is_not_one_is_asked_again(team):
    client = team.client()
    answer = team.ask_for_link(client, "ann at nhs")
    assert answer.status_code == 400 and "Enter your email address" in answer.text
    assert 'aria-invalid="true"' in answer.text


def hidden_fields(page: str) -> dict[str, str]:
    """The sign-in form's hidden fields, as a browser posts them."""
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page)
    }


def test_after_signing_in_one_lands_on_the_page_one_was_sent_from(team):
    """A trainer opens a roster link a colleague sent, is asked to sign in, and after the
    link's button is on that roster, not on the campaigns list; even when the address was
    mistyped first."""
    client = team.client()
    wanted = "/team/campaigns/2019-04-equip-training/signups?all=1"
    sent = client.get(wanted)
    assert sent.status_code == 303
    form = client.get(sent.headers["location"])
    mistyped = client.post(
        "/team/sign-in", data={**hidden_fields(form.text), "email": "ann at nhs"}
    )
    assert mistyped.status_code == 400
    asked = client.post(
        "/team/sign-in", data={**hidden_fields(mistyped.text), "email": "ann@nhs.example"}
    )
    assert asked.status_code == 200 and "Check your email" in asked.text
    signed_in = team.use_link(client, team.latest_link_path())
    assert signed_in.status_code == 303 and signed_in.headers["location"] == wanted
    assert "equip_team_next" not in client.cookies  # used once, then forgotten


def test_a_posted_next_never_leads_off_the_team_pages(team):
    client = team.client()
    form = client.get("/team/sign-in")
    fields = {**hidden_fields(form.text), "email": "ann@nhs.example"}
    client.post("/team/sign-in", data={**fields, "next": "https://evil.example/team/"})
    signed_in = team.use_link(client, team.latest_link_path())
    assert signed_in.headers["location"] == "/team/"
