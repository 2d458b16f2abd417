"""A real send through SendGrid is refused before any request when its readers' links could
not work: a public URL on loopback, plain http or without a scheme, no sender domain, a link
secret other than the store's, a live service that cannot answer (issue 10, items 2-3).
The fake SendGrid server counts requests: refusals must leave it at zero."""

from __future__ import annotations

import pytest
from support.link_secrets import OTHER_LINK_SECRET
from support.send_project import ledger_states, outbox_files, run, spec


@pytest.mark.parametrize(
    ("public_url", "said"),
    [
        ("http://127.0.0.1:8025", "is not an https:// address"),
        ("http://equip.example.org", "is not an https:// address"),
        ("https://localhost:8443", "localhost is this machine or a local network name"),
        ("https://10.1.2.3", "10.1.2.3 is a private address"),
        ("https://equip", "equip is not a full domain name"),
        ("equip.example.org", "'equip.example.org' is not an absolute URL"),
    ],
)
def test_a_real_send_with_links_readers_cannot_follow_is_refused_before_any_request(
    project, sendgrid, monkeypatch, public_url, said
):
    monkeypatch.setenv("EQUIP_PUBLIC_URL", public_url)
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1
    assert said in result.output and "Traceback" not in result.output
    assert sendgrid.requests == 0 and not ledger_states(project)


def test_a_real_send_without_a_sender_domain_is_refused(project, sendgrid, monkeypatch):
    monkeypatch.delenv("EQUIP_SENDER_DOMAIN")
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1 and "no sender domain is named" in result.output
    assert sendgrid.requests == 0
    monkeypatch.setenv("EQUIP_SENDER_DOMAIN", "nhs.example")
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1
    assert "the From address equip@example.org is not in the sender domain nhs.example" in (
        result.output
    )
    assert sendgrid.requests == 0


def test_rehearsals_are_not_held_to_the_real_send_rules(project, sendgrid, monkeypatch):
    monkeypatch.setenv("EQUIP_PUBLIC_URL", "http://127.0.0.1:8025")
    dry = run("send", spec(project), "--allow-past", "--dry-run")
    assert dry.exit_code == 0, dry.output
    test = run("send", spec(project), "--allow-past", "--test-to", "me@example.org")
    assert test.exit_code == 0, test.output
    outbox = run(
        "send", spec(project), "--allow-past", "--yes", "--backend", "outbox", "--limit", "3"
    )
    assert outbox.exit_code == 0, outbox.output
    assert len(outbox_files(project)) == 3


def test_against_a_loopback_stand_in_the_live_check_is_skipped_with_a_warning(project, sendgrid):
    result = run("send", spec(project), "--allow-past", "--yes", "--limit", "5")
    assert result.exit_code == 0, result.output
    assert (
        "Warning: the live service at https://equip.example.org was not checked "
        f"(SENDGRID_API_HOST ({sendgrid.url}) is a loopback stand-in)" in result.stderr
    )
    assert ledger_states(project) == {"sent": 5, "pending": ledger_states(project)["pending"]}


def test_against_real_sendgrid_the_live_service_is_asked_first(project, sendgrid, monkeypatch):
    """Whatever SENDGRID_API_HOST is, the public URL's service is asked before any request:
    here nothing answers there, so nothing is sent (SendGrid is not even reachable)."""
    monkeypatch.setenv("SENDGRID_API_HOST", "https://api.sendgrid.invalid")
    monkeypatch.setenv("EQUIP_PUBLIC_URL", "https://equip.invalid")
    result = run("send", spec(project), "--allow-past", "--yes")
    assert result.exit_code == 1
    assert "cannot reach the tracking service at https://equip.invalid/healthz" in result.output
    assert "--no-service-check skips this check" in result.output
    assert not ledger_states(project).get("sent")
    skipped = run("send", spec(project), "--allow-past", "--dry-run", "--no-service-check")
    assert skipped.exit_code == 0, skipped.output


def test_the_first_send_records_the_secret_and_another_secret_is_refused(project, monkeypatch):
    first = run("send", spec(project), "--allow-past", "--yes", "--limit", "2")
    assert first.exit_code == 0, first.output
    monkeypatch.setenv("EQUIP_LINK_SECRET", OTHER_LINK_SECRET)
    for command in (
        ["send", spec(project), "--allow-past", "--yes"],
        ["send", spec(project), "--allow-past", "--dry-run"],
        ["check", spec(project), "--allow-past"],
    ):
        refused = run(*command)
        assert refused.exit_code == 1, refused.output
        assert "Error: the link secret from EQUIP_LINK_SECRET (fingerprint " in refused.output
        assert "is not the one this store's mail was signed with" in refused.output
        assert OTHER_LINK_SECRET not in refused.output
    assert ledger_states(project)["sent"] == 2 and len(outbox_files(project)) == 2
