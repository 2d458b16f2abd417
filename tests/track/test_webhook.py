"""SendGrid's events into our store without a server: the dedupe key is what the event is,
odd events normalise without failing their batch, only drops about the address suppress,
and with `tracking: {clicks: sendgrid}` SendGrid's clicks (reported by URL) land on the same
registered link as our own /c/ clicks would.
"""

from __future__ import annotations

import json
import time

from support.tracking_data import ANN, BOB, message_id, rows, seed_campaign, sendgrid_events

from equip_mailer import store
from equip_mailer.track import webhook


def test_dedupe_key_ignores_sg_event_id_and_the_filter_suffix():
    base = {
        "email": "Ann@Example.org",
        "timestamp": 1555318800,
        "event": "click",
        "sg_event_id": "one",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "url": "https://equip.example.org/a",
        "recipient": "7",
    }
    assert webhook.message_stem(base["sg_message_id"]) == "14c5d75ce93.dfd.64b469"
    same = {
        **base,
        "sg_event_id": "two",
        "email": "ann@example.org",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0099.1.2.0",
    }
    assert webhook.dedupe_key(base) == webhook.dedupe_key(same)
    for change in (
        {"timestamp": 1555318801},
        {"url": "https://equip.example.org/b"},
        {"event": "open"},
        {"email": "bob@example.org"},
        {"recipient": "8"},
        {"sg_message_id": "ffffffffff.dfd.64b469.filter0001"},
    ):
        assert webhook.dedupe_key({**base, **change}) != webhook.dedupe_key(base), change
    assert len(webhook.dedupe_key(base)) == 64 and "ann" not in webhook.dedupe_key(base)


def test_normalise_keeps_unknown_events_and_survives_odd_fields():
    row = webhook.normalise(
        {
            "event": "machine_opened",
            "email": "x@example.org",
            "timestamp": "bad",
            "recipient": "not-a-number",
            "campaign_id": 5,
            "ip": "10.0.0.1",
        },
        ip_key=b"k",
    )
    assert row["event"] == "unknown" and row["ledger_id"] is None and row["campaign_id"] == "5"
    assert row["at"] == row["received_at"]  # no usable timestamp
    assert json.loads(row["raw"])["event"] == "machine_opened"
    assert row["ip_hash"] and "10.0.0.1" not in row["ip_hash"]


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


def test_the_raw_event_is_stored_sorted_and_compact_whatever_its_numbers():
    """orjson writes the raw event; a number past 64 bits (which it refuses) goes through the
    standard module in the same layout, so one odd field never fails a post or reads
    differently. Either way: keys sorted, UTF-8 as is, no IP, no address."""
    event = {"timestamp": 1, "event": "open", "ip": "203.0.113.7", "email": ANN, "note": "é\n"}
    for extra, written in ((1, "1"), (2**70, str(2**70))):
        raw = webhook.raw_json({**event, "big": extra})
        assert raw == f'{{"big":{written},"event":"open","note":"é\\n","timestamp":1}}'
        assert json.loads(raw)["big"] == extra


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


def test_a_late_event_for_someone_forgotten_does_not_bring_their_address_back(db_url, tmp_path):
    """SendGrid retries a post for hours and reports spam complaints days later: an event
    about a person erased meanwhile is counted (its row points at the hashed ledger row)
    but writes their address nowhere, and they stay suppressed as the keyed hash only."""
    from equip_mailer.people.forget import forget, leftovers
    from equip_mailer.people.records import erased_key

    secret = b"the-link-secret-of-this-store-0123456789ab"
    engine = store.open_store(db_url)
    campaign = seed_campaign(engine, secret, emails=("Ann.Example@example.org", BOB))
    forget(engine, ANN, secret, outbox=tmp_path, now=store.utcnow())
    late = [
        {**e, "email": "Ann.Example@example.org"}
        for e in sendgrid_events(campaign, "Ann.Example@example.org")
        if e["event"] in ("open", "bounce", "spamreport") and e.get("type") != "blocked"
    ]
    late[1]["reason"] = "550 5.1.1 <ANN.EXAMPLE@example.org>: unknown user"

    with engine.begin() as conn:
        result = webhook.store_events(conn, late, ip_key=secret)

    assert result.stored == 3 and result.suppressed == 0
    with engine.connect() as conn:
        assert leftovers(conn, ANN) == []
        assert store.suppressed_keys(conn) == {erased_key(secret, ANN)}
    kept = rows(engine, store.events)
    assert {r.event for r in kept} == {"open", "bounce", "spamreport"}
    assert {r.ledger_id for r in kept} == {campaign.recipients["Ann.Example@example.org"]}
    assert all(r.raw is None and r.user_agent is None and r.ip_hash is None for r in kept)
    assert [r.reason for r in kept if r.event == "bounce"] == [
        "bounce: 5.1.1 550 5.1.1 <(erased)>: unknown user"
    ]
    # Bob was not erased: his events still suppress him as before
    with engine.begin() as conn:
        bob = [e for e in sendgrid_events(campaign, BOB) if e["event"] == "spamreport"]
        assert webhook.store_events(conn, bob, ip_key=secret).suppressed == 1
    engine.dispose()
