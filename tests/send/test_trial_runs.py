"""Trying a send: a dry run measures the first request and leaves the store as it was; a
test send mails each segment once, with made-up names, outside the ledger."""

from __future__ import annotations

import sqlalchemy as sa
from support.ledger_audience import audience, store_settings

from equip_mailer.send.backends.memory import MemoryBackend
from equip_mailer.send.backends.outbox import OutboxBackend
from equip_mailer.send.campaign_mail import campaign_mail
from equip_mailer.send.dispatch import SendOptions
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.links import TEST_RECIPIENT
from equip_mailer.send.prepare import register_campaign
from equip_mailer.send.trial_runs import dry_run, send_test
from equip_mailer.store import links, open_store


def test_a_dry_run_measures_the_first_request_and_changes_nothing(sqlite_url, demo):
    eng = open_store(sqlite_url)
    register_campaign(eng, demo)
    people = {**audience(5), **audience(3, "project-leads", 100)}
    settings, mail = store_settings(sqlite_url), campaign_mail(demo)
    dry = dry_run(
        demo, eng, people, {"person2@example.org"}, settings, mail, SendOptions(batch_size=2)
    )
    assert dry.counts == {"getting-started": 4, "project-leads": 3}
    assert (dry.first_segment, dry.first_personalizations, dry.requests) == (
        "getting-started",
        2,
        4,
    )
    assert dry.first_request_bytes > dry.content_bytes > 0
    assert dry.example["to"] == [{"email": "P***@E***.org", "name": "***"}]
    assert dry.example["substitutions"].endswith(" values")
    assert Ledger(eng, demo.id).counts() == {}  # rolled back: the ledger...
    with eng.connect() as conn:  # ...and the link registry
        assert conn.execute(sa.select(sa.func.count()).select_from(links)).scalar() == 0
    limited = dry_run(demo, eng, people, set(), settings, mail, SendOptions(limit=6))
    assert limited.counts == {"getting-started": 5, "project-leads": 1}
    eng.dispose()


def test_a_test_send_mails_each_segment_once_with_made_up_names(sqlite_url, demo):
    eng = open_store(sqlite_url)
    register_campaign(eng, demo)
    mem = MemoryBackend()
    results = send_test(demo, eng, mem, store_settings(sqlite_url), "me@example.org")
    assert [s for s, _ in results] == [s.id for s in demo.segments]
    assert {r.state for _, r in results} == {"sent"}
    for batch in mem.batches:
        assert batch.test and len(batch.addressees) == 1
        reader = batch.addressees[0]
        assert (reader.ledger_id, reader.email, reader.name) == (
            TEST_RECIPIENT,
            "me@example.org",
            "Sam Example",
        )
        assert "Example Medical Centre" in reader.values.values()
    assert Ledger(eng, demo.id).counts() == {}  # outside the ledger
    eng.dispose()


def test_a_test_send_stops_at_the_first_copy_that_cannot_go(sqlite_url, demo, tmp_path):
    eng = open_store(sqlite_url)
    register_campaign(eng, demo)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    outbox = OutboxBackend(blocker, campaign_mail(demo))
    results = send_test(demo, eng, outbox, store_settings(sqlite_url), "me@example.org")
    assert len(results) == 1 and results[0][1].stop
    assert "cannot write to the outbox" in results[0][1].error
    eng.dispose()
