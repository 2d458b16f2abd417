"""Evidence on request: the Email Activity API (SendGrid's contract through Prism, and the
local stand-in for an account with and without the add-on) and the outbox's own files."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from support.fake_sendgrid import Fault, start_server
from support.ledger_audience import CID, audience, states

from equip_mailer.send.activity import (
    ActivityUnavailable,
    OutboxActivity,
    SendGridActivity,
    check_uncertain,
)
from equip_mailer.send.backends.outbox import OutboxBackend
from equip_mailer.send.batch import Addressee, Batch, Content
from equip_mailer.send.campaign_mail import CampaignMail
from equip_mailer.send.ledger import Ledger
from equip_mailer.store import ledger

KEY = "SG.activity-test"
SEG = "getting-started"
ACTIVITY_CONTRACT = os.environ.get("SENDGRID_ACTIVITY_CONTRACT_URL")


def uncertain(engine, ids, backend="sendgrid") -> tuple[Ledger, str]:
    led = Ledger(engine, CID)
    led.sync(audience(5))
    _, send_id = led.claim(SEG, ids, backend)
    led.recover()
    return led, send_id


def accept(server, send_id: str, ids: list[int]) -> None:
    """The stand-in records these recipients as accepted under that send id."""
    server.record(
        {
            "subject": "s",
            "personalizations": [
                {
                    "to": [{"email": f"Person{i}@Example.org"}],
                    "custom_args": {"send_id": send_id, "recipient": str(i), "campaign_id": CID},
                }
                for i in ids
            ],
        },
        "msg1",
    )


def test_the_activity_api_settles_what_sendgrid_accepted(engine):
    url, server = start_server(KEY)
    try:
        led, send_id = uncertain(engine, [1, 2, 3])
        accept(server, send_id, [1, 3])
        check = check_uncertain(led, {"sendgrid": SendGridActivity(KEY, host=url)})
    finally:
        server.stop()
    assert (check.asked, dict(check.settled), check.notes) == (1, {"activity": 2}, [])
    assert states(engine) == {"sent": 2, "uncertain": 1, "pending": 2}
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(ledger.c.evidence).where(ledger.c.id == 1)).scalar_one()
            == "activity:delivered"
        )
    [b] = led.uncertain_batches()
    assert (b.by_asking, b.still) == (2, 1)


@pytest.mark.parametrize("status", ["403", "404"])
def test_without_the_add_on_it_is_one_note_and_the_retry_goes_on(engine, status):
    url, server = start_server(KEY)
    server.activity = status
    try:
        led, _ = uncertain(engine, [1])
        Ledger(engine, CID).sync(audience(5))
        led.claim(SEG, [2], "sendgrid")
        led.recover()  # two uncertain batches: SendGrid is asked once, not per batch
        check = check_uncertain(led, {"sendgrid": SendGridActivity(KEY, host=url)})
        assert server.activity_requests == 1
    finally:
        server.stop()
    assert check.asked == 0 and not check.settled
    [note] = check.notes
    assert "\n" not in note
    assert f"Email Activity API is not available to this account or key (HTTP {status}" in note
    assert states(engine) == {"uncertain": 2, "pending": 3}


def test_the_activity_apis_rate_limit_is_waited_out_so_no_batch_goes_unasked(engine):
    """Found in the audit: the Email Activity API allows a few requests a minute, and its
    first 429 ended the asking ("going on with the evidence already here"), so every later
    uncertain batch was re-sent by --retry-uncertain, to people SendGrid had accepted."""
    url, server = start_server(KEY)
    try:
        led, first = uncertain(engine, [1, 2])
        led.sync(audience(5))
        _, second = led.claim(SEG, [3, 4], "sendgrid")
        led.recover()
        accept(server, first, [1, 2])
        accept(server, second, [3, 4])
        server.activity_faults.extend([Fault("429", retry_after=0.2), Fault("500")])
        check = check_uncertain(led, {"sendgrid": SendGridActivity(KEY, host=url)})
        assert server.activity_requests == 4
    finally:
        server.stop()
    assert (check.asked, dict(check.settled), check.notes) == (2, {"activity": 4}, [])
    assert states(engine) == {"sent": 4, "pending": 1}


def test_an_unavailable_api_is_its_own_error_class():
    url, server = start_server(KEY)
    server.activity = "403"
    try:
        with pytest.raises(ActivityUnavailable) as caught:
            SendGridActivity(KEY, host=url).messages("abc")
    finally:
        server.stop()
    assert caught.value.status == 403


def test_the_outbox_says_which_files_the_batch_wrote(engine, tmp_path):
    led, send_id = uncertain(engine, [1, 2, 3], backend="outbox")
    mail = CampaignMail(campaign_id=CID, sender_email="equip@example.org")
    outbox = OutboxBackend(tmp_path, mail)
    content = Content(SEG, "Hello", "<p>Hi</p>", "Hi")
    # the dead run had written files 1 and 2; file 3 is from another batch (never ours)
    for ids, sid in (([1, 2], send_id), ([3], "0" * 32)):
        addressees = [
            Addressee(i, f"person{i}@example.org", "", {}, "https://t.example/u/x") for i in ids
        ]
        assert outbox.send_batch(Batch(CID, sid, content, addressees)).state == "sent"
    check = check_uncertain(led, {"outbox": OutboxActivity(outbox.folder)})
    assert dict(check.settled) == {"outbox": 2}
    assert states(engine) == {"sent": 2, "uncertain": 1, "pending": 2}


@pytest.mark.skipif(
    not ACTIVITY_CONTRACT,
    reason="SENDGRID_ACTIVITY_CONTRACT_URL is not set: run under ../shared/sendgrid/"
    "with_prism.sh (make test does) to check the Email Activity request against its contract",
)
def test_the_activity_request_meets_sendgrids_contract(engine):
    """Prism checks our GET /v3/messages (query, limit, bearer key) against
    tsg_email_activity_v3.json and answers with the contract's example messages."""
    activity = SendGridActivity(KEY, host=ACTIVITY_CONTRACT)
    messages = activity.messages("0123456789abcdef0123456789abcdef")
    assert messages and {"to_email", "status", "last_event_time"} <= set(messages[0])
    # the example's addresses match nobody of ours: nothing is proved by them
    led, send_id = uncertain(engine, [1])
    assert activity.evidence(send_id, led.batch_rows(led.uncertain_batches()[0].id)) == []


@pytest.mark.skipif(not ACTIVITY_CONTRACT, reason="SENDGRID_ACTIVITY_CONTRACT_URL is not set")
def test_the_contract_check_can_fail():
    """A request the contract refuses (limit over 1000) comes back 400: the check is real."""
    from python_http_client.exceptions import HTTPError

    activity = SendGridActivity(KEY, host=ACTIVITY_CONTRACT)
    with pytest.raises(HTTPError) as caught:
        activity.sg.client.messages.get(query_params={"query": "x", "limit": 5000})
    assert caught.value.status_code in (400, 422)
