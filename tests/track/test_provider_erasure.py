"""`equip-mailer forget` also erases the person at SendGrid: the recipient erasure job is filed
and its id, never the address, goes in the audit log (the local stand-in, and SendGrid's
contract through Prism)."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.fake_sendgrid import start_server

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.track.provider_erasure import SendGridErasure

KEY = "SG.erasure-test"
VIK = "vik.fernandez1@nhs.example"
CONTRACT = os.environ.get("SENDGRID_ERASURE_CONTRACT_URL")


@pytest.fixture
def sendgrid(demo_project, monkeypatch):
    url, server = start_server(KEY)
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    yield demo_project, server
    server.stop()


def audit(project) -> list[sa.Row]:
    engine = store.open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.team_audit)).all()
    engine.dispose()
    return rows


def test_forget_files_sendgrids_erasure_job_and_logs_only_its_id(sendgrid):
    project, server = sendgrid
    result = CliRunner().invoke(main, ["forget", VIK, "--yes"])
    assert result.exit_code == 0, result.output
    assert server.erasures == [[VIK]]
    assert "SendGrid erasure job job-1 filed" in result.output
    [row] = [r for r in audit(project) if r.target_kind == "sendgrid_erasure_job"]
    assert (row.action, row.target_id) == ("sendgrid erasure filed", "job-1")
    assert VIK not in " ".join(str(v) for v in row).lower()


def test_a_refused_erasure_job_is_a_note_saying_what_to_do(sendgrid, monkeypatch):
    project, server = sendgrid
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")  # the stand-in answers 401
    result = CliRunner().invoke(main, ["forget", VIK, "--yes"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Note: SendGrid answered HTTP 401 while filing its recipient erasure job" in out
    assert "File it by hand in SendGrid" in out
    assert server.erasures == []


@pytest.mark.skipif(
    not CONTRACT,
    reason="SENDGRID_ERASURE_CONTRACT_URL is not set: run under ../shared/sendgrid/"
    "with_prism.sh (make test does) to check the erasure request against its contract",
)
def test_the_erasure_request_meets_sendgrids_contract():
    assert SendGridErasure(KEY, host=CONTRACT).erase([VIK])


def test_without_the_api_key_forget_says_sendgrid_still_holds_their_mail(sendgrid, monkeypatch):
    """Their newsletter went out through SendGrid, which keeps its own copy; forget run
    where SENDGRID_API_KEY is not set (a laptop, another user) cannot file the job, and
    must say so instead of reporting the erasure as if it were complete."""
    project, server = sendgrid
    monkeypatch.setenv("EQUIP_SENDER_DOMAIN", "example.org")
    spec = "campaigns/2019-04-equip-training.yaml"
    sent = CliRunner().invoke(main, ["send", spec, "--allow-past", "--yes"])
    assert sent.exit_code == 0, sent.output
    monkeypatch.delenv("SENDGRID_API_KEY")

    result = CliRunner().invoke(main, ["forget", VIK, "--yes"])

    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert (
        "Note: their mail went through SendGrid, which keeps its own copy of the address; "
        "SENDGRID_API_KEY is not set, so no erasure job was filed there" in out
    )
    assert "set SENDGRID_API_KEY and run forget again" in out
    assert server.erasures == []
    # someone whose mail never went through SendGrid gets no such note
    nobody = CliRunner().invoke(main, ["forget", "nobody@example.org", "--yes"])
    assert "SendGrid" not in nobody.output
