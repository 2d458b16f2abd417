"""Single transactional messages are stored with the change they announce and sent exactly
once, through a real outbox folder or the SendGrid stand-in, even when the sender dies."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import signal
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.fake_sendgrid import Fault, start_server

from equip_mailer import store
from equip_mailer.send.notice_transports import OutboxNotices, SendGridNotices
from equip_mailer.send.notices import (
    MAX_ATTEMPTS,
    Attachment,
    Notice,
    NoticeSender,
    enqueue,
    requeue,
)

ICS = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//EQUIP//test//EN\r\nMETHOD:PUBLISH\r\n"
    b"END:VCALENDAR\r\n"
)


def confirmation(n: int = 1, **changes) -> Notice:
    fields = {
        "key": f"signup-confirm:{n}",
        "kind": "signup-confirmation",
        "to_email": f"reader{n}@nhs.example",
        "to_name": "Zoë O'Brien",
        "from_email": "equip@equip.example.org",
        "from_name": "EQUIP",
        "subject": "Your place on EQUIP Basics",
        "text": "Your place is confirmed.\n",
        "html": "<p>Your place is confirmed.</p>",
        "attachments": (Attachment("equip-basics.ics", "text/calendar; method=PUBLISH", ICS),),
        "campaign_id": "2019-04-equip-training",
    }
    fields.update(changes)
    return Notice(**fields)


def states(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.notices.c.state, sa.func.count()).group_by(store.notices.c.state)
        )
        return dict(rows.all())


def test_a_notice_is_stored_once_per_key_and_only_with_its_transaction(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        first = enqueue(conn, confirmation(1))
        again = enqueue(conn, confirmation(1, subject="a double click"))
    assert isinstance(first, int) and again is None
    with pytest.raises(RuntimeError), engine.begin() as conn:
        enqueue(conn, confirmation(2))
        raise RuntimeError("the registration failed after all")
    assert states(engine) == {"pending": 1}


def test_header_injection_is_refused_before_anything_is_stored():
    with pytest.raises(ValueError, match="subject must be one line"):
        confirmation(subject="Hi\r\nBcc: everyone@example.org")


def test_outbox_writes_one_message_with_text_html_and_a_calendar(sqlite_url, tmp_path):
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, confirmation(1))
    counts = NoticeSender(engine, OutboxNotices(tmp_path / "outbox")).deliver_pending()
    assert (counts.sent, counts.failed, counts.uncertain) == (1, 0, 0)
    files = list((tmp_path / "outbox" / "notices").glob("*.eml"))
    assert [f.name for f in files] == ["000001-signup-confirmation.eml"]
    msg = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"] == "Your place on EQUIP Basics"
    assert msg["To"].addresses[0].display_name == "Zoë O'Brien"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_body(("plain",)).get_content().splitlines() == ["Your place is confirmed."]
    assert "confirmed" in msg.get_body(("html",)).get_content()
    (calendar,) = list(msg.iter_attachments())
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "PUBLISH"
    assert calendar.get_filename() == "equip-basics.ics"
    assert calendar.get_content().splitlines() == ICS.decode().splitlines()
    assert states(engine) == {"sent": 1}
    # Nothing is due any more: a second pass sends nothing.
    assert NoticeSender(engine, OutboxNotices(tmp_path / "outbox")).deliver_pending().sent == 0


def _die_while_sending(sqlite_url: str, outbox: Path, after_write: bool) -> None:
    """A child process claims the notice and is killed with SIGKILL just before or just
    after the outbox file is written: the worst moments for exactly-once."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            real = OutboxNotices(outbox)

            class Dying:
                name = "outbox"

                def send_notice(self, outgoing):
                    if after_write:
                        real.send_notice(outgoing)
                    os.kill(os.getpid(), signal.SIGKILL)

                def delivered(self, outgoing):
                    return real.delivered(outgoing)

            engine = store.open_store(sqlite_url)
            NoticeSender(engine, Dying()).deliver_pending()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


@pytest.mark.parametrize("after_write", [False, True], ids=["before-write", "after-write"])
def test_a_sender_killed_mid_send_leaves_exactly_one_message(sqlite_url, tmp_path, after_write):
    engine = store.open_store(sqlite_url)
    outbox = tmp_path / "outbox"
    with engine.begin() as conn:
        enqueue(conn, confirmation(1))
    engine.dispose()
    _die_while_sending(sqlite_url, outbox, after_write)
    assert states(engine) == {"sending": 1}
    sender = NoticeSender(engine, OutboxNotices(outbox))
    assert sender.recover() == 1
    assert states(engine) == ({"sent": 1} if after_write else {"pending": 1})
    sender.deliver_pending()
    assert states(engine) == {"sent": 1}
    assert len(list((outbox / "notices").glob("*.eml"))) == 1


def test_a_live_senders_claim_is_left_alone(sqlite_url, tmp_path):
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, confirmation(1))
    sender = NoticeSender(engine, OutboxNotices(tmp_path))
    assert sender._claim_next() is not None  # this process is alive and holds it
    assert sender.recover() == 0
    assert states(engine) == {"sending": 1}


def test_two_senders_at_once_send_each_notice_once(db_url, tmp_path):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        for n in range(1, 41):
            enqueue(conn, confirmation(n, attachments=()))
    outbox = tmp_path / "outbox"
    totals = []

    def run():
        totals.append(NoticeSender(engine, OutboxNotices(outbox)).deliver_pending().sent)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(totals) == 40
    assert len(list((outbox / "notices").glob("*.eml"))) == 40
    assert states(engine) == {"sent": 40}


@pytest.fixture
def sendgrid_server():
    url, server = start_server(keep_bodies=True)
    yield url, server
    server.stop()


def test_sendgrid_gets_one_untracked_request_per_notice_with_its_id(sqlite_url, sendgrid_server):
    url, server = sendgrid_server
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        notice_id = enqueue(conn, confirmation(1, reply_to="EQUIP team <team@equip.example.org>"))
    sender = NoticeSender(engine, SendGridNotices("SG.test-key", host=url, timeout=5))
    assert sender.deliver_pending().sent == 1
    (body,) = server.bodies
    personalization = body["personalizations"][0]
    assert personalization["custom_args"] == {
        "notice_id": str(notice_id),
        "kind": "signup-confirmation",
        "campaign_id": "2019-04-equip-training",
    }
    assert body["tracking_settings"]["click_tracking"]["enable"] is False
    assert body["reply_to"] == {"email": "team@equip.example.org", "name": "EQUIP team"}
    (attachment,) = body["attachments"]
    assert attachment["type"] == "text/calendar" and attachment["filename"] == "equip-basics.ics"
    with engine.connect() as conn:
        row = conn.execute(sa.select(store.notices)).one()
    assert row.state == "sent" and row.message_id and row.backend == "sendgrid"


def test_sendgrid_refusals_retry_later_then_fail_and_a_bad_payload_fails_at_once(
    sqlite_url, sendgrid_server
):
    url, server = sendgrid_server
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, confirmation(1))
        enqueue(conn, confirmation(2))
    now = [dt.datetime(2019, 6, 1, 9, 0)]
    transport = SendGridNotices("SG.test-key", host=url, timeout=5)
    sender = NoticeSender(engine, transport, clock=lambda: now[0])
    # Notice 1: 401 (a bad key) every time; notice 2: 400 (refused payload) once.
    server.plan(Fault("401"), Fault("400"))
    counts = sender.deliver_pending()
    assert (counts.retry_later, counts.failed) == (1, 1)
    assert states(engine) == {"pending": 1, "failed": 1}
    for _ in range(MAX_ATTEMPTS - 1):
        server.plan(Fault("401"))
        assert sender.deliver_pending().sent == 0  # not due yet: nothing is tried
        now[0] += dt.timedelta(hours=3)
        sender.deliver_pending()
    assert states(engine) == {"failed": 2}
    with engine.begin() as conn:
        failed = [r.id for r in conn.execute(sa.select(store.notices.c.id))]
        assert requeue(conn, failed) == 2
    assert sender.deliver_pending().sent == 2


def test_a_dead_sendgrid_send_becomes_uncertain_not_a_second_copy(sqlite_url, sendgrid_server):
    url, server = sendgrid_server
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, confirmation(1))
        conn.execute(
            store.notices.update().values(
                state="sending",
                claimed_by="elsewhere:1:1",
                claimed_at=dt.datetime(2019, 6, 1, 9, 0),
            )
        )
    sender = NoticeSender(engine, SendGridNotices("SG.test-key", host=url, timeout=5))
    assert sender.recover() == 1
    assert sender.deliver_pending().sent == 0
    assert states(engine) == {"uncertain": 1}
    assert server.requests == 0
