"""`equip-mailer send` end to end: a copy of the demo project in tmp_path, a real SQLite
file, the outbox on disk, and the fake SendGrid server with the real client."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa
from support.send_project import (
    CID,
    KEY,
    ledger_states,
    outbox_files,
    run,
    schedule,
    spec,
)

from equip_mailer import store
from equip_mailer.store import add_suppression, open_store


def add_row(project: Path, line: str) -> None:
    path = project / "lists" / "practice-staff.csv"
    text = path.read_text(encoding="utf-8-sig")
    path.write_text(text.rstrip("\n") + "\n" + line + "\n", encoding="utf-8")


def test_outbox_send_writes_one_eml_per_recipient_then_reruns_send_nothing(project):
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 0, result.output
    files = outbox_files(project)
    sent = ledger_states(project)
    assert sent == {"sent": len(files)} and len(files) > 300
    assert re.search(rf"Sent {len(files)} in \d+ batch", result.output)
    addresses = []
    for f in files:
        msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        assert re.fullmatch(
            r"<https://equip\.example\.org/u/[A-Za-z0-9_-]+>", msg["List-Unsubscribe"]
        )
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        addresses.append(msg["To"].addresses[0].addr_spec.lower())
        assert "-eq_" not in msg.get_body(("html",)).get_content()
        assert "-eqt_" not in msg.get_body(("plain",)).get_content()
    assert len(addresses) == len(set(addresses))
    # the store's suppressions file rows are not there
    assert "laila.evans4@nhs.example" not in addresses

    again = run("send", spec(project), "--allow-past", "--yes")
    assert again.exit_code == 0 and "Nothing to send" in again.output
    assert len(outbox_files(project)) == len(files)

    status = run("status", spec(project))
    assert status.exit_code == 0 and "sent" in status.output and f"{len(files)}" in status.output


def test_a_rerun_after_everyone_has_it_says_so_plainly(project):
    """`make demo` run twice: the second run said only "Nothing to send in this run", which
    leaves a manager wondering whether it failed; it says everyone already has the campaign
    and nobody got it twice, in the dry run's words."""
    assert run("send", spec(project), "--allow-past", "--yes").exit_code == 0
    again = run("send", spec(project), "--allow-past", "--yes")
    assert again.exit_code == 0, again.output
    assert "Nothing to send: everyone on the lists already has this campaign" in again.output
    assert "nobody was mailed again" in again.output


def test_a_send_that_stops_on_an_error_still_stops_the_outbox_writers(project, monkeypatch):
    """`send` stops the outbox's file writers when it ends, also on an error: the error's
    traceback, which an in-process caller (here click's runner) keeps, would otherwise keep
    the backend and its idle threads alive with it. (One writer, the default, starts none:
    two here.)"""
    monkeypatch.setenv("EQUIP_OUTBOX_WRITERS", "2")
    (project / "outbox" / CID / "000005.eml").mkdir(parents=True)  # a reader's file can't go
    before = {t for t in threading.enumerate() if t.name.startswith("equip-outbox")}
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1 and "sending stopped" in result.output
    assert len(outbox_files(project)) > 10  # the batch was shared among writers, then failed
    after = {t for t in threading.enumerate() if t.name.startswith("equip-outbox")}
    assert after - before == set()


def test_added_recipient_gets_it_next_run_and_suppressed_one_never(project):
    assert run("send", spec(project), "--allow-past", "--yes").exit_code == 0
    before = len(outbox_files(project))
    add_row(project, "new.person@nhs.example,New,Person,Tower View Surgery,GP,basics")
    add_row(project, "blocked.person@nhs.example,Blocked,Person,Tower View Surgery,GP,none")
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.begin() as conn:
        add_suppression(conn, "Blocked.Person@nhs.example", "unsubscribe")
    engine.dispose()
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 0, result.output
    assert "Sent 1 in 1 batch" in result.output
    files = outbox_files(project)
    assert len(files) == before + 1
    msg = email.message_from_bytes(files[-1].read_bytes(), policy=email.policy.default)
    assert msg["To"].addresses[0].addr_spec == "new.person@nhs.example"
    assert msg["X-Equip-Segment"] == "ready-for-action"
    assert "blocked" not in " ".join(f.read_text("utf-8", "replace") for f in files[-3:]).lower()


def test_an_address_added_to_the_suppression_file_shows_as_suppressed_not_cancelled(project):
    """Found in the audit: someone added to the spec's suppression file after a first run
    was counted "cancelled or off the lists", as if they had left the list, so the manager
    could not see that the suppression file was why they were left out."""
    add_row(project, "late.optout@nhs.example,Late,Optout,Tower View Surgery,GP,none")
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "5").exit_code == 0
    suppressions = project / "lists" / "suppressions.csv"
    kept = suppressions.read_text(encoding="utf-8")
    suppressions.write_text(
        kept + "Late.Optout@nhs.example,unsubscribed by phone,2019-04-02\n", encoding="utf-8"
    )
    result = run("send", spec(project), "--allow-past", "--yes", "--limit", "1")
    assert result.exit_code == 0, result.output
    assert "newly suppressed: 1" in result.output
    assert ledger_states(project).get("cancelled") is None
    status = run("status", spec(project))
    assert "│ suppressed │          1 │" in status.output
    assert "suppressed 1." in " ".join(status.output.split())
    assert "cancelled" not in status.output
    # a name put in the file by mistake and taken out again is mailed after all
    suppressions.write_text(kept, encoding="utf-8")
    assert run("send", spec(project), "--allow-past", "--yes").exit_code == 0
    assert ledger_states(project) == {"sent": len(outbox_files(project))}
    assert any(b"late.optout@nhs.example" in f.read_bytes() for f in outbox_files(project))


def test_a_run_cut_short_shows_a_next_command_that_runs_as_shown(project):
    """The demo's sessions are in 2019: the command printed to send the rest must carry
    --allow-past, or running it exactly as shown is refused for past dates."""
    first = run("send", spec(project), "--allow-past", "--yes", "--limit", "5")
    assert first.exit_code == 0, first.output
    [shown] = [line.strip() for line in first.output.splitlines() if line.startswith("  equip")]
    assert shown == f"equip-mailer send {spec(project)} --allow-past"
    rest = run(*shown.split()[1:], "--yes")
    assert rest.exit_code == 0, rest.output
    assert ledger_states(project) == {"sent": len(outbox_files(project))}


def test_an_id_changed_after_a_send_is_pointed_out_before_everyone_gets_it_again(project):
    """The manager corrects the campaign's id after sending: the ledger is per id, so the
    next run would mail everyone again, and nothing said so."""
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "5").exit_code == 0
    path = Path(spec(project))
    path.write_text(
        path.read_text(encoding="utf-8").replace(f"id: {CID}", f"id: {CID}-wave3", 1),
        encoding="utf-8",
    )
    today = dt.datetime.now(dt.UTC)
    warning = (
        f"Warning: campaigns/{CID}.yaml was sent before as campaign '{CID}' (5 recipients, "
        f"last on {today:%Y-%m-%d}); under its id now, '{CID}-wave3', everyone on "
        f"the lists gets it again. If you only corrected the id, put '{CID}' back."
    )
    dry = run("send", spec(project), "--allow-past", "--dry-run")
    assert dry.exit_code == 0 and warning in " ".join(dry.output.split())
    sent = run("send", spec(project), "--allow-past", "--yes", "--limit", "1")
    assert warning in " ".join(sent.output.split())
    # once the new id has gone out, its later runs are that campaign's own: no warning
    assert "Warning" not in run("send", spec(project), "--allow-past", "--dry-run").output


def test_dry_run_writes_nothing(project):
    result = run("send", spec(project), "--allow-past", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was sent" in result.output
    # in the manager's words for the outbox: files, not SendGrid's personalizations and JSON
    said = " ".join(result.output.split())
    assert f"A real run would write 334 email files (.eml) into {project / 'outbox' / CID}," in said
    assert "personalization" not in said and "KiB JSON" not in said
    first = said.split("the first, to ", 1)[1].split(",", 1)[0]
    assert "@" in first and "nhs.example" not in first  # masked
    assert outbox_files(project) == []
    # Found in the audit: a dry run before any send left an empty database file behind.
    assert not list(project.glob("equip.db*"))
    run("people", "level", "someone@nhs.example", "basics", "--reason", "makes the store")
    result = run("send", spec(project), "--allow-past", "--dry-run")
    assert result.exit_code == 0, result.output
    assert ledger_states(project) == {}
    # Found in the audit: the campaign itself was registered, so the team pages listed an
    # unsent campaign as sent on the day of the dry run.
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.select(store.campaigns.c.id)).all() == []
    engine.dispose()


def test_test_to_sends_one_copy_per_segment_outside_the_ledger(project):
    result = run("send", spec(project), "--allow-past", "--test-to", "me@example.org")
    assert result.exit_code == 0, result.output
    assert "m***@e***.org" in result.output and "me@example.org" not in result.output
    tests = sorted((project / "outbox" / CID / "test").glob("*.eml"))
    assert [t.stem for t in tests] == sorted(
        ["getting-started", "ready-for-action", "project-leads"]
    )
    msg = email.message_from_bytes(tests[0].read_bytes(), policy=email.policy.default)
    assert msg["Subject"].startswith("[TEST] ")
    assert msg["X-Equip-Recipient"] == "0"
    assert outbox_files(project) == [] and ledger_states(project) == {}


def test_a_test_send_tells_nobody_signed_up_of_an_edit(project):
    """Found in review: a test send copied the edited courses into the store, so the people
    signed up for a date whose time the manager was trying out were mailed "Changed" by a
    rehearsal. A test send now writes only courses the store does not know (its links must
    lead somewhere); the real send tells them."""
    from support.signup_data import NOW

    from equip_mailer.signup import registration as reg
    from equip_mailer.signup.catalogue import find_course

    path = Path(spec(project))
    path.write_text(path.read_text("utf-8").replace("2019-09-10", "2099-09-10"), "utf-8")
    sent = run("send", spec(project), "--allow-past", "--yes", "--backend", "outbox")
    assert sent.exit_code == 0, sent.output
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with store.immediate(engine) as conn:
        basics = find_course(conn, CID, "equip-basics")
        later = next(x for x in basics.sessions if x.key == "2099-09-10")
        zoe = reg.Applicant(email="zoe@nhs.example", name="Zoe Quill")
        reg.register(conn, basics.id, zoe, later.id, NOW)
    engine.dispose()
    path.write_text(
        path.read_text("utf-8").replace(
            '{date: 2099-09-10, start: "13:00"', '{date: 2099-09-10, start: "14:00"'
        ),
        "utf-8",
    )
    notices = project / "outbox" / "notices"

    tried = run("send", spec(project), "--allow-past", "--test-to", "me@example.org")

    assert tried.exit_code == 0, tried.output
    assert not list(notices.glob("*-signup-changed.eml"))
    real = run("send", spec(project), "--allow-past", "--yes", "--backend", "outbox")
    assert real.exit_code == 0, real.output
    assert "1 person signed up for dates whose time or venue changed was emailed" in " ".join(
        real.output.split()
    )
    assert len(list(notices.glob("*-signup-changed.eml"))) == 1


def test_bad_test_address_is_a_plain_error(project):
    result = run("send", spec(project), "--allow-past", "--test-to", "not-an-address")
    assert result.exit_code == 1 and "is not a valid address" in result.output
    assert "Traceback" not in result.output


def run_on_terminal(*args, answer: str) -> str:
    """Run the installed command with a pseudo-terminal as stdin, as a person would."""
    master, slave = os.openpty()
    cli = Path(sys.executable).with_name("equip-mailer")
    proc = subprocess.Popen(
        [str(cli), *map(str, args)],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(slave)
    os.write(master, answer.encode())
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return out


def test_without_yes_it_asks_and_no_means_nothing_sent(project):
    out = run_on_terminal("send", spec(project), "--allow-past", answer="n\n")
    assert "Send to" in out and "Nothing sent." in out
    assert outbox_files(project) == []
    out = run_on_terminal("send", spec(project), "--allow-past", "--limit", "5", answer="y\n")
    assert "Sent 5 in 1 batch" in out, out
    assert len(outbox_files(project)) == 5


def test_without_yes_and_no_terminal_it_refuses(project):
    result = run("send", spec(project), "--allow-past")
    assert result.exit_code == 1
    assert "no terminal to ask on" in result.output and "--yes" in result.output
    assert outbox_files(project) == []


def test_help_shows_examples():
    text = run("send", "--help").output
    assert "Example:" in text and "equip-mailer send campaigns/" in text


# --- through SendGrid (the fake server, the real client) -------------------------------------


def test_key_set_means_sendgrid_each_recipient_once(project, sendgrid):
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 0, result.output
    assert "through SendGrid" in result.output
    counts = sendgrid.emails()
    assert set(counts.values()) == {1}
    states = ledger_states(project)
    assert states == {"sent": len(counts)}
    assert outbox_files(project) == []
    for body in sendgrid.bodies:
        segments = {p["custom_args"]["segment"] for p in body["personalizations"]}
        assert len(segments) == 1  # one segment per request
        assert "@" not in str([p["custom_args"] for p in body["personalizations"]])
        assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
        assert body["categories"] == [CID, "equip-newsletter"]
    # a re-run sends nothing
    again = run("send", spec(project), "--allow-past", "--yes")
    assert "Nothing to send" in again.output and sendgrid.emails() == counts
    # the key never shows up in output
    assert KEY not in result.output + again.output


def test_small_batches_and_test_to_through_sendgrid(project, sendgrid, monkeypatch):
    monkeypatch.setenv("EQUIP_BATCH_SIZE", "40")
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 0, result.output
    assert max(len(b["personalizations"]) for b in sendgrid.bodies) == 40
    n = len(sendgrid.bodies)
    result = run("send", spec(project), "--allow-past", "--test-to", "me@example.org")
    assert result.exit_code == 0, result.output
    tests = sendgrid.bodies[n:]
    assert len(tests) == 3 and all(b["subject"].startswith("[TEST] ") for b in tests)
    assert {b["personalizations"][0]["custom_args"]["recipient"] for b in tests} == {"0"}


def test_wrong_key_stops_with_sendgrids_message(project, sendgrid, monkeypatch):
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1
    assert (
        "rejected the API key" in result.output
        and "authorization grant is invalid" in result.output
    )
    assert "Traceback" not in result.output and "SG.wrong" not in result.output
    # Found in the audit: the suppression lists' 401 was a note, then two batches were
    # posted and failed. The refused key stops the send before any batch is claimed.
    assert "rejected the API key (HTTP 401) when asked for its suppression lists" in " ".join(
        result.output.split()
    )
    assert sendgrid.bodies == [] and "failed" not in ledger_states(project)


def test_a_scheduled_campaign_keeps_one_schedule(project, sendgrid):
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    schedule(project, now + dt.timedelta(hours=5))
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "10").exit_code == 0
    schedule(project, now + dt.timedelta(hours=6))
    moved = run("send", spec(project), "--allow-past", "--yes")
    assert moved.exit_code == 1 and "is already scheduled for" in moved.output
    assert sendgrid.requests == 1 and ledger_states(project)["sent"] == 10


def test_send_at_too_far_ahead_is_a_clear_error(project, sendgrid):
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=80)).replace(microsecond=0)
    schedule(project, when)
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1 and "more than 72 hours ahead" in result.output
    assert sendgrid.requests == 0


def test_no_address_in_output_custom_args_urls_or_headers(project, sendgrid, monkeypatch):
    """Privacy: what leaves besides the To field carries ids, never an address."""
    monkeypatch.setenv("EQUIP_BATCH_SIZE", "100")
    outputs = [
        run("send", spec(project), "--allow-past", "--dry-run").output,
        run("send", spec(project), "--allow-past", "--yes").output,
        run("status", spec(project)).output,
        run("send", spec(project), "--allow-past", "--test-to", "me@example.org").output,
    ]
    addresses = set(sendgrid.emails())
    assert len(addresses) > 300
    text = "\n".join(outputs).lower()
    assert not [a for a in addresses if a in text]
    for body in sendgrid.bodies:
        html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
        for p in body["personalizations"]:
            assert "@" not in "".join(p["custom_args"].values())
            assert "@" not in p["headers"]["List-Unsubscribe"]
            # Each reader's mail as SendGrid makes it: their values in the shared content.
            mail = html
            for token, value in p["substitutions"].items():
                mail = mail.replace(token, value)
            urls = re.findall(r'href="(http[^"]+/[cu]/[^"]+)"', mail)
            assert urls and not any("@" in u or "%40" in u for u in urls)
