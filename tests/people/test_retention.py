"""Retention: past the limit, raw webhook payloads, user agents, IP hashes, open sign-up
invites and sent emails' texts go; the counts stay; the raw payload never held the address."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.errors import ConfigError
from equip_mailer.people.retention import DailyPurge, purge
from equip_mailer.send import notices as send_notices
from equip_mailer.track.webhook import store_events

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)  # DailyPurge runs now


def _event(n: int, when: dt.datetime) -> dict:
    return {
        "event": "click",
        "email": f"reader{n}@nhs.example",
        "timestamp": int(when.replace(tzinfo=dt.UTC).timestamp()),
        "sg_event_id": f"ev{n}",
        "url": "https://equip.example.org/about",
        "useragent": "Mozilla/5.0",
        "ip": "192.0.2.1",
        "recipient": str(n),
        "campaign_id": "c",
    }


@pytest.fixture
def engine(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        store.ensure_campaign(conn, "c", "Subject")
        store_events(
            conn,
            [_event(1, NOW - dt.timedelta(days=401)), _event(2, NOW - dt.timedelta(days=10))],
            ip_key=b"k" * 32,
        )
    yield engine
    engine.dispose()


def test_the_raw_payload_never_holds_the_address(engine):
    with engine.connect() as conn:
        raws = [json.loads(r) for r in conn.execute(sa.select(store.events.c.raw)).scalars()]
    assert len(raws) == 2
    assert all("email" not in raw and "ip" not in raw and raw["event"] == "click" for raw in raws)


def test_purge_clears_old_details_and_keeps_the_counts(engine):
    first = purge(engine, 400, NOW)
    again = purge(engine, 400, NOW)

    assert (first.events, again.events) == (1, 0)
    assert first.cutoff == NOW - dt.timedelta(days=400)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                store.events.c.sg_event_id,
                store.events.c.raw,
                store.events.c.user_agent,
                store.events.c.ip_hash,
                store.events.c.event,
            ).order_by(store.events.c.id)
        ).all()
    old, recent = rows
    assert (old.raw, old.user_agent, old.ip_hash, old.event) == (None, None, None, "click")
    assert recent.raw and recent.user_agent and recent.ip_hash


def test_a_retention_of_zero_days_is_refused(engine):
    with pytest.raises(ConfigError, match="at least 1 day"):
        purge(engine, 0, NOW)


def test_serve_purges_at_start_and_then_daily(engine):
    purger = DailyPurge(engine, 400, interval=0.2)
    purger.start()
    deadline = time.monotonic() + 10
    while purger.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    purger.stop()
    assert purger.runs >= 2
    with engine.connect() as conn:
        assert (
            conn.execute(
                sa.select(sa.func.count())
                .select_from(store.events)
                .where(store.events.c.raw.is_(None))
            ).scalar()
            == 1
        )


def test_purge_command_names_the_limit(demo_project, monkeypatch):
    monkeypatch.setenv("EQUIP_RETENTION_DAYS", "30")
    result = CliRunner().invoke(main, ["purge"])
    assert result.exit_code == 0, result.output
    assert "(30 days): 0 email events lost their raw payload" in result.output


def test_old_emails_that_failed_or_went_unanswered_are_emptied_like_sent_ones(engine):
    """A confirmation SendGrid refused, or one whose answer never came, is as finished as a
    sent one: past the limit its address, name and text go too (found in the audit: only
    'sent' rows were emptied, so a failed one kept them for good). One still waiting to go
    out is left alone: the sender needs its address."""
    old = NOW - dt.timedelta(days=401)
    with engine.begin() as conn:
        for n, state in enumerate(("sent", "failed", "uncertain", "pending")):
            conn.execute(
                store.notices.insert().values(
                    key=f"signup:{n}:0:confirmed",
                    kind="signup-confirmed",
                    email=f"Reader{n}@nhs.example",
                    email_key=f"reader{n}@nhs.example",
                    name=f"Reader {n}",
                    from_email="equip@example.org",
                    subject="Your place on EQUIP Basics is confirmed",
                    text=f"Dear Reader {n}, your place is confirmed.",
                    html="<p>Your place is confirmed.</p>",
                    state=state,
                    attempts=1,
                    created_at=old,
                )
            )

    done = purge(engine, 400, NOW)

    assert done.notices == 3
    with engine.connect() as conn:
        kept = conn.execute(
            sa.select(store.notices.c.state, store.notices.c.email, store.notices.c.text).order_by(
                store.notices.c.id
            )
        ).all()
        assert send_notices.requeue(conn, [1, 2, 3, 4]) == 0  # emptied rows cannot go out
    assert [tuple(r) for r in kept] == [
        ("sent", "", ""),
        ("failed", "", ""),
        ("uncertain", "", ""),
        ("pending", "Reader3@nhs.example", "Dear Reader 3, your place is confirmed."),
    ]


def test_a_purged_notice_leaves_no_hash_of_its_address_for_forget_to_miss(db_url, tmp_path):
    """A confirmation goes out through SendGrid, its events come back, retention empties it,
    and then the person asks to be erased. Found in the audit: the events' dedupe keys are
    plain SHA-256 of the address and of fields stored beside them, and once purge had emptied
    the notice and the events' raw payload (where forget looked for the notice id) nothing
    tied them to the person, so forget left hashes that confirm a guessed address."""
    from support.fake_sendgrid import start_server
    from support.link_secrets import LINK_SECRET

    from equip_mailer.people.forget import forget, leftovers
    from equip_mailer.send.notice_transports import SendGridNotices
    from equip_mailer.send.notices import Notice, NoticeSender, enqueue
    from equip_mailer.track.webhook import dedupe_key

    address, name = "zoe.obrien7@nhs.example", "Zoë O'Brien"
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        notice_id = enqueue(
            conn,
            Notice(
                key="signup:7:0:confirmed",
                kind="signup-confirmed",
                to_email=address,
                to_name=name,
                subject="Your place on EQUIP Basics",
                text=f"Dear {name}, your place is confirmed.",
                from_email="equip@equip.example.org",
                campaign_id="c",
            ),
        )
    url, server = start_server("SG.k")
    try:
        assert (
            NoticeSender(engine, SendGridNotices("SG.k", host=url, timeout=5))
            .deliver_pending()
            .sent
        )
    finally:
        server.stop()
    with engine.connect() as conn:
        message_id = conn.execute(sa.select(store.notices.c.message_id)).scalar_one()
    sent_at = store.utcnow()
    base = {
        "email": address,
        "sg_message_id": f"{message_id}.filter0001.16648.5515E0B88.0",
        "notice_id": str(notice_id),
        "kind": "signup-confirmed",
        "campaign_id": "c",
        "timestamp": int(sent_at.replace(tzinfo=dt.UTC).timestamp()),
    }
    posted = [{**base, "event": "processed"}, {**base, "event": "delivered"}]
    with engine.begin() as conn:
        store_events(conn, posted, ip_key=b"k" * 32)
    plain = [dedupe_key(e) for e in posted]
    later = sent_at + dt.timedelta(days=401)

    done = purge(engine, 400, later)
    forget(engine, address, LINK_SECRET.encode(), outbox=tmp_path, now=later)

    assert (done.events, done.notices) == (2, 1)
    with engine.connect() as conn:
        assert leftovers(conn, address) == [] and leftovers(conn, "o'brien") == []
        keys = set(conn.execute(sa.select(store.events.c.dedupe_key)).scalars())
        counted = conn.execute(sa.select(store.events.c.event)).scalars().all()
    assert keys == {f"retired:{n}" for n in (1, 2)}  # forget left purge's keys as they were
    assert sorted(counted) == ["delivered", "processed"]  # the counts stay
    engine.dispose()
    if db_url.startswith("sqlite"):
        data = b"".join(p.read_bytes().lower() for p in tmp_path.glob("equip.db*") if p.is_file())
        for needle in (address, name.lower(), *plain):
            assert needle.encode("utf-8") not in data, needle


def test_purge_dry_run_says_what_would_go_and_changes_nothing(demo_project):
    """Found in the audit: purge removes for good, with no way to see first what a limit
    (say EQUIP_RETENTION_DAYS=30 typed for 300) would remove. --dry-run counts the same
    rows and rolls back."""
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        store.ensure_campaign(conn, "c", "Subject")
        store_events(conn, [_event(1, NOW - dt.timedelta(days=401))], ip_key=b"k" * 32)

    def raws() -> list:
        with engine.connect() as conn:
            return conn.execute(sa.select(store.events.c.raw)).scalars().all()

    preview = CliRunner().invoke(main, ["purge", "--dry-run"])
    assert preview.exit_code == 0, preview.output
    assert "Would purge what is older than" in preview.output
    assert "1 email events would lose their raw payload" in preview.output
    assert "Nothing was changed" in preview.output
    assert raws() != [None]
    done = CliRunner().invoke(main, ["purge"])
    assert "1 email events lost their raw payload" in done.output
    assert raws() == [None]
    engine.dispose()


def test_an_emptied_single_email_leaves_no_outbox_file(sqlite_url, tmp_path):
    """Without SendGrid, single emails are written to outbox/notices/ (address, name, text,
    calendar). The README says they are kept for the retention period like the notice's
    text; found in the audit: purge emptied the row and left the file for good."""
    from equip_mailer.send.notice_transports import OutboxNotices
    from equip_mailer.send.notices import Notice, NoticeSender, enqueue

    engine = store.open_store(sqlite_url)
    outbox = tmp_path / "outbox"
    with engine.begin() as conn:
        for n in (1, 2):
            enqueue(
                conn,
                Notice(
                    key=f"signup:{n}:0:confirmed",
                    kind="signup-confirmed",
                    to_email=f"reader{n}@nhs.example",
                    to_name=f"Reader {n}",
                    subject="Your place on EQUIP Basics",
                    text="Your place is confirmed.",
                    from_email="equip@equip.example.org",
                ),
            )
    assert NoticeSender(engine, OutboxNotices(outbox)).deliver_pending().sent == 2
    with engine.begin() as conn:  # the second one is recent: kept
        conn.execute(
            store.notices.update()
            .where(store.notices.c.id == 2)
            .values(created_at=store.utcnow() + dt.timedelta(days=400))
        )
    files = sorted((outbox / "notices").glob("*.eml"))
    later = store.utcnow() + dt.timedelta(days=401)

    preview = purge(engine, 400, later, outbox=outbox, dry_run=True)
    assert preview.files == 1 and len(list((outbox / "notices").glob("*.eml"))) == 2
    done = purge(engine, 400, later, outbox=outbox)
    again = purge(engine, 400, later, outbox=outbox)

    assert (done.notices, done.files, again.files) == (1, 1, 0)
    assert sorted((outbox / "notices").glob("*.eml")) == files[1:]
    engine.dispose()
