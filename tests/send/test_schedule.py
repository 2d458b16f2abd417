"""Scheduled sends against a SendGrid-compatible server on loopback: one SendGrid batch id
per campaign, kept across runs; a changed time or a cancelled schedule is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from support.fake_sendgrid import start_server

from equip_mailer.errors import DeliveryError
from equip_mailer.send.backends.outbox import OutboxBackend
from equip_mailer.send.backends.sendgrid import SendGridBackend
from equip_mailer.send.campaign_mail import CampaignMail, campaign_mail
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.schedule import ensure_schedule

KEY = "SG.schedule-test-key"


@pytest.fixture
def sg():
    url, server = start_server(KEY)
    yield url, server
    server.stop()


def scheduled(demo, hours: float) -> CampaignMail:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours)
    sendgrid = demo.sendgrid.model_copy(update={"send_at": when})
    return campaign_mail(demo.model_copy(update={"sendgrid": sendgrid}))


def test_a_scheduled_campaign_keeps_one_sendgrid_batch_id_across_runs(engine, demo, sg, tmp_path):
    url, server = sg
    mail = scheduled(demo, 2)
    led = Ledger(engine, demo.id)
    backend = SendGridBackend(KEY, mail, host=url)
    first = ensure_schedule(led, backend, mail)
    assert first.sg_batch_id in server.batch_ids and backend.mail == first
    row = led.campaign_row()
    assert row.sg_batch_id == first.sg_batch_id
    assert row.send_at == dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
    next_run = SendGridBackend(KEY, mail, host=url)
    assert ensure_schedule(led, next_run, mail).sg_batch_id == first.sg_batch_id
    assert len(server.batch_ids) == 1
    # the outbox cannot schedule: its mail is left as it is
    assert ensure_schedule(led, OutboxBackend(tmp_path, mail), mail) is mail


def test_a_changed_time_or_a_cancelled_schedule_is_refused(engine, demo, sg):
    url, _ = sg
    mail = scheduled(demo, 2)
    led = Ledger(engine, demo.id)
    ensure_schedule(led, SendGridBackend(KEY, mail, host=url), mail)
    later = scheduled(demo, 5)
    with pytest.raises(DeliveryError, match="already scheduled for"):
        ensure_schedule(led, SendGridBackend(KEY, later, host=url), later)
    led.mark_cancelled()
    with pytest.raises(DeliveryError, match="was cancelled on"):
        ensure_schedule(led, SendGridBackend(KEY, mail, host=url), mail)
