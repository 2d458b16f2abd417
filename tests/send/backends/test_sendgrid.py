"""The SendGrid backend against a SendGrid-compatible server on loopback: retries, refusals,
answers that never come, scheduling, and SendGrid's error messages read back.

SendGrid is replaced at the wire by tests/support/fake_sendgrid.py; the real ``sendgrid``
client talks HTTP to it.
"""

from __future__ import annotations

import datetime as dt
import json
import socket

import pytest
from support.fake_sendgrid import Fault, start_server
from support.mail_batches import CONTENT, MAIL, batch

from equip_mailer.errors import DeliveryError
from equip_mailer.send.backends.sendgrid import (
    RetryPolicy,
    SendGridBackend,
    encode_body,
    sendgrid_errors,
)
from equip_mailer.send.batch import Addressee, Batch
from equip_mailer.send.campaign_mail import CampaignMail
from equip_mailer.send.sendgrid_request import build_request

KEY = "SG.test-key"


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


def test_errors_are_parsed_and_addresses_masked():
    body = (
        b'{"errors":[{"message":"bad address ann.smith@nhs.net","field":"personalizations.0.to"}]}'
    )
    text = sendgrid_errors(body)
    assert text == "bad address a***@n***.net (field personalizations.0.to)"
    assert sendgrid_errors(b"<html>oops</html>") == "<html>oops</html>"


# --- SendGrid answers ------------------------------------------------------------------


def test_202_is_sent_with_the_message_id(sg):
    url, server = sg
    result = backend(url).send_batch(batch(5))
    assert result.state == "sent" and result.status == 202 and result.message_id
    assert server.emails() == {f"person{i}@example.org": 1 for i in range(1, 6)}
    assert {a.recipient for a in server.accepted} == {"1", "2", "3", "4", "5"}


def test_the_posted_body_is_the_built_request_non_ascii_intact(sg):
    """The body goes as JSON text encoded here (orjson, UTF-8); the server reads back exactly
    the request built for the batch, names and values with accents included."""
    url, server = sg
    b = batch(2)
    first = b.addressees[0]._replace(name="Zoë Ó Ceallaigh", values={"-first-": "Zoë"})
    b = Batch(b.campaign_id, b.send_id, b.content, [first, b.addressees[1]])
    assert backend(url).send_batch(b).state == "sent"
    assert server.bodies == [build_request(MAIL, b)]
    assert server.bodies[0]["personalizations"][0]["to"][0]["name"] == "Zoë Ó Ceallaigh"


def test_the_body_prints_as_its_size_never_the_readers():
    """The client formats every payload into a debug message, logging on or off: the encoded
    body prints as its size (no 1 MB repr per batch, no address even if debug logging is
    switched on) and is the same bytes the server gets."""
    b = batch(3)
    body = encode_body(build_request(MAIL, b))
    line = f"PAYLOAD: {body}"
    assert line == f"PAYLOAD: <JSON body, {len(body):,} bytes>"
    assert "@example.org" not in repr(body) and "@example.org" not in str(body)
    assert json.loads(bytes(body)) == build_request(MAIL, b)
    assert body.encode("utf-8") is body  # what the client sends: not decoded and re-encoded
    assert body.encode("UTF8") is body
    latin = encode_body({"name": "Zoë"}).encode("latin-1")  # asked for another, it is honoured
    assert latin == '{"name":"Zoë"}'.encode("latin-1")


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


def test_a_wait_after_a_server_error_is_not_said_to_be_sendgrids_request():
    """Found in review: every wait was shown as "SendGrid asked to wait 4 s (HTTP 503: a
    server error)", but after a 5xx SendGrid asks for nothing: the wait is this tool's
    backoff before trying again. Only a 429 is SendGrid asking."""
    from equip_mailer.send.backends.sendgrid import describe_wait

    said = describe_wait(3.2, 503, "batch 2")
    assert "asked" not in said
    assert said == (
        "SendGrid answered HTTP 503 (a server error): trying batch 2 again in 4 s; "
        "the run goes on by itself."
    )
    asked = describe_wait(2.5, 429, "batch 2")
    assert asked == (
        "SendGrid asked to wait 3 s (HTTP 429: too many requests) before trying batch 2 "
        "again; the run goes on by itself."
    )


def test_a_rate_limit_longer_than_a_send_waits_stops_the_run_saying_when_to_go_on(sg):
    """Found in the audit: a 429 asking for more than the 2 minutes a send waits failed the
    batch ('answered HTTP 429 ... 1 times') and the run went straight on to the next
    batches, which SendGrid refused the same way, until the error budget paused it; nothing
    said how long SendGrid wanted, or when to run again."""
    url, server = sg
    server.plan(Fault("429", retry_after=500))
    waits: list[float] = []
    wait = dt.timedelta(seconds=500)
    before = dt.datetime.now(dt.UTC) + wait
    result = backend(url, sleeps=waits).send_batch(batch(2))
    after = dt.datetime.now(dt.UTC) + wait
    assert result.state == "failed" and result.stop and result.status == 429
    assert waits == [] and server.requests == 1
    assert "asked to wait 8 min 20 s" in result.error and "it was not sent" in result.error
    assert result.hint in {
        f"Run the same command again after {when:%H:%M} UTC: nothing already sent goes twice."
        for when in (before, after)
    }
    server.plan(Fault("503"))  # a 5xx is about one request: the run goes on
    result = backend(url, sleeps=waits, attempts=1).send_batch(batch(2))
    assert result.state == "failed" and not result.stop
    assert "answered HTTP 503 to batch s1 (segment getting-started, 2 recipients) once" in (
        result.error
    )


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


@pytest.mark.parametrize(
    "field, change",
    [
        ("personalizations.1.to", "the recipient address p***@e***.org (the 2nd in this batch)"),
        ("asm.group_id", "`sendgrid.asm_group_id` in the campaign file"),
        ("from.email", "the sender, `from` in the campaign file"),
        ("send_at", "`sendgrid.send_at` in the campaign file"),
    ],
)
def test_a_400_says_what_to_change_in_the_campaigns_words(sg, field, change):
    """Found in the audit: a 400 showed SendGrid's JSON path ("field
    personalizations.1.to") and 'Fix the campaign or list': the manager could not tell which
    reader's address, or which line of the spec, to change."""
    url, server = sg
    server.plan(Fault("400", message="Does not contain a valid address.", field=field))
    result = backend(url).send_batch(batch(3))
    assert result.state == "failed" and result.stop and result.status == 400
    assert f"(field {field})" in result.error  # SendGrid's own words stay, for support
    assert result.hint.startswith(f"Change {change}")
    assert "will be retried" in result.hint
    assert "@example.org" not in result.error + result.hint


def test_a_400_about_what_equip_mailer_builds_says_so(sg):
    url, server = sg
    server.plan(Fault("400", message="Invalid type.", field="tracking_settings.open_tracking"))
    result = backend(url).send_batch(batch(1))
    assert "not in the campaign" in result.hint and "report it" in result.hint


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
