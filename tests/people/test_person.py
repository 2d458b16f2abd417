"""`equip-mailer person` as the manager reads it when something in the project is broken."""

from __future__ import annotations

from click.testing import CliRunner

from equip_mailer.cli import main

VIK = "vik.fernandez1@nhs.example"


def test_a_broken_spec_is_one_whole_note_and_the_other_lists_are_still_searched(demo_project):
    """Found in the walkthrough: the note quoted the spec's errors cut at 120 characters,
    ending mid-word ("did you mea")."""
    demo = (demo_project / "campaigns" / "2019-04-equip-training.yaml").read_text()
    typo = demo.replace("\nsubject:", "\nsubjet:", 1).replace("id: 2019-04", "id: 2019-07", 1)
    (demo_project / "campaigns" / "typo.yaml").write_text(typo, encoding="utf-8")
    (demo_project / "lists" / "broken.xlsx").write_bytes(b"not a workbook")
    spec = demo_project / "campaigns" / "2019-04-equip-training.yaml"
    with_list = demo.replace(
        "    - lists/citizens-and-service-users.csv\n",
        "    - lists/citizens-and-service-users.csv\n    - lists/broken.xlsx\n",
    )
    spec.write_text(with_list, encoding="utf-8")

    result = CliRunner().invoke(main, ["person", VIK])

    assert result.exit_code == 0, result.output
    assert "lists/practice-staff.csv:2" in result.output  # read through the good spec
    flat = " ".join(result.output.split())
    assert (
        "Note: campaigns/typo.yaml could not be read, so lists only it names were not "
        "searched (equip-mailer check campaigns/typo.yaml says why)" in flat
    )
    [note] = [line for line in result.output.splitlines() if "lists/broken.xlsx" in line]
    assert note.startswith("Note: lists/broken.xlsx could not be read (") and note.endswith(")")
    assert "subjet" not in result.output  # the spec's problems are check's to list


def test_a_team_members_request_includes_what_the_activity_log_says_they_did(demo_project):
    """A trainer's subject access request: the team pages' activity log names them as the
    one who signed in and marked people (and names a reader as the person marked); both
    are personal data held about them, as forget knows (it blanks those entries)."""
    import json

    from equip_mailer import store
    from equip_mailer.team.audit import record

    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        record(conn, "tess.trainer@example.org", "signed in", "Signed in with a link.")
        record(
            conn,
            "bob@example.org",
            "cancelled a place",
            "Cancelled the place of Someone Else (registration 9).",
            target=("registration", "9"),
        )
    engine.dispose()

    result = CliRunner().invoke(
        main, ["person", "Tess.Trainer@example.org", "--json", "--out", "sar.json"]
    )

    assert result.exit_code == 0, result.output
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    activity = [row for row in sar["team"] if row["kind"] == "team activity"]
    assert [(a["action"], a["summary"]) for a in activity] == [
        ("signed in", "Signed in with a link.")
    ]
    shown = CliRunner().invoke(main, ["person", "tess.trainer@example.org"])
    assert "action: signed in" in shown.output


def test_out_alone_writes_the_answer_instead_of_being_ignored(demo_project):
    """Found in the audit: `person ADDRESS --out sar.json` without --json printed everything
    to the terminal and wrote no file, saying nothing. A file asked for is written."""
    import json

    result = CliRunner().invoke(main, ["person", VIK, "--out", "sar.json"])

    assert result.exit_code == 0, result.output
    assert "Wrote sar.json." in result.output
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    assert [r["where"] for r in sar["lists"]] == ["lists/practice-staff.csv:2"]

    # another person's answer is not written over this one unless asked (as people export)
    other = CliRunner().invoke(main, ["person", "someone@nhs.example", "--out", "sar.json"])
    assert other.exit_code != 0 and "sar.json exists already" in other.output
    assert json.loads((demo_project / "sar.json").read_text(encoding="utf-8")) == sar
    forced = ["person", "someone@nhs.example", "--out", "sar.json", "--force"]
    assert CliRunner().invoke(main, forced).exit_code == 0
    assert json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))["lists"] == []


def test_the_events_of_their_single_emails_are_in_the_answer(demo_project):
    """A confirmation sent through SendGrid carries its notice id, not a ledger id, so its
    delivery and opens join no campaign row. Found in the audit: those events were left
    out of `person --json` although they are held about the person."""
    import json

    from equip_mailer import store
    from equip_mailer.track.webhook import store_events

    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    now = store.utcnow()
    with engine.begin() as conn:
        notice_id = conn.execute(
            store.notices.insert().values(
                key="signup:1:0:confirmed",
                kind="signup-confirmed",
                email="Vik.Fernandez1@nhs.example",
                email_key=VIK,
                from_email="equip@example.org",
                subject="Your place on EQUIP Basics is confirmed",
                text="Dear Vik",
                state="sent",
                backend="sendgrid",
                attempts=1,
                created_at=now,
            )
        ).inserted_primary_key[0]
        store_events(
            conn,
            [
                {
                    "email": VIK,
                    "event": event,
                    "timestamp": 1556000000 + i,
                    "notice_id": str(notice_id),
                    "kind": "signup-confirmed",
                }
                for i, event in enumerate(("delivered", "open"))
            ],
            ip_key=b"k" * 32,
        )
    engine.dispose()

    result = CliRunner().invoke(main, ["person", VIK, "--json", "--out", "sar.json"])

    assert result.exit_code == 0, result.output
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    assert [(e["event"], e["notice_id"]) for e in sar["events"]] == [
        ("delivered", notice_id),
        ("open", notice_id),
    ]


def test_the_times_in_the_answer_say_they_are_utc(demo_project):
    """Found in the audit: the store's times (UTC) went into the SAR file and the terminal
    as bare "2019-06-01T09:30:00", beside a made_at ending in Z; the person reading it in
    London takes a summer time for their own, an hour off. Every time now ends in Z."""
    import datetime as dt
    import json

    from equip_mailer import store

    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        conn.execute(
            store.notices.insert().values(
                key="signup:1:0:confirmed",
                kind="signup-confirmed",
                email=VIK,
                email_key=VIK,
                from_email="equip@example.org",
                subject="Your place on EQUIP Basics is confirmed",
                text="Dear Vik",
                state="sent",
                backend="outbox",
                attempts=1,
                created_at=dt.datetime(2019, 6, 1, 9, 30),
            )
        )
    engine.dispose()

    result = CliRunner().invoke(main, ["person", VIK, "--json", "--out", "sar.json"])
    assert result.exit_code == 0, result.output
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    assert sar["notices"][0]["created_at"] == "2019-06-01T09:30:00Z"
    shown = CliRunner().invoke(main, ["person", VIK])
    assert "created at: 2019-06-01 09:30 UTC" in shown.output


def test_the_text_answer_reads_as_words_and_dates_not_columns(demo_project):
    """The manager reads `person` without --json. Found in the audit: it printed column
    names and raw values, e.g. "sent_at: 2019-04-23T06:13:20.123456, machine: False"."""
    import datetime as dt
    import re

    from equip_mailer import store

    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    sent = dt.datetime(2019, 4, 23, 6, 13, 20, 123456)
    with engine.begin() as conn:
        store.ensure_campaign(conn, "2019-04-equip-training", "Subject")
        conn.execute(
            store.ledger.insert().values(
                campaign_id="2019-04-equip-training",
                email=VIK,
                email_key=VIK,
                first_name="Vik",
                qi_level="none",
                segment="getting-started",
                state="sent",
                attempts=1,
                created_at=sent,
                updated_at=sent,
                sent_at=sent,
            )
        )
    engine.dispose()

    shown = CliRunner().invoke(main, ["person", VIK]).output

    assert "sent at: 2019-04-23 06:13 UTC" in shown, shown
    assert "first name: Vik" in shown and "QI level: none" in shown
    assert "T06:13" not in shown and not re.search(r"\b[a-z]+_[a-z_]+: ", shown)
