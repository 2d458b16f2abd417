"""The campaigns page: each campaign's ledger and what to do about it, in the words and
commands ``equip-mailer status`` uses."""

from __future__ import annotations

import sqlalchemy as sa
from support.team_pages import add_uncertain_batch
from support.tracking_data import ANN, BOB, seed_campaign

from equip_mailer import store


def test_the_campaigns_page_shows_each_ledger_and_the_exact_command(team, engine, settings):
    secret = settings.require_link_secret()
    seed_campaign(engine, secret, campaign_id="2019-01-equip")
    seed_campaign(engine, secret, campaign_id="2019-04-equip")
    with engine.begin() as conn:
        conn.execute(
            store.campaigns.update()
            .where(store.campaigns.c.id == "2019-04-equip")
            .values(spec_path="campaigns/2019-04-equip.yaml")
        )
    add_uncertain_batch(engine, "2019-04-equip", ["carol@example.org", "dan@example.org"])
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    page = client.get("/team/").text
    assert page.count('<a href="/team/campaigns/2019-04-equip">') == 2
    assert '<a href="/team/campaigns/2019-01-equip">' in page
    april = page[page.index("/team/campaigns/2019-04-equip") :]
    assert ">uncertain</th>" in april and ">2</td>" in april
    assert "2 of 2 recipients still uncertain" in april and "timed out after 30 s" in april
    assert "equip-mailer send campaigns/2019-04-equip.yaml --retry-uncertain" in april
    january = page[page.index("/team/campaigns/2019-01-equip") :]
    assert "Nothing to do: every recipient is sent or suppressed." in january
    for reader in (ANN, BOB, "carol@example.org"):
        assert reader not in page


def test_with_no_campaign_yet_the_page_says_how_one_appears(team):
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    assert "No campaign has been sent yet" in client.get("/team/").text


def test_a_campaign_never_sent_does_not_say_it_was(team, engine, settings):
    """A dry run, or sign-ups imported before the send, put the campaign in the store with
    nothing sent: the page says so, and gives a sent campaign the day of its first batch."""
    seed_campaign(engine, settings.require_link_secret(), campaign_id="2019-01-equip")
    with engine.begin() as conn:
        store.ensure_campaign(conn, "2019-07-equip", "EQUIP courses next quarter")
        first_batch = conn.execute(
            sa.select(sa.func.min(store.batches.c.created_at)).where(
                store.batches.c.campaign_id == "2019-01-equip"
            )
        ).scalar_one()
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    sections = {
        s[s.index("<code>") + 6 : s.index("</code>")]: s
        for s in client.get("/team/").text.split("<section")[1:]
    }
    assert "not sent yet" in sections["2019-07-equip"]
    assert "first sent" not in sections["2019-07-equip"]
    assert f"first sent {first_batch:%d %b %Y}" in sections["2019-01-equip"]


def test_the_command_for_a_campaign_with_past_sessions_runs_as_shown(team, engine, demo_path):
    """Found in the audit: for the demo (sessions in 2019) the page suggested `equip-mailer
    send <spec>`, which send refuses without --allow-past, as status already adds."""
    from support.signup_data import seed_readers

    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.signup.catalogue import register_courses

    campaign = load_campaign(demo_path, allow_past=True)
    seed_readers(engine, campaign, 2)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        conn.execute(store.ledger.update().values(state="pending"))  # not sent yet
    client = team.client()
    team.sign_in(client, "ann@nhs.example")

    page = client.get("/team/").text

    assert f"equip-mailer send campaigns/{campaign.id}.yaml --allow-past</" in page
