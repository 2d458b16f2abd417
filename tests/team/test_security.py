"""The team pages' locks, tried from outside: no session, no CSRF token, a reader's token,
a redirect pointed elsewhere. Every refusal changes nothing."""

from __future__ import annotations

import sqlalchemy as sa
from support.team_pages import csrf_token
from support.tracking_data import ANN, BOB, seed_campaign

from equip_mailer import store
from equip_mailer.signup.tokens import registration_token, signup_token
from equip_mailer.team import audit

PAGES = [
    "/team/",
    "/team/activity",
    "/team/campaigns/2019-04-equip",
    "/team/campaigns/2019-04-equip/report.xlsx",
    "/team/campaigns/2019-04-equip/csv/funnel.csv",
    "/team/campaigns/2019-04-equip/signups",
    "/team/campaigns/2019-04-equip/sessions/1",
    "/team/campaigns/2019-04-equip/sessions/1/roster.csv",
    "/team/campaigns/2019-04-equip/sessions/1/roster.xlsx",
    "/team/campaigns/2019-04-equip/sessions/1/sign-in.html",
    "/team/campaigns/2019-04-equip/sessions/1/people/1/cancel",
    "/team/campaigns/2019-04-equip/sessions/1/people/1/give-place",
]
CHANGES = [  # every POST that changes a registration or an attendance
    "/team/campaigns/2019-04-equip/sessions/1/people/1/cancel",
    "/team/campaigns/2019-04-equip/sessions/1/people/1/give-place",
    "/team/campaigns/2019-04-equip/sessions/1/people/1/attendance",
]


def test_every_page_without_a_session_redirects_to_sign_in(team):
    client = team.client()
    for path in PAGES:
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/team/sign-in?next=/team/"), path
    assert client.get("/team").headers["location"] == "/team/"
    for path in CHANGES:
        posted = client.post(path, data={"csrf_token": "x", "attended": "yes"})
        assert posted.status_code == 303 and posted.headers["location"].startswith(
            "/team/sign-in"
        ), path
    posted = client.post("/team/sign-out", data={"csrf_token": "x"})
    assert posted.status_code == 303 and posted.headers["location"].startswith("/team/sign-in")


def test_posts_without_their_csrf_token_are_refused(team, engine):
    client = team.client()
    client.get("/team/sign-in")  # the pre-session cookie is set...
    no_token = client.post("/team/sign-in", data={"email": "ann@nhs.example"})
    assert no_token.status_code == 403 and "nothing was changed" in no_token.text
    stranger = team.client()  # ...and a token from another browser is worth nothing
    theirs = csrf_token(stranger.get("/team/sign-in").text)
    forged = client.post("/team/sign-in", data={"email": "ann@nhs.example", "csrf_token": theirs})
    assert forged.status_code == 403
    team.delivered()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.notices)).scalar() == 0

    team.ask_for_link(client, "ann@nhs.example")
    path = team.latest_link_path()
    assert client.post(path, data={}).status_code == 403  # the link's button needs it too
    assert team.use_link(client, path).status_code == 303  # and the link was not used up

    other = team.client()
    team.sign_in(other, "bob@nhs.example")
    bobs = csrf_token(other.get("/team/").text)
    assert client.post("/team/sign-out", data={}).status_code == 403
    assert client.post("/team/sign-out", data={"csrf_token": bobs}).status_code == 403
    for path in CHANGES:  # refused before anything is looked up, let alone changed
        assert client.post(path, data={"attended": "yes"}).status_code == 403, path
        assert client.post(path, data={"csrf_token": bobs}).status_code == 403, path
    assert client.get("/team/").status_code == 200  # still signed in: nothing happened
    with engine.connect() as conn:
        assert [e.action for e in audit.recent(conn)] == ["signed in", "signed in"]


def test_no_reader_token_opens_a_team_page(team, engine, settings):
    """Tokens readers hold (click, unsubscribe, sign-up, registration links) are signed
    with the same secret; none of them works as a session, a sign-in link or a CSRF token."""
    secret = settings.require_link_secret()
    campaign = seed_campaign(engine, secret)
    reader_tokens = [
        campaign.reader_token(ANN),
        campaign.old_click_path("measurement", ANN).rsplit("/", 1)[1],
        campaign.old_unsubscribe_path(BOB).rsplit("/", 1)[1],
        signup_token(secret, 1, campaign.recipients[ANN]),
        registration_token(secret, 1),
    ]
    for token in reader_tokens:
        client = team.client()
        client.cookies.set("equip_team", token)
        for path in PAGES:
            assert client.get(path).status_code == 303, (token, path)
        assert client.get(f"/team/sign-in/{token}").status_code == 410
        pre = csrf_token(client.get("/team/sign-in").text)
        assert client.post(f"/team/sign-in/{token}", data={"csrf_token": pre}).status_code == 410
        assert (
            client.post("/team/sign-in", data={"email": ANN, "csrf_token": token}).status_code
            == 403
        )
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.team_sessions)).scalar() == 0
        )


def test_sign_in_never_redirects_off_the_team_pages(team):
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    for target in ("https://evil.example/", "//evil.example/team/", "/c/abc", "/team/\\evil", ""):
        answer = client.get("/team/sign-in", params={"next": target})
        assert answer.status_code == 303 and answer.headers["location"] == "/team/", target
    answer = client.get("/team/sign-in", params={"next": "/team/activity"})
    assert answer.headers["location"] == "/team/activity"


def test_every_team_page_is_uncached_unframed_and_runs_no_script(team):
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    for path in ["/team/sign-in?x=1", *PAGES]:
        answer = client.get(path)
        assert answer.headers["cache-control"] == "no-store", path
        assert answer.headers["referrer-policy"] == "no-referrer", path
        assert answer.headers["x-frame-options"] == "DENY", path
        assert "default-src 'none'" in answer.headers["content-security-policy"], path
        assert "<script" not in answer.text, path
