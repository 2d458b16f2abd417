"""The outbox backend: one parseable .eml per reader, written so a re-run never adds a copy,
with tokens substituted exactly as SendGrid would."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import replace

import pytest
from support.mail_batches import MAIL, batch, people

from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import EquipError
from equip_mailer.send.backends.outbox import OutboxBackend, substitute
from equip_mailer.send.backends.outbox_files import writers_from_env


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
    from equip_mailer.compose.render.personalisation import personalise, recipient_values
    from equip_mailer.compose.render.pipeline import render_campaign

    spec = load_campaign(demo_path, allow_past=True)
    rendered = render_campaign(spec, segments=["ready-for-action"])["ready-for-action"]
    who = Recipient("a@example.org", "Ann <b>", "X", "Practice & Co", "GP", "basics", "t")
    values = recipient_values(
        rendered,
        who,
        {link.key: f"https://x.example/{i}" for i, link in enumerate(rendered.links)},
        "https://x.example/u",
    )
    assert (substitute(rendered.html, values), substitute(rendered.text, values)) == personalise(
        rendered, values
    )


def test_outbox_mail_carries_the_list_headers(tmp_path):
    out = OutboxBackend(tmp_path, replace(MAIL, list_label="newsletter"))
    assert out.send_batch(batch(1)).state == "sent"
    data = (tmp_path / MAIL.campaign_id / "000001.eml").read_bytes()
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert msg["List-Id"] == '"EQUIP" <newsletter.example.org>'
    assert msg["Feedback-ID"] == "2019-04-equip-training:getting-started:newsletter:example.org"


def writer_threads() -> set[threading.Thread]:
    """The outbox's file writers alive now, found by their name (outbox_files.py)."""
    return {t for t in threading.enumerate() if t.name.startswith("equip-outbox")}


def test_close_stops_the_writer_threads_and_a_later_send_starts_them_again(tmp_path):
    """With two writers a batch of 10 is shared between them; close stops them instead of
    leaving them idle until the process ends. Sending after close works as the first send
    did (failing would leave a claimed batch uncertain in the ledger) and needs closing
    again."""
    before = writer_threads()
    out = OutboxBackend(tmp_path, MAIL, writers=2)
    assert out.send_batch(batch(10)).state == "sent"
    assert writer_threads() - before  # one or two: a pool reuses a writer already idle
    out.close()
    assert writer_threads() - before == set()

    assert out.send_batch(batch(10)).state == "sent"  # the same files again
    assert writer_threads() - before
    out.close()
    out.close()  # closing twice is harmless
    assert writer_threads() - before == set()
    assert len(list((tmp_path / MAIL.campaign_id).iterdir())) == 10


def test_by_default_the_thread_sending_the_batch_writes_its_files(tmp_path):
    """One writer (outbox_files.WRITERS): no thread of the backend's own to stop."""
    before = writer_threads()
    out = OutboxBackend(tmp_path, MAIL)
    assert out.send_batch(batch(10)).state == "sent"
    assert writer_threads() - before == set()
    assert len(list((tmp_path / MAIL.campaign_id).iterdir())) == 10


@pytest.mark.parametrize(("value", "writers"), [("", 1), ("1", 1), ("3", 3), (" 8 ", 8)])
def test_equip_outbox_writers_sets_the_writer_threads(value, writers):
    assert writers_from_env({"EQUIP_OUTBOX_WRITERS": value}) == writers


@pytest.mark.parametrize("value", ["0", "9", "two", "-1", "1.5", "\u00b2"])
def test_equip_outbox_writers_out_of_range_is_refused_in_plain_words(value):
    with pytest.raises(EquipError, match="EQUIP_OUTBOX_WRITERS must be a whole number from 1 to 8"):
        writers_from_env({"EQUIP_OUTBOX_WRITERS": value})


def test_a_with_block_closes_the_backend(tmp_path):
    before = writer_threads()
    with OutboxBackend(tmp_path, MAIL, writers=2) as out:
        assert out.send_batch(batch(10)).state == "sent"
        assert writer_threads() - before
    assert writer_threads() - before == set()


def test_two_batches_sent_at_once_share_the_folders_writers_and_the_segments_template(
    tmp_path, monkeypatch
):
    """The send loop keeps two batches in flight, so send_batch runs on two threads at
    once: they get one lander (whose writers close() stops) and one template, not two.
    Both are made slowly here, so that two threads asking at once would each make one."""
    import equip_mailer.send.backends.outbox as outbox

    made = {"lander": 0, "template": 0}

    def slowly(kind, make):
        def build(*args, **kwargs):
            made[kind] += 1
            time.sleep(0.05)
            return make(*args, **kwargs)

        return build

    monkeypatch.setattr(outbox, "FileLander", slowly("lander", outbox.FileLander))
    monkeypatch.setattr(outbox, "SegmentTemplate", slowly("template", outbox.SegmentTemplate))
    before = writer_threads()
    out = OutboxBackend(tmp_path, MAIL, writers=2)
    start = threading.Barrier(2)
    results = []

    def send(first: int) -> None:
        b = replace(batch(0), addressees=people(20, start=first))
        start.wait()
        results.append(out.send_batch(b).state)

    threads = [threading.Thread(target=send, args=(first,)) for first in (1, 21)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["sent", "sent"]
    assert made == {"lander": 1, "template": 1}
    files = sorted((tmp_path / MAIL.campaign_id).iterdir())
    assert [f.name for f in files] == [f"{i:06d}.eml" for i in range(1, 41)]
    msg = email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "person40@example.org"
    out.close()
    assert writer_threads() - before == set()


def test_close_waits_for_a_batch_still_being_written(tmp_path, monkeypatch):
    """After Ctrl+C the CLI closes the backend while a batch may still be writing (or
    waiting for the folder behind another): close returns once it is done, with its files
    whole and no writer left behind."""
    before = writer_threads()
    out = OutboxBackend(tmp_path, MAIL, writers=2)
    maker = out.maker

    def slow_maker(b, by_email=None):
        make = maker(b, by_email)

        def slow(a):
            time.sleep(0.01)
            return make(a)

        return slow

    monkeypatch.setattr(out, "maker", slow_maker)
    results = []
    sending = threading.Thread(target=lambda: results.append(out.send_batch(batch(20)).state))
    sending.start()
    time.sleep(0.05)  # well into the batch (20 files at 10 ms each)
    out.close()
    assert results == ["sent"]  # close returned after the batch, not during it
    assert len(list((tmp_path / MAIL.campaign_id).iterdir())) == 20
    sending.join()
    assert writer_threads() - before == set()


def test_each_file_has_its_own_message_id_naming_the_send_and_the_reader(tmp_path):
    """Drawn once per batch, the time and random part are shared; the send id and the
    ledger id make each Message-ID unique (and a re-sent batch has a new send id)."""
    out = OutboxBackend(tmp_path, MAIL)
    out.send_batch(batch(10))
    out.send_batch(replace(batch(10), send_id="s2"))  # the same readers again, re-sent
    ids = []
    for f in sorted((tmp_path / MAIL.campaign_id).iterdir()):
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        ids.append(msg["Message-ID"])
        assert msg["Message-ID"].endswith(f".s2.{int(f.stem)}@{MAIL.sender_email.split('@')[1]}>")
    assert len(set(ids)) == 10


@pytest.mark.parametrize("builder", ["fast", "email"])
def test_both_builders_write_7bit_clean_quoted_printable_for_short_non_ascii_lines(
    tmp_path, builder
):
    """A text part whose lines all fit (here one short line with a curly apostrophe) was
    written raw 8bit by the email package and quoted-printable by the fast path."""
    content = replace(batch(1).content, text="We\u2019ve dates, -eqt_first_name-: -eqt_link_0-")
    out = OutboxBackend(tmp_path, MAIL, builder=builder)
    out.send_batch(replace(batch(1), content=content))
    raw = (tmp_path / MAIL.campaign_id / "000001.eml").read_bytes()
    assert raw.isascii()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = msg.get_body(("plain",))
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content().startswith("We\u2019ve dates, P&1")
