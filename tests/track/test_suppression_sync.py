"""SendGrid's suppression lists copied into ours, so a reader who bounced while the webhook was
down is still never mailed: the local stand-in for the lists, SendGrid's contract through
Prism, and the command."""

from __future__ import annotations

import os
import time

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.fake_sendgrid import Fault, start_server

from equip_mailer.cli import main
from equip_mailer.errors import DeliveryError
from equip_mailer.send.backends.sendgrid import RetryPolicy
from equip_mailer.store import open_store, suppressions
from equip_mailer.store import utcnow as store_now
from equip_mailer.track.suppression_sync import (
    LISTS,
    SendGridSuppressions,
    last_synced,
    sync_suppressions,
)

KEY = "SG.suppressions-test"
CONTRACT = os.environ.get("SENDGRID_SUPPRESSIONS_CONTRACT_URL")


@pytest.fixture
def sendgrid():
    url, server = start_server(KEY)
    yield url, server
    server.stop()


def suppressed(engine) -> dict[str, tuple[str, str]]:
    with engine.connect() as conn:
        return {
            r.email_key: (r.reason, r.source)
            for r in conn.execute(
                sa.select(suppressions.c.email_key, suppressions.c.reason, suppressions.c.source)
            )
        }


def test_each_list_suppresses_as_the_webhook_would_and_blocks_suppress_nobody(sendgrid, db_url):
    url, server = sendgrid
    long_ago = int(time.time()) - 86400
    server.suppression_lists = {
        "bounces": [{"email": "Gone@NHS.example", "created": long_ago, "reason": "550 5.1.1"}],
        "invalid_emails": [{"email": "bad@nhs.example", "created": long_ago}],
        "spam_reports": [{"email": "angry@nhs.example", "created": long_ago}],
        "unsubscribes": [{"email": "left@nhs.example", "created": long_ago}],
        "blocks": [{"email": "blocked@nhs.example", "created": long_ago, "reason": "IP"}],
    }
    engine = open_store(db_url)
    report = sync_suppressions(engine, SendGridSuppressions(KEY, host=url))
    assert report.since is None and report.fetched == dict.fromkeys(LISTS, 1)
    assert report.newly_suppressed == 4
    assert suppressed(engine) == {
        "gone@nhs.example": ("bounce", "sendgrid-api:bounces"),
        "bad@nhs.example": ("invalid", "sendgrid-api:invalid_emails"),
        "angry@nhs.example": ("spamreport", "sendgrid-api:spam_reports"),
        "left@nhs.example": ("unsubscribe", "sendgrid-api:unsubscribes"),
    }
    assert "blocks 1 (never suppress" in report.summary()

    # the next sync asks only since the last one (a few minutes' overlap), adds only new
    assert last_synced(engine) >= int(time.time()) - 5
    server.suppression_lists["bounces"].append(
        {"email": "new.bounce@nhs.example", "created": int(time.time())}
    )
    again = sync_suppressions(engine, SendGridSuppressions(KEY, host=url))
    assert again.since is not None
    assert again.fetched["bounces"] == 1 and again.new == {
        "bounces": 1,
        "invalid_emails": 0,
        "spam_reports": 0,
        "unsubscribes": 0,
    }
    assert len(suppressed(engine)) == 5
    engine.dispose()


def test_long_lists_are_read_page_by_page(sendgrid, db_url):
    url, server = sendgrid
    server.suppression_lists = {
        "unsubscribes": [{"email": f"p{i}@nhs.example", "created": 1} for i in range(1203)]
    }
    engine = open_store(db_url)
    report = sync_suppressions(engine, SendGridSuppressions(KEY, host=url))
    assert report.fetched["unsubscribes"] == 1203 and report.newly_suppressed == 1203
    engine.dispose()


def test_a_rate_limit_or_a_passing_server_error_is_waited_out_not_a_failed_sync(sendgrid, db_url):
    """Found in the audit: a 429 on any page (SendGrid rate-limits these lists per minute)
    or one 500 ended `suppressions sync` with an error, and a send went on without them."""
    url, server = sendgrid
    server.suppression_lists = {
        "bounces": [{"email": f"b{i}@nhs.example", "created": 1} for i in range(600)]
    }
    engine = open_store(db_url)
    # bounded: a rate limit that never lifts is an error in the end, and nothing is synced
    server.suppression_faults.extend([Fault("429", retry_after=0)] * 3)
    impatient = SendGridSuppressions(KEY, host=url, retry=RetryPolicy(attempts=3, base=0.01))
    with pytest.raises(DeliveryError) as caught:
        sync_suppressions(engine, impatient)
    assert "HTTP 429 while being asked for its bounces" in caught.value.message
    assert "3 times" in caught.value.message
    assert last_synced(engine) is None
    server.suppression_requests = 0
    server.suppression_faults.extend(
        [Fault("429", retry_after=0.3), Fault("429", rate_limit_reset=1), Fault("503")]
    )
    started = time.monotonic()
    report = sync_suppressions(engine, SendGridSuppressions(KEY, host=url))
    assert time.monotonic() - started >= 0.3  # Retry-After was honoured
    assert report.fetched["bounces"] == 600 and report.newly_suppressed == 600
    assert server.suppression_requests == 3 + 2 + 4  # the faults, 2 pages, 4 other lists
    assert last_synced(engine) is not None
    engine.dispose()


def test_a_key_without_access_is_a_clear_error_and_nothing_is_marked_synced(sendgrid, db_url):
    url, server = sendgrid
    server.suppression_access = "403"
    engine = open_store(db_url)
    with pytest.raises(DeliveryError) as caught:
        sync_suppressions(engine, SendGridSuppressions(KEY, host=url))
    assert "HTTP 403 while being asked for its bounces" in caught.value.message
    assert "read access to Suppressions" in caught.value.hint
    assert last_synced(engine) is None
    # Found in the audit: a key SendGrid does not know at all (401) was told to get read
    # access to Suppressions, sending the manager to the wrong setting
    server.suppression_access = "200"
    with pytest.raises(DeliveryError) as caught:
        sync_suppressions(engine, SendGridSuppressions("SG.revoked-key", host=url))
    assert "HTTP 401" in caught.value.message and "SG.revoked" not in caught.value.message
    assert "SENDGRID_API_KEY" in caught.value.hint and "Suppressions" not in caught.value.hint
    engine.dispose()


def test_the_command(sendgrid, tmp_path, monkeypatch):
    url, server = sendgrid
    server.suppression_lists = {"bounces": [{"email": "gone@nhs.example", "created": 5}]}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EQUIP_DATABASE_URL", f"sqlite:///{tmp_path / 'equip.db'}")
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    result = CliRunner().invoke(main, ["suppressions", "sync"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "SendGrid's suppression lists, all (first sync): bounces 1 (1 new)" in out
    assert "1 address(es) newly suppressed." in out
    monkeypatch.delenv("SENDGRID_API_KEY")
    refused = CliRunner().invoke(main, ["suppressions", "sync"])
    assert refused.exit_code == 1 and "needs SENDGRID_API_KEY" in refused.output


@pytest.mark.skipif(
    not CONTRACT,
    reason="SENDGRID_SUPPRESSIONS_CONTRACT_URL is not set: run under ../shared/sendgrid/"
    "with_prism.sh (make test does) to check the Suppressions requests against the contract",
)
def test_every_list_request_meets_sendgrids_contract(db_url):
    """Prism checks each GET /v3/suppression/<list> (start_time, limit, offset, Accept, the
    bearer key) against tsg_suppressions_v3.json and answers the contract's examples."""
    engine = open_store(db_url)
    source = SendGridSuppressions(KEY, host=CONTRACT)
    report = sync_suppressions(engine, source)
    assert all(report.fetched[kind] >= 1 for kind in LISTS), report.fetched
    assert report.newly_suppressed >= 1
    again = sync_suppressions(engine, source)  # with start_time this time
    assert again.since is not None
    engine.dispose()


def test_someone_forgotten_is_not_copied_back_from_sendgrids_lists(sendgrid, tmp_path, monkeypatch):
    """SendGrid's erasure job runs later, and its lists still name a person just forgotten:
    the sync (here the first, which reads everything) leaves them suppressed as the keyed
    hash only, instead of writing their address back into the store."""
    from support.link_secrets import LINK_SECRET

    from equip_mailer.people.forget import forget, leftovers
    from equip_mailer.people.records import erased_key

    url, server = sendgrid
    server.suppression_lists = {
        "bounces": [{"email": "Gone@NHS.example", "created": 5, "reason": "550 5.1.1"}],
        "unsubscribes": [{"email": "left@nhs.example", "created": 5}],
    }
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EQUIP_DATABASE_URL", f"sqlite:///{tmp_path / 'equip.db'}")
    monkeypatch.setenv("EQUIP_LINK_SECRET", LINK_SECRET)
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    engine = open_store(f"sqlite:///{tmp_path / 'equip.db'}")
    forget(engine, "gone@nhs.example", LINK_SECRET.encode(), outbox=tmp_path, now=store_now())

    result = CliRunner().invoke(main, ["suppressions", "sync"])

    assert result.exit_code == 0, result.output
    assert "bounces 1 (0 new)" in " ".join(result.output.split())
    with engine.connect() as conn:
        assert leftovers(conn, "gone@nhs.example") == []
    assert set(suppressed(engine)) == {
        erased_key(LINK_SECRET.encode(), "gone@nhs.example"),
        "left@nhs.example",
    }
    engine.dispose()
