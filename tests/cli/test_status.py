"""`equip-mailer status` and `cancel` end to end: what a send left in the ledger of a copy
of the demo project, and a scheduled send cancelled at the fake SendGrid server."""

from __future__ import annotations

import datetime as dt
import os

from support.send_project import CID, ledger_states, run, schedule, spec

from equip_mailer.send.ledger import Ledger
from equip_mailer.store import open_store


def test_status_before_any_send_and_cancel_with_the_outbox(project):
    assert "has not been sent yet" in run("status", spec(project)).output
    assert "has not been sent yet" in run("status", spec(project), "--check-sendgrid").output
    out = run("cancel", spec(project), "--yes")
    assert out.exit_code == 0 and "Nothing to cancel" in out.output
    assert "has not been sent yet" in out.output
    # Found in the audit: each of these left an empty database file behind, which later
    # commands (and the manager) would take for the campaign's store.
    assert not list(project.glob("equip.db*"))
    run("send", spec(project), "--allow-past", "--yes", "--limit", "3")
    out = run("cancel", spec(project), "--yes")
    assert out.exit_code == 0 and "Nothing to cancel" in out.output


def test_status_while_a_send_runs_says_so_instead_of_advising_another_send(project):
    """Found looking on while a long send ran: status advised 'equip-mailer send' to send
    the pending ones, which the running send's lock would only refuse."""
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "5").exit_code == 0
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    running = Ledger(engine, CID)
    with running.lock():  # this test's process stands for a send in progress
        during = run("status", spec(project))
    assert during.exit_code == 0, during.output
    said = " ".join(during.output.split())
    assert f"A send of this campaign is running now (process {os.getpid()} on" in said
    assert "To send the pending" not in said
    after = run("status", spec(project))
    assert "To send the pending" in after.output and "running now" not in after.output
    engine.dispose()


def test_cancel_while_a_send_runs_says_how_to_stop_it(project):
    """Found in the audit: cancel during a send that goes straight away said only that such
    mail 'cannot be recalled', leaving the manager with no way to stop the rest of it."""
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "5").exit_code == 0
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with Ledger(engine, CID).lock():  # this test's process stands for a send in progress
        during = run("cancel", spec(project), "--yes")
    engine.dispose()
    assert during.exit_code == 0, during.output
    said = " ".join(during.output.split())
    assert f"A send of this campaign is running now (process {os.getpid()} on" in said
    assert "press Ctrl+C in the window where it runs" in said
    assert f"`equip-mailer send {spec(project)} --allow-past` later sends the rest" in said
    assert "cannot be recalled" in said  # what went already is gone
    assert ledger_states(project) == {"sent": 5, "pending": ledger_states(project)["pending"]}


def test_status_after_a_killed_send_turns_its_batches_in_flight_uncertain(project):
    """Found in the audit: after a send was killed, status counted "in flight 2" with no
    send running and no advice, and --check-sendgrid did not ask about them (only
    uncertain batches are asked about), until the next send recovered them."""
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "3").exit_code == 0
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    dead = Ledger(engine, CID)  # a run that claimed a batch and was killed before recording
    [row, row2] = dead.next_rows("getting-started", 2)
    dead.claim("getting-started", [row.id, row2.id], "outbox")
    engine.dispose()
    shown = run("status", spec(project))
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert "2 recipients in 1 batch(es) were in flight when a send stopped" in said
    assert "in flight 2" not in said and "uncertain 2 in 1 batch(es)" in said
    assert f"equip-mailer status {spec(project)} --check-sendgrid" in said
    assert ledger_states(project)["uncertain"] == 2


def test_help_shows_examples():
    for command in ("status", "cancel"):
        text = run(command, "--help").output
        assert "Example:" in text and f"equip-mailer {command} campaigns/" in text


# --- scheduled sends through SendGrid (the fake server, the real client) ---------------


def test_scheduled_send_then_cancel(project, sendgrid):
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).replace(microsecond=0)
    schedule(project, when)
    dry = run("send", spec(project), "--allow-past", "--dry-run")
    assert dry.exit_code == 0 and "nothing was sent" in dry.output and sendgrid.requests == 0
    assert f"would schedule them with SendGrid to go at {when:%Y-%m-%d %H:%M} UTC" in dry.output
    result = run("send", spec(project), "--allow-past", "--yes", "--limit", "10")
    assert result.exit_code == 0, result.output
    # Handed to SendGrid for later, not sent: the manager is told when, and how to stop it.
    said = " ".join(result.output.split())
    assert f"Scheduled 10 in 1 batch(es) with SendGrid to go at {when:%Y-%m-%d %H:%M} UTC" in said
    assert f"`equip-mailer cancel {spec(project)}` stops them" in said
    assert "Sent 10" not in said
    body = sendgrid.bodies[-1]
    assert body["send_at"] == int(when.timestamp()) and body["batch_id"] in sendgrid.batch_ids
    assert "Scheduled with SendGrid" in run("status", spec(project)).output
    out = run("cancel", spec(project), "--yes")
    assert out.exit_code == 0, out.output
    assert sendgrid.scheduled == {body["batch_id"]: "cancel"}
    assert ledger_states(project)["cancelled"] > 0
    again = run("send", spec(project), "--allow-past", "--yes")
    assert again.exit_code == 1 and "was cancelled" in again.output
    # A dry run says the same, not "everyone on the lists already has this campaign".
    dry = run("send", spec(project), "--allow-past", "--dry-run")
    assert dry.exit_code == 1 and "was cancelled" in dry.output
    assert "already has this campaign" not in dry.output


def test_cancel_within_ten_minutes_of_send_at_is_refused_plainly(project, sendgrid):
    schedule(project, dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=8))
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "10").exit_code == 0
    late = run("cancel", spec(project), "--yes")
    assert late.exit_code == 1 and "only until 10 minutes before" in late.output
    assert sendgrid.scheduled == {}


# --- from another folder (found in the walkthrough) ----------------------------------------


def test_check_sendgrid_of_an_outbox_send_reads_the_projects_outbox_from_any_folder(
    project, tmp_path_factory, monkeypatch
):
    """The outbox's files prove what a dead run wrote; --check-sendgrid used to look for
    them in ./outbox of the current folder, so from elsewhere nothing was ever settled."""

    from equip_mailer.send.ledger import Ledger
    from equip_mailer.store.engine import open_store
    from equip_mailer.store.schema import batches, ledger

    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "3").exit_code == 0
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.begin() as conn:  # as if the run died with its request in flight
        conn.execute(ledger.update().where(ledger.c.state == "sent").values(state="in_flight"))
        conn.execute(batches.update().values(state="in_flight"))
    Ledger(engine, CID).recover()
    engine.dispose()
    assert ledger_states(project)["uncertain"] == 3

    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    out = run("status", spec(project), "--check-sendgrid")
    assert out.exit_code == 0, out.output
    assert "3 recipient(s) proved accepted" in out.output
    assert ledger_states(project).get("uncertain", 0) == 0


def test_a_campaign_id_given_instead_of_its_file_is_named_with_the_file_it_meant(project):
    out = run("status", CID)
    assert out.exit_code == 1
    assert f"Error: {CID}: no such campaign file" in out.output
    assert f"Did you mean campaigns/{CID}.yaml?" in out.output
    assert "Project " not in out.output  # no project or store guessed from a missing path


def test_a_spec_path_from_the_wrong_folder_names_the_file_not_a_database(
    project, tmp_path_factory, monkeypatch
):
    """From another folder, `check campaigns/x.yaml` said the SQLite database's folder
    did not exist (the missing spec's folder was taken for the project)."""
    monkeypatch.delenv("EQUIP_DATABASE_URL")  # the default store, in the project
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    for command in ("check", "status", "preview", "send"):
        out = run(command, f"campaigns/{CID}.yaml", "--allow-past")
        assert out.exit_code == 1, command
        assert f"Error: campaigns/{CID}.yaml: no such campaign file" in out.output, command
        assert "database" not in out.output, command
        assert f"as seen from this folder ({elsewhere})" in out.output, command
    assert list(elsewhere.iterdir()) == []
