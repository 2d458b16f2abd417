"""What a real SendGrid send checks before any request: a public https URL readers can
reach, the webhook key when the campaign counts on SendGrid's events, a named sender domain."""

from __future__ import annotations

import pytest
from support.link_secrets import LINK_SECRET

from equip_mailer.config import Settings
from equip_mailer.send.preflight import (
    PreflightError,
    is_loopback,
    refuse_unsafe,
    verdicts,
)

GOOD = {
    "link_secret": LINK_SECRET,
    "public_url": "https://equip.example.org",
    "sender_domain": "example.org",  # the demo sends from equip@example.org
}


def settings(**changes) -> Settings:
    return Settings(**{**GOOD, **changes})


def test_a_campaign_ready_for_a_real_send_passes(demo):
    assert verdicts(demo, settings()) == []
    refuse_unsafe(demo, settings())
    # An address at a subdomain of the authenticated domain aligns with it (DMARC relaxed).
    news = demo.model_copy(
        update={"sender": demo.sender.model_copy(update={"email": "equip@news.example.org"})}
    )
    assert verdicts(news, settings()) == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:8025", "is not an https:// address"),  # the default
        ("http://equip.example.org", "is not an https:// address"),
        ("https://localhost:8025", "is this machine or a local network name"),
        ("https://127.0.0.1", "is this machine"),
        ("https://[::1]:8443", "is this machine"),
        ("https://10.1.2.3", "is a private address"),
        ("https://192.168.0.20", "is a private address"),
        ("https://169.254.10.1", "is a private address"),
        ("https://equip-server", "is not a full domain name"),
        ("https://equip.local", "is this machine or a local network name"),
        ("https://203.0.113.9", "is a private address"),  # documentation range: reserved
        ("https://8.8.8.8", "is a numeric address"),
    ],
)
def test_a_public_url_readers_cannot_reach_is_refused(demo, url, why):
    with pytest.raises(PreflightError) as caught:
        refuse_unsafe(demo, settings(public_url=url))
    assert why in str(caught.value) and url in str(caught.value)
    assert "set EQUIP_PUBLIC_URL" in str(caught.value)


def test_the_webhook_key_is_needed_only_when_the_campaign_counts_on_events(demo):
    assert verdicts(demo, settings()) == []  # our own click tracking, no opens
    for tracking in ({"clicks": "sendgrid"}, {"opens": True}):
        relying = demo.model_copy(update={"tracking": demo.tracking.model_copy(update=tracking)})
        (found,) = verdicts(relying, settings())
        assert "SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in found.problem
        assert verdicts(relying, settings(sendgrid_webhook_public_key="MFkw...")) == []


def test_the_sender_domain_must_be_named_and_hold_the_from_address(demo):
    (unnamed,) = verdicts(demo, settings(sender_domain=None))
    assert unnamed.problem == "no sender domain is named"
    assert "sender_domain in equip-mailer.toml" in unnamed.fix
    (other,) = verdicts(demo, settings(sender_domain="nhs.example"))
    assert "equip@example.org is not in the sender domain nhs.example" in other.problem


def test_every_reason_is_given_at_once(demo):
    with pytest.raises(PreflightError) as caught:
        refuse_unsafe(demo, Settings(link_secret=LINK_SECRET))  # all defaults
    assert len(caught.value.verdicts) == 2
    assert str(caught.value).startswith("a real send would fail its readers:\n- ")


def test_a_loopback_sendgrid_host_is_a_local_stand_in():
    assert is_loopback("http://127.0.0.1:4010") and is_loopback("http://localhost:4010")
    assert not is_loopback("https://api.sendgrid.com")
    assert not is_loopback("https://api.eu.sendgrid.com")


def test_a_campaign_without_a_privacy_notice_is_refused(demo):
    footer = demo.footer.model_copy(update={"privacy_url": None})
    bare = demo.model_copy(update={"footer": footer})
    found = verdicts(bare, settings())
    assert [str(v) for v in found] == [
        "campaign 2019-04-equip-training names no privacy notice (footer.privacy_url), which "
        "every mail and sign-up page must link to; add footer: privacy_url: https://... (the "
        "page saying what is held, why and for how long; README 'Data and privacy' has the "
        "table to start from)"
    ]
    with pytest.raises(PreflightError, match="names no privacy notice"):
        refuse_unsafe(bare, settings())
