"""The send loop over the real renderer and a real store: each reader sent once across
re-runs, --limit, the error budget, a stop, and what happens to the batch in flight when
something goes wrong mid-run."""

from __future__ import annotations

import email
import threading
import time

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from support.ledger_audience import audience, store_settings

from equip_mailer.compose.audience import Recipient
from equip_mailer.errors import RenderError
from equip_mailer.send.activity import OutboxActivity, check_uncertain
from equip_mailer.send.backends.memory import MemoryBackend
from equip_mailer.send.backends.outbox import OutboxBackend
from equip_mailer.send.batch import BatchResult
from equip_mailer.send.campaign_mail import campaign_mail
from equip_mailer.send.dispatch import SendOptions, run_send
from equip_mailer.send.ledger import Ledger
from equip_mailer.send.prepare import register_campaign
from equip_mailer.store import batches, ledger, open_store


def synced(db_url: str, demo, people: dict[str, list[Recipient]]) -> tuple[Engine, Ledger]:
    """A store with the demo campaign and these readers in its ledger, ready to send."""
    eng = open_store(db_url)
    register_campaign(eng, demo)
    led = Ledger(eng, demo.id)
    led.sync(people)
    return eng, led


def test_run_send_sends_each_recipient_once_across_reruns(db_url, demo):
    eng, led = synced(db_url, demo, {**audience(5), **audience(3, "project-leads", 100)})
    mem = MemoryBackend()
    report = run_send(demo, eng, led, mem, store_settings(db_url), SendOptions(batch_size=2))
    assert (report.sent, report.batches, report.stopped) == (8, 5, None)
    assert [len(b.addressees) for b in mem.batches] == [2, 2, 1, 2, 1]
    assert {b.content.segment for b in mem.batches} == {"getting-started", "project-leads"}
    again = run_send(demo, eng, led, mem, store_settings(db_url), SendOptions(batch_size=2))
    assert again.sent == 0 and len(mem.batches) == 5
    addresses = [a.email for b in mem.batches for a in b.addressees]
    assert len(addresses) == len(set(addresses)) == 8
    values = mem.batches[0].addressees[0].values
    assert values["-eqt_first_name-"] == "P1"
    assert all("@" not in v for k, v in values.items() if "link" in k or "unsub" in k)
    eng.dispose()


def test_limit_sends_only_that_many(db_url, demo):
    eng, led = synced(db_url, demo, audience(10))
    report = run_send(
        demo, eng, led, MemoryBackend(), store_settings(db_url), SendOptions(limit=4, batch_size=3)
    )
    assert report.sent == 4 and led.counts() == {"sent": 4, "pending": 6}
    eng.dispose()


class Flaky:
    """A backend that answers every batch the same way (the interface's contract, nothing else)."""

    name = "flaky"

    def __init__(self, result: BatchResult):
        self.result, self.calls = result, 0

    def send_batch(self, batch):
        self.calls += 1
        return self.result


def test_error_budget_pauses_with_a_resume_hint(db_url, demo):
    eng, led = synced(db_url, demo, audience(10))
    flaky = Flaky(BatchResult("uncertain", error="no answer (timed out)"))
    report = run_send(
        demo, eng, led, flaky, store_settings(db_url), SendOptions(batch_size=2, max_bad_batches=2)
    )
    assert flaky.calls == 2 and report.uncertain == 4
    assert "paused after 2 batches" in report.stopped
    assert "equip-mailer send" in report.hint and "--retry-uncertain" in report.hint
    assert led.counts() == {"uncertain": 4, "pending": 6}
    eng.dispose()


def test_a_stop_ends_the_run_at_once(db_url, demo):
    eng, led = synced(db_url, demo, audience(10))
    flaky = Flaky(BatchResult("failed", status=401, stop=True, error="bad key", hint="fix key"))
    report = run_send(demo, eng, led, flaky, store_settings(db_url), SendOptions(batch_size=2))
    assert flaky.calls == 1 and report.stopped == "bad key" and report.hint == "fix key"
    assert led.counts() == {"failed": 2, "pending": 8}
    eng.dispose()


class Exploding:
    """A backend whose second request raises something unexpected (a bug, not an answer)."""

    name = "exploding"

    def __init__(self):
        self.calls = 0

    def send_batch(self, batch):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("boom")
        return BatchResult("sent")


def test_an_unexpected_error_mid_request_leaves_that_batch_uncertain(db_url, demo):
    eng, led = synced(db_url, demo, audience(10))
    with pytest.raises(RuntimeError):
        run_send(demo, eng, led, Exploding(), store_settings(db_url), SendOptions(batch_size=3))
    assert led.counts() == {"sent": 3, "uncertain": 3, "pending": 4}
    eng.dispose()


class Slow:
    """A backend whose answer (202) takes a while: the next batch is built meanwhile."""

    name = "slow"

    def __init__(self, seconds: float = 0.4):
        self.seconds, self.batches = seconds, []

    def send_batch(self, batch):
        time.sleep(self.seconds)
        self.batches.append(batch)
        return BatchResult("sent", status=202)


def test_an_error_building_the_next_batch_still_records_the_answer_in_flight(db_url, demo):
    people = audience(6)["getting-started"]
    # the 4th reader's practice is too long for SendGrid: building batch 2 fails while
    # batch 1 is still being sent
    people[3] = Recipient(
        email=people[3].email,
        first_name="P4",
        last_name="X",
        practice="x" * 12_000,
        role="GP",
        qi_level="none",
        source="t.csv:4",
    )
    eng, led = synced(db_url, demo, {"getting-started": people})
    slow = Slow()
    with pytest.raises(RenderError, match="SendGrid allows"):
        run_send(demo, eng, led, slow, store_settings(db_url), SendOptions(batch_size=3))
    # batch 1 was accepted: recorded as sent (not uncertain), and nothing else was sent
    assert led.counts() == {"sent": 3, "pending": 3}
    assert [len(b.addressees) for b in slow.batches] == [3]
    eng.dispose()


@pytest.mark.parametrize(("in_flight", "most"), [(None, 2), (1, 1)])
def test_the_outbox_writes_two_batches_at_once_and_each_reader_once(
    db_url, demo, tmp_path, in_flight, most
):
    """The outbox takes two batches at once (its writers go on while the loop records one
    batch and claims the next); EQUIP_IN_FLIGHT=1 goes back to one. Either way every reader
    gets one whole file and the ledger says sent."""
    people = audience(40)
    eng, led = synced(db_url, demo, people)
    out = OutboxBackend(tmp_path, campaign_mail(demo))
    write = out.send_batch
    busy, seen, lock = [0], [0], threading.Lock()

    def send_batch(batch):  # the real writing, with how many batches overlap counted
        with lock:
            busy[0] += 1
            seen[0] = max(seen[0], busy[0])
        try:
            time.sleep(0.05)  # long enough for the loop to claim and post the next
            return write(batch)
        finally:
            with lock:
                busy[0] -= 1

    out.send_batch = send_batch  # type: ignore[method-assign]
    with out:
        report = run_send(
            demo,
            eng,
            led,
            out,
            store_settings(db_url),
            SendOptions(batch_size=5, in_flight=in_flight),
        )
    assert (report.sent, report.batches, report.stopped) == (40, 8, None)
    assert led.counts() == {"sent": 40} and seen[0] == most
    files = list((tmp_path / demo.id).glob("*.eml"))
    readers = [email.message_from_bytes(f.read_bytes())["To"] for f in files]
    assert len(files) == 40
    assert {r.split("<")[-1].rstrip(">") for r in readers} == {
        p.email for p in people["getting-started"]
    }
    eng.dispose()


def test_a_file_cut_short_by_a_crash_is_not_proof_and_the_retry_writes_it_whole(
    db_url, demo, tmp_path
):
    """A crash while a batch's files were written leaves the batch uncertain and may leave a
    file cut short under its own name. Asking the outbox settles only the whole files; the
    retry writes the cut one again, whole, and touches nobody else's."""
    people = audience(6)
    eng, led = synced(db_url, demo, people)
    with OutboxBackend(tmp_path, campaign_mail(demo)) as out:
        run_send(demo, eng, led, out, store_settings(db_url), SendOptions(batch_size=3))
    folder = tmp_path / demo.id
    # The crash: the second batch was still in flight, one of its files half written.
    with eng.begin() as conn:
        last = conn.execute(sa.select(sa.func.max(batches.c.id))).scalar_one()
        conn.execute(batches.update().where(batches.c.id == last).values(state="in_flight"))
        conn.execute(ledger.update().where(ledger.c.batch_id == last).values(state="in_flight"))
        ids = sorted(
            conn.execute(sa.select(ledger.c.id).where(ledger.c.batch_id == last)).scalars()
        )
    cut = folder / f"{ids[0]:06d}.eml"
    whole = cut.read_bytes()
    cut.write_bytes(whole[: len(whole) // 2])
    kept = {i: (folder / f"{i:06d}.eml").read_bytes() for i in ids[1:]}
    assert led.recover() == 1
    check = check_uncertain(led, {"outbox": OutboxActivity(folder)})
    assert dict(check.settled) == {"outbox": len(ids) - 1}
    assert led.counts() == {"sent": 5, "uncertain": 1}
    with OutboxBackend(tmp_path, campaign_mail(demo)) as out:
        again = run_send(
            demo, eng, led, out, store_settings(db_url), SendOptions(retry_uncertain=True)
        )
    assert again.sent == 1 and led.counts() == {"sent": 6}
    rewritten = email.message_from_bytes(cut.read_bytes())
    assert rewritten["To"] == email.message_from_bytes(whole)["To"]
    assert [p.get_content_type() for p in rewritten.walk()][1:] == ["text/plain", "text/html"]
    assert all((folder / f"{i:06d}.eml").read_bytes() == kept[i] for i in kept)
    assert len(list(folder.glob("*.eml"))) == 6 and not list(folder.glob(".*"))
    eng.dispose()
