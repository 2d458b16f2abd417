"""Issue 13 end to end: a demo reader signs up from their email, attends (the trainer's
roster imported), and next quarter's campaign (tests/people/data/2019-10-equip-training.yaml,
the same lists) puts them in the next segment and shows them EQUIP in Action; then
``forget`` leaves no trace of them and their suppression still holds."""

from __future__ import annotations

import csv
import dataclasses
import email
import email.policy
import os
import re
import shutil
from pathlib import Path

import httpx
from click.testing import CliRunner
from support.service import bound_socket, running_app
from support.signup_data import NOW

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.config import Settings
from equip_mailer.people.forget import _mentions
from equip_mailer.track.app import create_app

APRIL = "campaigns/2019-04-equip-training.yaml"
OCTOBER = "campaigns/2019-10-equip-training.yaml"
NEXT_QUARTER = Path(__file__).parent / "data" / "2019-10-equip-training.yaml"
VIK = "vik.fernandez1@nhs.example"  # the lists say QI level none
CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


def run(*args):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def newsletter_to(folder: Path, address: str) -> email.message.EmailMessage:
    for path in sorted(folder.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if mail["To"].addresses[0].addr_spec.lower() == address:
            return mail
    raise AssertionError(f"no mail to {address} in {folder}")


def sign_up(link: str, session_label: str) -> str:
    """What a reader does: follow the email's link, choose a date, confirm."""
    with httpx.Client(follow_redirects=True, headers={"User-Agent": CHROME}) as client:
        page = client.get(link)
        assert "/s/" in str(page.url), page.url
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        session = re.search(r'<label for="session-(\d+)"><strong>' + session_label, page.text)
        assert session, page.text
        fields = {
            "csrf": csrf,
            "session": session.group(1),
            "name": "Vik Fernández",
            "practice": "Tower View Surgery",
            "access_needs": "hearing loop please",
        }
        done = client.post(str(page.url), data=fields)
        assert done.status_code == 200, done.text
        return done.text


def traces(root: Path, needle: str) -> list[str]:
    return [
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and _mentions(p, needle.encode())
    ]


def test_attendance_moves_a_reader_to_next_quarters_segment_then_forget(demo_project, monkeypatch):
    shutil.copy(NEXT_QUARTER, demo_project / OCTOBER)
    sock = bound_socket()
    public_url = "http://{}:{}".format(*sock.getsockname()[:2])
    monkeypatch.setenv("EQUIP_PUBLIC_URL", public_url)
    settings = Settings(
        database_url=f"sqlite:///{demo_project / 'equip.db'}",
        link_secret=os.environ["EQUIP_LINK_SECRET"],
        public_url=public_url,
    )
    engine = store.open_store(settings.database_url)
    app = create_app(settings, engine, notices_outbox=demo_project / "outbox")
    app.state.signup = dataclasses.replace(app.state.signup, now=lambda: NOW)
    with running_app(app, sock=sock):
        # April: Vik is new to QI, so he gets the getting-started menu and signs up
        run("send", APRIL, "--allow-past", "--yes", "--backend", "outbox")
        april = newsletter_to(demo_project / "outbox" / "2019-04-equip-training", VIK)
        assert april["X-Equip-Segment"] == "getting-started"
        text = april.get_body(("plain",)).get_content()
        link = re.search(r"Sign up for EQUIP Basics: (http://\S+/c/\S+)", text).group(1)
        assert "Privacy notice: https://equip.example.org/privacy" in text
        page = sign_up(link, "Thursday 27 June 2019")
        assert "Your place is confirmed" in page
        assert 'href="https://equip.example.org/privacy"' in page
        app.state.service.notices.drain()
    engine.dispose()

    # June: the trainer fills in the roster's Attended column; it is imported
    run("roster", "2019-04-equip-training")
    (sheet,) = (demo_project / "rosters" / "2019-04-equip-training").glob(
        "equip-basics_2019-06-27.csv"
    )
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Email"].lower() for r in rows] == [VIK]
    rows[0]["Attended"] = "yes"
    with sheet.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = run("attendance", APRIL, str(sheet))
    assert "1 person completed EQUIP Basics." in imported
    assert "1 person now at basics after EQUIP Basics, 2019-06-27." in imported

    # October: nobody edited a list, yet Vik is in the next segment and sees the next course
    checked = run("check", OCTOBER, "--allow-past")
    assert "1 person now at basics after EQUIP Basics, 2019-06-27" in checked
    run("send", OCTOBER, "--allow-past", "--yes", "--backend", "outbox")
    october = newsletter_to(demo_project / "outbox" / "2019-10-equip-training", VIK)
    assert october["X-Equip-Segment"] == "ready-for-action"
    body = october.get_body(("plain",)).get_content()
    assert "Sign up for EQUIP in Action" in body
    assert "Tuesday 19 November 2019" in body
    run("report", APRIL)
    assert traces(demo_project, VIK)  # outbox, roster, ...: he is everywhere before

    # He asks to be forgotten
    shown = run("person", VIK)
    assert "Attendance (1)" in shown and "Levels (1)" in shown
    erased = run("forget", VIK, "--yes")
    assert "Erased v***@n***.example:" in erased
    for name in ("equip.db", "equip.db-wal"):
        path = demo_project / name
        if path.exists():
            data = path.read_bytes().lower()
            assert VIK.encode() not in data and b"hearing loop" not in data, name
    for folder in ("outbox", "report", "rosters"):
        assert traces(demo_project / folder, VIK) == [], folder

    # ... and is never mailed again, though the lists still name him
    checked = run("check", OCTOBER, "--allow-past")
    assert "suppressed 4 (" in checked
    again = run("send", OCTOBER, "--allow-past", "--yes", "--backend", "outbox")
    assert "Nothing to send" in again
    assert traces(demo_project / "outbox", VIK) == []
