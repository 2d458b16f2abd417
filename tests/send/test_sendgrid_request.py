"""The Mail Send body we build for a batch: shared content, one personalization per reader.

What SendGrid's own contract checks is in test_contract_prism.py; these are the rules it
does not check (<= 1000 recipients, each address once, custom_args as id strings only).
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from support.mail_batches import CONTENT, MAIL, batch, people

from equip_mailer.errors import DeliveryError
from equip_mailer.send.batch import Batch
from equip_mailer.send.sendgrid_request import build_request


def test_request_shares_content_and_keeps_addresses_out_of_custom_args():
    body = build_request(MAIL, batch(3))
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert len(body["personalizations"]) == 3
    p = body["personalizations"][0]
    assert p["to"] == [{"email": "person1@example.org", "name": "Person 1"}]
    assert p["custom_args"] == {
        "campaign_id": MAIL.campaign_id,
        "segment": "getting-started",
        "send_id": "s1",
        "recipient": "1",
    }
    assert all(isinstance(v, str) for v in p["custom_args"].values())
    assert "@" not in json.dumps([q["custom_args"] for q in body["personalizations"]])
    assert p["headers"] == {"List-Unsubscribe": "<https://t.example/u/1>"}
    assert body["headers"] == {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    assert body["categories"] == ["2019-04-equip-training", "equip-newsletter"]
    assert body["asm"] == {"group_id": 42}
    assert body["tracking_settings"]["click_tracking"] == {"enable": False, "enable_text": False}
    assert body["mail_settings"] == {"sandbox_mode": {"enable": False}}
    assert "send_at" not in body and "batch_id" not in body


def test_request_refuses_over_1000_and_duplicates():
    with pytest.raises(DeliveryError, match="more than 1000"):
        build_request(MAIL, batch(1001))
    twice = Batch(campaign_id="c", send_id="s", content=CONTENT, addressees=people(2) + people(1))
    with pytest.raises(DeliveryError, match="twice"):
        build_request(MAIL, twice)


def test_a_scheduled_request_carries_its_batch_id_but_a_test_copy_goes_now():
    when = 1_900_000_000
    scheduled = MAIL.__class__(**{**MAIL.__dict__, "send_at": when, "sg_batch_id": "b-1"})
    body = build_request(scheduled, batch(1))
    assert (body["send_at"], body["batch_id"]) == (when, "b-1")
    test_copy = build_request(scheduled, batch(1, test=True))
    assert "send_at" not in test_copy and test_copy["subject"] == "[TEST] " + CONTENT.subject
    unbatched = MAIL.__class__(**{**MAIL.__dict__, "send_at": when})
    with pytest.raises(DeliveryError, match="needs a SendGrid batch id"):
        build_request(unbatched, batch(1))


def test_list_headers_go_with_the_batch_of_their_segment():
    mail = replace(MAIL, list_label="newsletter")
    body = build_request(mail, batch(2))
    assert body["headers"] == {
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": '"EQUIP" <newsletter.example.org>',
        "Feedback-ID": "2019-04-equip-training:getting-started:newsletter:example.org",
    }
