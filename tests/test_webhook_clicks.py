"""With `tracking: {clicks: sendgrid}`, SendGrid rewrites the links and reports clicks by URL;
those clicks must land on the same registered link as our own /c/ clicks would."""

from __future__ import annotations

import time

from support.tracking_data import message_id, rows, seed_campaign

from equip_mailer import store, webhook

ANN = "ann.example@example.org"


def sendgrid_click(campaign, url: str, t: int) -> dict:
    return {"email": ANN, "timestamp": t, "event": "click", "url": url,
            "sg_message_id": f"{message_id()}.filter0001", "campaign_id": campaign.id,
            "recipient": str(campaign.recipients[ANN]), "send_id": campaign.send_id,
            "segment": campaign.segment,
            "useragent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36"}


def test_sendgrid_clicks_are_joined_to_the_registered_link(db_url):
    engine = store.open_store(db_url)
    campaign = seed_campaign(engine, b"secret")
    t = int(time.time()) - 3600
    items = [sendgrid_click(campaign, campaign.urls["measurement"], t),
             sendgrid_click(campaign, "https://elsewhere.example.org/not-ours", t + 60)]
    with engine.begin() as conn:
        result = webhook.store_events(conn, items, ip_key=b"k")
    assert result.stored == 2
    clicks = {r.url: r.link_id for r in rows(engine, store.events, store.events.c.event == "click")}
    assert clicks == {campaign.urls["measurement"]: campaign.link_ids["measurement"],
                      "https://elsewhere.example.org/not-ours": None}
    engine.dispose()
