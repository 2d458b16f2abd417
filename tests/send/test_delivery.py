"""Backends: the request we build, the answers we classify, the files the outbox writes.

SendGrid is replaced at the wire by tests/support/fake_sendgrid.py; the real ``sendgrid``
client talks HTTP to it.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import socket

import pytest
from support.fake_sendgrid import Fault, start_server

from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import DeliveryError
from equip_mailer.send.delivery import (
    Addressee,
    Batch,
    CampaignMail,
    Content,
    OutboxBackend,
    RetryPolicy,
    SendGridBackend,
    build_request,
    campaign_mail,
    mask_addresses,
    sendgrid_errors,
    substitute,
)

KEY = "SG.test-key"
MAIL = CampaignMail(
    campaign_id="2019-04-equip-training",
    sender_email="equip@example.org",
    sender_name="EQUIP",
    reply_to_email="team@example.org",
    categories=("2019-04-equip-training", "equip-newsletter"),
    asm_group_id=42,
)
CONTENT = Content(
    segment="getting-started",
    subject="Hello -eqt_first_name-",
    html='<p>Dear -eq_first_name-, <a href="-eq_link_0-">sign up</a></p>',
    text="Dear -eqt_first_name-, sign up: -eqt_link_0-",
)


def people(n: int, start: int = 1) -> list[Addressee]:
    return [
        Addressee(
            ledger_id=i,
            email=f"person{i}@example.org",
            name=f"Person {i}",
            values={
                "-eq_first_name-": f"P&amp;{i}",
                "-eqt_first_name-": f"P&{i}",
                "-eq_link_0-": f"https://t.example/c/{i}",
                "-eqt_link_0-": f"https://t.example/c/{i}",
            },
            unsubscribe_url=f"https://t.example/u/{i}",
        )
        for i in range(start, start + n)
    ]


def batch(n: int = 3, **kw) -> Batch:
    return Batch(
        campaign_id=MAIL.campaign_id, send_id="s1", content=CONTENT, addressees=people(n), **kw
    )


@pytest.fixture
def sg():
    url, server = start_server(KEY, keep_bodies=True)
    yield url, server
    server.stop()


def backend(
    url: str,
    *,
    key: str = KEY,
    timeout: float = 5.0,
    mail: CampaignMail = MAIL,
    sleeps: list | None = None,
    attempts: int = 4,
) -> SendGridBackend:
    waits = sleeps if sleeps is not None else []
    return SendGridBackend(
        key,
        mail,
        host=url,
        timeout=timeout,
        retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
        sleep=waits.append,
    )


# --- the request ---------------------------------------------------------------------


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


def test_errors_are_parsed_and_addresses_masked():
    body = (
        b'{"errors":[{"message":"bad address ann.smith@nhs.net","field":"personalizations.0.to"}]}'
    )
    text = sendgrid_errors(body)
    assert text == "bad address a***@n***.net (field personalizations.0.to)"
    assert mask_addresses("to bob@example.org now") == "to b***@e***.org now"
    assert sendgrid_errors(b"<html>oops</html>") == "<html>oops</html>"


# --- SendGrid answers ------------------------------------------------------------------


def test_202_is_sent_with_the_message_id(sg):
    url, server = sg
    result = backend(url).send_batch(batch(5))
    assert result.state == "sent" and result.status == 202 and result.message_id
    assert server.emails() == {f"person{i}@example.org": 1 for i in range(1, 6)}
    assert {a.recipient for a in server.accepted} == {"1", "2", "3", "4", "5"}


def test_429_then_500_are_retried_honouring_retry_after(sg):
    url, server = sg
    server.plan(Fault("429", retry_after=0.3), Fault("500"), Fault("503"))
    waits: list[float] = []
    result = backend(url, sleeps=waits).send_batch(batch(2))
    assert result.state == "sent" and result.attempts == 4
    assert waits[0] >= 0.3  # Retry-After is a floor for the backoff
    assert len(waits) == 3
    assert server.emails() == {"person1@example.org": 1, "person2@example.org": 1}


def test_x_ratelimit_reset_is_honoured(sg):
    url, server = sg
    server.plan(Fault("429", rate_limit_reset=2))
    waits: list[float] = []
    assert backend(url, sleeps=waits).send_batch(batch(1)).state == "sent"
    assert 0.5 <= waits[0] <= 2.5


def test_5xx_every_time_fails_without_stopping(sg):
    url, server = sg
    server.plan(*[Fault("500")] * 4)
    result = backend(url, attempts=4).send_batch(batch(2))
    assert result.state == "failed" and not result.stop and result.status == 500
    assert "4 times" in result.error and "not accepted" in result.error
    assert server.emails() == {}


@pytest.mark.parametrize(
    "kind, words",
    [
        ("400", "SendGrid refused batch s1"),
        ("401", "rejected the API key"),
        ("403", "refused access"),
        ("413", "too large"),
    ],
)
def test_refusals_stop_with_the_batch_named(sg, kind, words):
    url, server = sg
    server.plan(Fault(kind))
    result = backend(url).send_batch(batch(2))
    assert result.state == "failed" and result.stop and result.status == int(kind)
    assert words in result.error and "getting-started" in result.error
    assert server.requests == 1  # no retry


def test_a_wrong_key_gets_sendgrids_own_message(sg):
    url, _ = sg
    result = backend(url, key="SG.wrong").send_batch(batch(1))
    assert result.stop and "authorization grant is invalid" in result.error


def test_invalid_payload_is_refused_by_the_server_with_its_reason(sg):
    url, server = sg
    big = Addressee(
        ledger_id=9,
        email="big@example.org",
        name="",
        unsubscribe_url="u",
        values={"-eq_x-": "x" * 10_001},
    )
    result = backend(url).send_batch(
        Batch(campaign_id="c", send_id="s2", content=CONTENT, addressees=[big])
    )
    assert result.state == "failed" and result.stop
    assert "10,000 bytes" in result.error


@pytest.mark.parametrize("accept", [True, False])
def test_slow_answer_is_uncertain_never_retried(sg, accept):
    url, server = sg
    server.plan(Fault("slow", seconds=1.5, accept=accept))
    result = backend(url, timeout=0.4).send_batch(batch(2))
    assert result.state == "uncertain" and not result.stop and "timed out" in result.error
    assert server.requests == 1
    assert sum(server.emails().values()) == (2 if accept else 0)


def test_dropped_connection_is_uncertain(sg):
    url, server = sg
    server.plan(Fault("drop"))
    result = backend(url).send_batch(batch(2))
    assert result.state == "uncertain" and server.requests == 1


def test_unreachable_server_fails_and_stops():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = backend(f"http://127.0.0.1:{port}").send_batch(batch(1))
    assert result.state == "failed" and result.stop and "connection refused" in result.error


def test_scheduled_send_gets_a_batch_id_and_can_be_cancelled(sg):
    url, server = sg
    b = backend(url)
    sg_batch = b.create_batch_id()
    when = int(dt.datetime.now(dt.UTC).timestamp()) + 3600
    b.mail = CampaignMail(**{**MAIL.__dict__, "send_at": when, "sg_batch_id": sg_batch})
    assert b.send_batch(batch(1)).state == "sent"
    assert server.bodies[-1]["send_at"] == when and server.bodies[-1]["batch_id"] == sg_batch
    b.cancel_scheduled(sg_batch)
    assert server.scheduled == {sg_batch: "cancel"}
    with pytest.raises(DeliveryError, match="HTTP 400.*batch id is not valid"):
        b.cancel_scheduled("nonsense")


# --- outbox --------------------------------------------------------------------------------


def test_outbox_writes_one_parseable_eml_per_recipient(tmp_path):
    out = OutboxBackend(tmp_path, MAIL)
    assert out.send_batch(batch(3)).state == "sent"
    files = sorted((tmp_path / MAIL.campaign_id).iterdir())
    assert [f.name for f in files] == ["000001.eml", "000002.eml", "000003.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Hello P&1"
    assert msg["To"].addresses[0].addr_spec == "person1@example.org"
    assert msg["List-Unsubscribe"] == "<https://t.example/u/1>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/alternative"
    parts = [p.get_content_type() for p in msg.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    assert "Dear P&1, sign up: https://t.example/c/1" in msg.get_body(("plain",)).get_content()
    assert 'Dear P&amp;1, <a href="https://t.example/c/1">' in msg.get_body(("html",)).get_content()


def test_outbox_rerun_overwrites_instead_of_adding_and_leaves_no_temp_files(tmp_path):
    out = OutboxBackend(tmp_path, MAIL)
    out.send_batch(batch(3))
    out.send_batch(batch(3))
    names = sorted(p.name for p in (tmp_path / MAIL.campaign_id).iterdir())
    assert names == ["000001.eml", "000002.eml", "000003.eml"]


def test_outbox_test_copy_has_test_subject(tmp_path):
    out = OutboxBackend(tmp_path, MAIL)
    out.send_batch(batch(1, test=True))
    msg = email.message_from_bytes(
        (tmp_path / MAIL.campaign_id / "test" / "getting-started.eml").read_bytes(),
        policy=email.policy.default,
    )
    assert msg["Subject"] == "[TEST] Hello P&1"


def test_outbox_unwritable_folder_stops_plainly(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = OutboxBackend(blocker, MAIL).send_batch(batch(1))
    assert result.state == "failed" and result.stop and "cannot write to the outbox" in result.error


def test_substitute_matches_render_personalise(demo_path):
    from equip_mailer.compose.audience import Recipient
    from equip_mailer.compose.render import personalise, recipient_values, render_campaign

    spec = load_campaign(demo_path, allow_past=True)
    rendered = render_campaign(spec, segments=["ready-for-action"])["ready-for-action"]
    who = Recipient("a@example.org", "Ann <b>", "X", "Practice & Co", "GP", "basics", "t")
    values = recipient_values(
        rendered,
        who,
        {l.key: f"https://x.example/{i}" for i, l in enumerate(rendered.links)},
        "https://x.example/u",
    )
    assert (substitute(rendered.html, values), substitute(rendered.text, values)) == personalise(
        rendered, values
    )


def test_click_url_maker_gives_the_same_urls_as_click_url():
    from equip_mailer.send.links import click_url, click_url_maker, read_token

    secret = b"k" * 32
    ids = {"a": 1, "b": 130, "c": 99999}
    assert click_url_maker("https://t.example", b"x" * 100, ids)(5)["c"] == click_url(
        "https://t.example", b"x" * 100, 99999, 5
    )  # keys longer than a block
    make = click_url_maker("https://t.example/", secret, ids)
    for ledger_id in (0, 1, 127, 128, 10**6):
        urls = make(ledger_id)
        assert urls == {
            k: click_url("https://t.example", secret, v, ledger_id) for k, v in ids.items()
        }
        token = read_token(secret, "c", urls["b"].rsplit("/", 1)[1])
        assert (token.link_id, token.ledger_id) == (130, ledger_id)


def test_unsubscribe_url_maker_gives_the_same_urls_as_unsubscribe_url():
    from equip_mailer.send.links import unsubscribe_url, unsubscribe_url_maker

    for secret in (b"k" * 32, b"long" * 40):
        make = unsubscribe_url_maker("https://t.example", secret)
        for ledger_id in (0, 1, 300, 10**7):
            assert make(ledger_id) == unsubscribe_url("https://t.example", secret, ledger_id)
