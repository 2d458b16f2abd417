"""The requests we build, checked against SendGrid's official Mail Send contract (Prism).

Run inside ../shared/sendgrid/with_prism.sh, which serves tsg_mail_v3.json and sets
SENDGRID_CONTRACT_URL (``make test`` does this when ../shared exists). Without it the test
is skipped. The contract types message-level custom_args as a string, which is why ours
live on the personalizations. What the contract does not check (<= 1000 recipients, each
address once, custom_args values as strings, text/plain first) is covered by
test_sendgrid_request.py and backends/test_sendgrid.py (against
tests/support/fake_sendgrid.py).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import sendgrid
from click.testing import CliRunner
from python_http_client.exceptions import HTTPError
from support.link_secrets import LINK_SECRET

from equip_mailer.cli import main
from equip_mailer.compose.audience import load_audience
from equip_mailer.compose.render.personalisation import recipient_values
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.send.backends.sendgrid import SendGridBackend
from equip_mailer.send.batch import Addressee, Batch, Content, display_name
from equip_mailer.send.campaign_mail import campaign_mail
from equip_mailer.send.links import click_url, unsubscribe_url
from equip_mailer.send.sendgrid_request import build_request

CONTRACT = os.environ.get("SENDGRID_CONTRACT_URL")
pytestmark = pytest.mark.skipif(
    not CONTRACT,
    reason="SENDGRID_CONTRACT_URL is not set: run under ../shared/sendgrid/with_prism.sh "
    "(make test does when ../shared exists) to check requests against "
    "SendGrid's Mail Send contract",
)
ROOT = Path(__file__).resolve().parents[2]
SECRET = LINK_SECRET.encode()


def post(body: dict):
    """Post with the official client; on a refusal, show Prism's reasons (sl-violations)."""
    sg = sendgrid.SendGridAPIClient("SG.contract-test", host=CONTRACT)
    sg.client.timeout = 10
    try:
        return sg.client.mail.send.post(request_body=body)
    except HTTPError as exc:
        violations = (exc.headers or {}).get("sl-violations")
        pytest.fail(
            f"contract refused the request: HTTP {exc.status_code}: {violations or exc.body}"
        )


def bodies(demo_path, **mail_changes) -> list[dict]:
    """One request per segment of the demo, with 50 real list rows each."""
    spec = load_campaign(demo_path, allow_past=True)
    mail = replace(campaign_mail(spec), **mail_changes)
    audience = load_audience(spec)
    out = []
    for seg_id, rendered in render_campaign(spec).items():
        addressees = []
        for i, r in enumerate(audience.by_segment[seg_id][:50], start=1):
            unsub = unsubscribe_url("https://equip.example.org", SECRET, i)
            urls = {
                link.key: click_url("https://equip.example.org", SECRET, n + 1, i)
                for n, link in enumerate(rendered.links)
            }
            addressees.append(
                Addressee(
                    ledger_id=i,
                    email=r.email,
                    name=display_name(r.first_name, r.last_name),
                    values=recipient_values(rendered, r, urls, unsub),
                    unsubscribe_url=unsub,
                )
            )
        content = Content(seg_id, rendered.subject, rendered.html, rendered.text)
        out.append(build_request(mail, Batch(spec.id, f"contract-{seg_id}", content, addressees)))
    return out


def test_demo_requests_meet_the_contract(demo_path):
    for body in bodies(demo_path):
        assert post(body).status_code == 202


def test_with_asm_sandbox_tracking_and_a_schedule(demo_path):
    backend = SendGridBackend(
        "SG.contract-test",
        campaign_mail(load_campaign(demo_path, allow_past=True)),
        host=CONTRACT,
        timeout=10,
    )
    batch_id = backend.create_batch_id()  # POST /v3/mail/batch on the contract
    when = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=24)).timestamp())
    for body in bodies(
        demo_path,
        asm_group_id=12345,
        sandbox=True,
        click_tracking=True,
        open_tracking=True,
        send_at=when,
        sg_batch_id=batch_id,
    ):
        assert body["asm"] == {"group_id": 12345} and body["batch_id"] == batch_id
        assert post(body).status_code == 202


def test_the_contract_check_can_fail(demo_path):
    """A request without `from` must be refused: proof the check is real."""
    body = bodies(demo_path)[0]
    del body["from"]
    sg = sendgrid.SendGridAPIClient("SG.contract-test", host=CONTRACT)
    sg.client.timeout = 10
    with pytest.raises(HTTPError) as caught:
        sg.client.mail.send.post(request_body=body)
    assert caught.value.status_code == 400


def test_the_send_command_through_the_contract(tmp_path, monkeypatch):
    """The real command, every batch of the demo, against the contract."""
    for folder in ("campaigns", "lists", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    for var, value in {
        "EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'equip.db'}",
        "EQUIP_LINK_SECRET": SECRET.decode(),
        "SENDGRID_API_KEY": "SG.contract-test",
        "SENDGRID_API_HOST": CONTRACT,
        "EQUIP_BATCH_SIZE": "100",
        # what a real send's pre-flight asks for: public https links, the sender's domain
        "EQUIP_PUBLIC_URL": "https://equip.example.org",
        "EQUIP_SENDER_DOMAIN": "example.org",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "campaigns" / "2019-04-equip-training.yaml"
    result = CliRunner().invoke(
        main, ["send", str(spec), "--allow-past", "--yes"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "failed 0, no answer for 0" in result.output
    assert "uncertain 0;" in result.output


def test_a_notice_with_a_calendar_attachment_meets_the_contract():
    from equip_mailer.send.notice_transports import request_body
    from equip_mailer.send.notices import Attachment, Notice, Outgoing

    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:PUBLISH\r\nEND:VCALENDAR\r\n"
    notice = Notice(
        key="signup-confirm:1",
        kind="signup-confirmation",
        to_email="reader@nhs.example",
        to_name="Zoë O'Brien",
        from_email="equip@equip.example.org",
        from_name="EQUIP",
        reply_to="EQUIP team <team@equip.example.org>",
        subject="Your place on EQUIP Basics",
        text="Your place is confirmed.\n",
        html="<p>Your place is confirmed.</p>",
        attachments=(Attachment("equip-basics.ics", "text/calendar; method=PUBLISH", ics),),
        campaign_id="2019-04-equip-training",
    )
    assert post(request_body(Outgoing(id=7, notice=notice))).status_code == 202
