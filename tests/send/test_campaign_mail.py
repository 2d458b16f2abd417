"""A campaign's request settings from its spec, with send_at held to SendGrid's limits."""

from __future__ import annotations

import datetime as dt

import pytest

from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import DeliveryError
from equip_mailer.send.campaign_mail import CampaignMail, campaign_mail


def test_campaign_mail_from_the_demo_spec_and_send_at_limits(demo_path):
    spec = load_campaign(demo_path, allow_past=True)
    mail = campaign_mail(spec)
    assert mail.categories == ("2019-04-equip-training", "equip-newsletter")
    assert mail.click_tracking is False and mail.send_at is None
    now = dt.datetime.now(dt.UTC)
    soon = spec.model_copy(
        update={
            "sendgrid": spec.sendgrid.model_copy(update={"send_at": now + dt.timedelta(hours=2)})
        }
    )
    assert campaign_mail(soon).send_at == int((now + dt.timedelta(hours=2)).timestamp())
    far = spec.model_copy(
        update={
            "sendgrid": spec.sendgrid.model_copy(update={"send_at": now + dt.timedelta(hours=73)})
        }
    )
    with pytest.raises(DeliveryError, match="more than 72 hours ahead"):
        campaign_mail(far)
    past = spec.model_copy(
        update={
            "sendgrid": spec.sendgrid.model_copy(update={"send_at": now - dt.timedelta(minutes=1)})
        }
    )
    with pytest.raises(DeliveryError, match="in the past"):
        campaign_mail(past)


def test_a_time_without_a_zone_is_london_time(demo_path):
    spec = load_campaign(demo_path, allow_past=True)
    now = dt.datetime(2019, 6, 1, 7, 0, tzinfo=dt.UTC)  # 08:00 in London (summer time)
    nine = spec.model_copy(
        update={
            "sendgrid": spec.sendgrid.model_copy(update={"send_at": dt.datetime(2019, 6, 1, 9)})
        }
    )
    expected = dt.datetime(2019, 6, 1, 8, 0, tzinfo=dt.UTC)  # 09:00 BST
    assert campaign_mail(nine, now=now).send_at == int(expected.timestamp())


def test_list_mail_says_which_list_and_which_segment(demo_path):
    """List-Id (RFC 2919) names the newsletter the same way every quarter; Feedback-ID gives
    Gmail's Postmaster Tools the campaign and segment to count complaints against."""
    mail = campaign_mail(load_campaign(demo_path, allow_past=True))
    assert mail.list_headers("getting-started") == {
        "List-Id": '"EQUIP Tower Hamlets" <newsletter.example.org>',
        "Feedback-ID": "2019-04-equip-training:getting-started:newsletter:example.org",
    }


def test_a_list_name_is_quoted_only_when_plain_ascii():
    mail = CampaignMail(
        campaign_id="q3",
        sender_email="Team@Équipe.Example",
        sender_name='Dr "QI" Café',
        list_label="menu",
    )
    headers = mail.list_headers("seg")
    assert headers["List-Id"] == "Dr QI Café <menu.équipe.example>"
    assert headers["Feedback-ID"] == "q3:seg:menu:équipe.example"
    assert CampaignMail(campaign_id="q3", sender_email="a@b.example").list_headers("s") == {}
