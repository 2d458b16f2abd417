"""`equip-mailer status` and `cancel` end to end: what a send left in the ledger of a copy
of the demo project, and a scheduled send cancelled at the fake SendGrid server."""

from __future__ import annotations

import datetime as dt

from support.send_project import ledger_states, run, schedule, spec


def test_status_before_any_send_and_cancel_with_the_outbox(project):
    assert "has not been sent yet" in run("status", spec(project)).output
    run("send", spec(project), "--allow-past", "--yes", "--limit", "3")
    out = run("cancel", spec(project), "--yes")
    assert out.exit_code == 0 and "Nothing to cancel" in out.output


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
    result = run("send", spec(project), "--allow-past", "--yes", "--limit", "10")
    assert result.exit_code == 0, result.output
    body = sendgrid.bodies[-1]
    assert body["send_at"] == int(when.timestamp()) and body["batch_id"] in sendgrid.batch_ids
    assert "Scheduled with SendGrid" in run("status", spec(project)).output
    out = run("cancel", spec(project), "--yes")
    assert out.exit_code == 0, out.output
    assert sendgrid.scheduled == {body["batch_id"]: "cancel"}
    assert ledger_states(project)["cancelled"] > 0
    again = run("send", spec(project), "--allow-past", "--yes")
    assert again.exit_code == 1 and "was cancelled" in again.output


def test_cancel_within_ten_minutes_of_send_at_is_refused_plainly(project, sendgrid):
    schedule(project, dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=8))
    assert run("send", spec(project), "--allow-past", "--yes", "--limit", "10").exit_code == 0
    late = run("cancel", spec(project), "--yes")
    assert late.exit_code == 1 and "only until 10 minutes before" in late.output
    assert sendgrid.scheduled == {}
