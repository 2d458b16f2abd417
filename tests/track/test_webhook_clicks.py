"""With `tracking: {clicks: sendgrid}`, SendGrid rewrites the links and reports clicks by URL;
those clicks must land on the same registered link as our own /c/ clicks would."""

from __future__ import annotations

import time

from support.tracking_data import message_id, rows, seed_campaign

from equip_mailer import store
from equip_mailer.track import webhook

ANN = "ann.example@example.org"


def sendgrid_click(campaign, url: str, t: int) -> dict:
    return {
        "email": ANN,
        "timestamp": t,
        "event": "click",
        "url": url,
        "sg_message_id": f"{message_id()}.filter0001",
        "campaign_id": campaign.id,
        "recipient": str(campaign.recipients[ANN]),
        "send_id": campaign.send_id,
        "segment": campaign.segment,
        "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
    }


def test_sendgrid_clicks_are_joined_to_the_registered_link(db_url):
    engine = store.open_store(db_url)
    campaign = seed_campaign(engine, b"secret")
    t = int(time.time()) - 3600
    items = [
        sendgrid_click(campaign, campaign.urls["measurement"], t),
        sendgrid_click(campaign, "https://elsewhere.example.org/not-ours", t + 60),
    ]
    with engine.begin() as conn:
        result = webhook.store_events(conn, items, ip_key=b"k")
    assert result.stored == 2
    clicks = {r.url: r.link_id for r in rows(engine, store.events, store.events.c.event == "click")}
    assert clicks == {
        campaign.urls["measurement"]: campaign.link_ids["measurement"],
        "https://elsewhere.example.org/not-ours": None,
    }
    engine.dispose()


def test_only_address_drops_suppress_and_the_raw_event_keeps_no_ip():
    assert (
        webhook.suppression_reason({"event": "dropped", "reason": "Invalid"}, "dropped")
        == "dropped"
    )
    assert (
        webhook.suppression_reason({"event": "dropped", "reason": "Bounced Address"}, "dropped")
        == "dropped"
    )
    # about our request or account, not the address: suppressing would remove a whole batch
    for reason in ("Invalid SMTPAPI header", "Recipient List over Package Quota"):
        assert webhook.suppression_reason({"event": "dropped", "reason": reason}, "dropped") is None
    row = webhook.normalise(
        {"event": "click", "ip": "203.0.113.7", "email": ANN, "timestamp": 1}, ip_key=b"k"
    )
    assert "203.0.113.7" not in row["raw"] and row["ip_hash"]


def test_another_apps_event_cannot_fail_the_batch(db_url):
    """SendGrid posts every event of the account: a huge 'recipient' or a NUL in a field
    from someone else's mail must be stored as unjoined, not make every retry a 500."""
    engine = store.open_store(db_url)
    campaign = seed_campaign(engine, b"secret")
    t = int(time.time()) - 3600
    odd = {
        "email": "other@example.net",
        "timestamp": t,
        "event": "bounce",
        "recipient": "98765432101",
        "sg_message_id": f"{message_id()}.filter0001",
        "reason": "550 no\x00such user",
    }
    ours = {
        **sendgrid_click(campaign, campaign.urls["measurement"], t),
        "event": "bounce",
        "reason": "550 unknown user",
    }
    with engine.begin() as conn:
        result = webhook.store_events(conn, [odd, ours], ip_key=b"k")
    assert result.stored == 2
    stored = {r.ledger_id for r in rows(engine, store.events)}
    assert stored == {None, campaign.recipients[ANN]}
    engine.dispose()
