"""From a rendered segment and ledger rows to batches: the prepared per-segment builders
give every reader the same mail as the plain per-reader way, in a smaller request."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from support.ledger_audience import audience, store_settings

from equip_mailer.send.backends.outbox import substitute
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.prepare import (
    build_batch,
    default_renderer,
    prepare_segment,
    register_campaign,
)
from equip_mailer.store import campaigns, open_store


def test_register_campaign_keeps_the_spec_it_was_sent_from(sqlite_url, demo, demo_path):
    eng = open_store(sqlite_url)
    register_campaign(eng, demo)
    register_campaign(eng, demo)  # a later run refreshes the same row
    with eng.connect() as conn:
        rows = conn.execute(sa.select(campaigns.c.id, campaigns.c.spec_hash)).all()
    assert rows == [(demo.id, hashlib.sha256(demo_path.read_bytes()).hexdigest())]
    eng.dispose()


def test_the_prepared_and_the_plain_way_give_each_reader_the_same_mail(sqlite_url, demo):
    eng = open_store(sqlite_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(audience(3, "ready-for-action"))
    rows = led.next_rows("ready-for-action", 10)
    render = default_renderer()
    rendered = render.render_campaign(demo, segments=["ready-for-action"])["ready-for-action"]
    settings = store_settings(sqlite_url)
    secret = settings.require_link_secret()
    with eng.begin() as conn:
        fast = prepare_segment(conn, demo, rendered, settings, secret, render.recipient_values)
        plain = prepare_segment(conn, demo, rendered, settings, secret)
    assert fast.values is not None and plain.values is None
    prepared = build_batch(fast, rows, demo, render.recipient_values)
    one_by_one = build_batch(plain, rows, demo, render.recipient_values)
    assert [a.ledger_id for a in prepared.addressees] == [r.id for r in rows]
    for a, b in zip(prepared.addressees, one_by_one.addressees, strict=True):
        assert a[:3] + a[4:] == b[:3] + b[4:]  # all but the values
        for part in ("subject", "html", "text"):
            mail = substitute(getattr(prepared.content, part), a.values)
            assert mail == substitute(getattr(one_by_one.content, part), b.values)
        assert "https://t.example/c/" in substitute(prepared.content.html, a.values)
        assert len(a.values) < len(b.values)  # one token per URL for both parts
    eng.dispose()
