"""`equip-mailer person` and `forget`: everything held about one address shown, then erased
with no trace left in the database file, the outbox or the report folder, while past
reports count the same and the address stays suppressed."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET
from support.sign_in_sheets import SPEC, write_roster
from support.signup_data import NOW

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.people import forget as erasure
from equip_mailer.people.records import erased_key
from equip_mailer.signup import notify
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course
from equip_mailer.track.webhook import store_events

VIK = "vik.fernandez1@nhs.example"  # on lists/practice-staff.csv, segment getting-started
CID = "2019-04-equip-training"


def run(*args, input=None):
    return CliRunner().invoke(main, list(args), input=input)


def traces(root, needle: str) -> list[str]:
    """Every file under ``root`` whose bytes (or a workbook's XML) name ``needle``."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and erasure._mentions(path, needle.lower().encode()):
            found.append(str(path.relative_to(root)))
    return found


def report_tables(project) -> dict[str, str]:
    """The report's CSV tables (the figures; the page and workbook are made from them)."""
    return {
        p.name: p.read_text(encoding="utf-8-sig")
        for p in sorted((project / "report" / CID).glob("*.csv"))
    }


def _vik_everywhere(project):
    """Vik: sent the demo, delivered, clicked, bounced once, signed up, attended, suppressed."""
    sent = run("send", SPEC, "--allow-past", "--backend", "outbox", "--yes")
    assert sent.exit_code == 0, sent.output
    engine = store.open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.begin() as conn:
        row = conn.execute(sa.select(store.ledger).where(store.ledger.c.email_key == VIK)).one()
        send_id = conn.execute(
            sa.select(store.batches.c.send_id).where(store.batches.c.id == row.batch_id)
        ).scalar()
        base = {"recipient": str(row.id), "campaign_id": CID, "send_id": send_id, "email": VIK}
        store_events(
            conn,
            [
                {**base, "event": "delivered", "timestamp": 1556000000, "sg_event_id": "e1"},
                {
                    **base,
                    "event": "click",
                    "timestamp": 1556000600,
                    "sg_event_id": "e2",
                    "url": "https://equip.example.org/about",
                    "useragent": "Mozilla/5.0 (Windows NT 10.0)",
                    "ip": "192.0.2.7",
                },
                {
                    **base,
                    "event": "bounce",
                    "timestamp": 1556000900,
                    "sg_event_id": "e3",
                    "type": "blocked",
                    "reason": f"550 5.7.1 <{VIK}>: message refused",
                },
            ],
            ip_key=b"k" * 32,
        )
        store.add_suppression(conn, VIK, "unsubscribe", source="test")
        basics = find_course(conn, CID, "equip-basics")
    with store.immediate(engine) as conn:
        applicant = reg.Applicant(
            email="Vik.Fernandez1@nhs.example",
            name="Vik Fernández",
            practice="Tower View Surgery",
            access_needs="step-free access",
            ledger_id=row.id,
        )
        outcome = reg.register(conn, basics.id, applicant, basics.sessions[0].id, NOW)
        notify.registered(
            conn, outcome, notify.MailLinks("https://equip.example.org", LINK_SECRET.encode()), NOW
        )
    engine.dispose()
    sheet = write_roster(
        project / "vik.csv", basics, basics.sessions[0], [(outcome.registration,)], ["yes"]
    )
    assert run("attendance", SPEC, str(sheet)).exit_code == 0
    sheet.unlink()
    return basics


def test_person_shows_everything_then_forget_leaves_no_trace(demo_project):
    _vik_everywhere(demo_project)
    # the service's notice worker would send the confirmation; deliver it as send does
    from equip_mailer.config import load_settings
    from equip_mailer.send.notice_transports import notice_transport
    from equip_mailer.send.notices import NoticeSender

    cfg = load_settings()
    engine = store.open_store(cfg.database_url)
    NoticeSender(engine, notice_transport(cfg, cfg.outbox)).deliver_pending()
    engine.dispose()
    assert run("roster", SPEC).exit_code == 0
    assert run("report", SPEC).exit_code == 0
    report_before = report_tables(demo_project)
    assert len(report_before) > 3
    assert traces(demo_project / "outbox", VIK) and traces(demo_project / "rosters", VIK)
    # a run killed while replacing Vik's file left its temporary copy (outbox_files.py)
    vik_file = demo_project / "outbox" / traces(demo_project / "outbox", VIK)[0]
    (vik_file.parent / f".{vik_file.name}.4194000.1.tmp").write_bytes(vik_file.read_bytes())

    shown = run("person", VIK.upper(), "--json", "--out", "sar.json")
    assert shown.exit_code == 0, shown.output
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    assert [r["where"] for r in sar["lists"]] == ["lists/practice-staff.csv:2"]
    assert [(c["campaign_id"], c["segment"]) for c in sar["campaigns"]] == [
        (CID, "getting-started")
    ]
    assert {e["event"] for e in sar["events"]} >= {"delivered", "click", "bounce"}
    assert sar["registrations"][0]["access_needs"] == "step-free access"
    assert sar["attendance"][0]["attended"] is True
    assert sar["levels"][0]["reason"] == "completed EQUIP Basics, 2019-06-27"
    assert sar["suppression"][0]["reason"] == "unsubscribe"
    assert len(sar["notices"]) == 1 and sar["notices"][0]["state"] == "sent"
    text = run("person", VIK)
    assert "Registrations (1): places on courses signed up for" in text.output
    (demo_project / "sar.json").unlink()  # the requester's copy, not the tool's

    refused = run("forget", VIK)  # no terminal to ask on: refuses, erases nothing
    assert refused.exit_code == 1 and "--yes" in refused.output
    erased = run("forget", VIK, "--yes")

    assert erased.exit_code == 0, erased.output
    held = " ".join(erased.output.split("\nErased", 1)[0].split())
    assert "1 campaign sent, " in held and "1 course sign-up" in held, held  # not "1 campaigns"
    assert "1 campaign ledger rows (address replaced by a keyed hash)" in erased.output
    assert "1 registrations (kept as anonymous counts)" in erased.output
    assert "Still in the mailing list lists/practice-staff.csv:2" in erased.output
    assert "Note:" not in erased.output
    for name in ("equip.db", "equip.db-wal", "equip.db-shm"):
        path = demo_project / name
        if path.exists():
            data = path.read_bytes().lower()
            assert VIK.encode() not in data, name
            assert b"vik fern\xc3\xa1ndez" not in data, name  # the name they signed up with
            assert b"step-free" not in data, name
    for folder in ("outbox", "report", "rosters", "preview"):
        if (demo_project / folder).exists():
            assert traces(demo_project / folder, VIK) == [], folder
    # the printed sign-in sheet names them and their access needs, not the address
    # (found in the walkthrough: it stayed behind)
    assert traces(demo_project / "rosters", "Vik Fernández") == []
    assert traces(demo_project / "rosters", "step-free access") == []
    assert (demo_project / "rosters" / CID / "equip-basics_2019-09-10_sign-in.html").is_file()

    # past reports count the same; the person is never mailed again from the old list
    assert run("report", SPEC).exit_code == 0
    assert report_tables(demo_project) == report_before
    assert traces(demo_project / "report", VIK) == []
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.connect() as conn:
        assert erased_key(LINK_SECRET.encode(), VIK) in store.suppressed_keys(conn)
        assert erasure.leftovers(conn, VIK) == []
    engine.dispose()
    check = run("check", SPEC, "--allow-past")
    assert "suppressed 4 (" in check.output  # the demo's 3 and the erased address
    # a request after the erasure is told of it, not "nothing held" (a keyed hash is kept)
    again = run("person", VIK)
    when = f"{store.utcnow():%Y-%m-%d}"
    assert f"vik.fernandez1@nhs.example was erased on {when} (equip-mailer forget)" in " ".join(
        again.output.split()
    )
    assert "The mailing lists still name it" in again.output
    assert "lists/practice-staff.csv:2" in again.output  # the manager's list still has the row
    assert run("person", VIK, "--out", "sar.json").exit_code == 0
    sar = json.loads((demo_project / "sar.json").read_text(encoding="utf-8"))
    assert sar["erased_at"].startswith(when) and "keyed hash" in sar["erased"]
    assert run("person", "someone.else@nhs.example", "--out", "other.json").exit_code == 0
    assert "erased_at" not in json.loads((demo_project / "other.json").read_text(encoding="utf-8"))


def test_a_place_still_to_come_is_given_to_the_next_person_waiting(demo_project):
    from support.signup_data import hosted_campaign

    from equip_mailer.signup.catalogue import register_courses

    spec = hosted_campaign(demo_project, demo_project / SPEC, basics_places=(1, 1))
    engine = store.open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with engine.begin() as conn:
        register_courses(conn, spec)
        basics = find_course(conn, spec.id, "equip-basics")
    june = basics.sessions[0].id
    outcomes = []
    for email in ("ann@nhs.example", "bob@nhs.example"):
        with store.immediate(engine) as conn:
            outcomes.append(
                reg.register(conn, basics.id, reg.Applicant(email=email, name="A B"), june, NOW)
            )
    assert [o.registration.status for o in outcomes] == ["confirmed", "waiting"]
    links = notify.MailLinks("https://equip.example.org", LINK_SECRET.encode())

    done = erasure.forget(
        engine,
        "ann@nhs.example",
        LINK_SECRET.encode(),
        outbox=demo_project / "outbox",
        links=links,
        now=NOW,
    )

    assert done.cancelled == ["EQUIP Basics"] and done.promoted == 1
    with engine.connect() as conn:
        bob = reg.get_registration(conn, outcomes[1].registration.id)
        kinds = conn.execute(sa.select(store.notices.c.kind, store.notices.c.email_key)).all()
    assert bob.status == "confirmed"
    assert [tuple(k) for k in kinds] == [(kinds[0][0], "bob@nhs.example")]
    engine.dispose()


def test_forget_of_someone_unknown_changes_nothing_twice(sqlite_url, tmp_path):
    engine = store.open_store(sqlite_url)
    secret = LINK_SECRET.encode()
    first = erasure.forget(engine, "nobody@example.org", secret, outbox=tmp_path, now=NOW)
    second = erasure.forget(engine, "nobody@example.org", secret, outbox=tmp_path, now=NOW)
    assert first.counts == {} and second.counts == {} and first.files == []
    with engine.connect() as conn:
        assert store.suppressed_keys(conn) == {erased_key(secret, "nobody@example.org")}


def sent_to_ann(conn, now, **more) -> int:
    """Ann's ledger row in campaign CID, sent; its id."""
    return conn.execute(
        store.ledger.insert().values(
            campaign_id=CID,
            email="Ann@NHS.example",
            email_key="ann@nhs.example",
            segment="getting-started",
            state="sent",
            attempts=1,
            created_at=now,
            updated_at=now,
            **more,
        )
    ).inserted_primary_key[0]


def test_forget_on_either_database_leaves_only_counts(db_url, tmp_path):
    """The same erasure on SQLite and PostgreSQL: rows kept for the counts name nobody."""
    engine = store.open_store(db_url)
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, CID, "Subject")
        ledger_id = sent_to_ann(
            conn,
            now,
            first_name="Ann",
            last_name="Example",
            practice="Tower View Surgery",
            role="GP",
            qi_level="none",
        )
        store_events(
            conn,
            [
                {
                    "event": "bounce",
                    "email": "ann@nhs.example",
                    "timestamp": 1556000000,
                    "sg_event_id": "b1",
                    "recipient": str(ledger_id),
                    "campaign_id": CID,
                    "type": "bounce",
                    "reason": "550 <ANN@nhs.example> unknown user",
                }
            ],
            ip_key=b"k" * 32,
        )
        assert erasure.leftovers(conn, "ann@nhs.example")  # the ledger, the bounce reason, ...

    done = erasure.forget(engine, "ann@nhs.example", LINK_SECRET.encode(), outbox=tmp_path, now=now)

    assert done.notes == []
    with engine.connect() as conn:
        assert erasure.leftovers(conn, "ann@nhs.example") == []
        row = conn.execute(sa.select(store.ledger)).one()
        event = conn.execute(sa.select(store.events)).one()
        keys = store.suppressed_keys(conn)
    hashed = erased_key(LINK_SECRET.encode(), "ann@nhs.example")
    assert (row.email, row.first_name, row.segment, row.practice) == (
        hashed,
        None,
        "getting-started",
        "Tower View Surgery",
    )
    assert (event.raw, event.reason) == (None, "bounce: 550 <(erased)> unknown user")
    assert keys == {hashed}  # the bounce's suppression, now only as the hash
    engine.dispose()


def test_forgetting_a_team_member_removes_them_from_the_marks_they_made(
    db_url, tmp_path, demo_path
):
    """A trainer marks attendance on the team pages (their address is kept as who marked it
    and who raised the level); when the trainer asks to be forgotten, those rows, which are
    about other people, stay but no longer name the trainer."""
    import datetime as dt

    from support.signup_data import hosted_campaign

    from equip_mailer.people import levels
    from equip_mailer.people.attendance import record_attendance
    from equip_mailer.signup.catalogue import register_courses

    trainer = "Tess.Trainer@example.org"
    after = dt.datetime(2019, 10, 1, 9, 0)  # every session of the demo is over
    engine = store.open_store(db_url)
    campaign = hosted_campaign(tmp_path, demo_path)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
    june = basics.sessions[0]
    with store.immediate(engine) as conn:
        applicant = reg.Applicant(email="ann@nhs.example", name="Ann Example")
        ann = reg.register(conn, basics.id, applicant, june.id, NOW).registration
    for attended in (True, False, True):  # marked, corrected, corrected back
        with engine.begin() as conn:
            record_attendance(conn, ann.id, june.id, attended, "team pages", trainer.lower(), after)
    with engine.connect() as conn:
        assert erasure.leftovers(conn, trainer.lower())  # who marked, who raised the level

    done = erasure.forget(engine, trainer, LINK_SECRET.encode(), outbox=tmp_path, now=after)

    assert done.notes == []
    with engine.connect() as conn:
        assert erasure.leftovers(conn, trainer.lower()) == []
        marks = conn.execute(sa.select(store.attendance.c.attended)).scalars().all()
        log = conn.execute(sa.select(store.attendance_log.c.recorded_by)).scalars().all()
        ann_levels = levels.history(conn, "ann@nhs.example")
    assert marks == [True]  # Ann's attendance and level are hers: they stay
    assert log == ["(erased)"] * 3
    assert [(c.level, c.recorded_by) for c in ann_levels if c.withdrawn_at is None] == [
        ("basics", "(erased)")
    ]
    engine.dispose()


def test_forget_with_another_link_secret_is_refused_and_erases_nothing(demo_project, monkeypatch):
    """The erasure is remembered as a hash under the link secret, and send recognises it only
    under the secret its mail was signed with. Found in the audit: forget run in a shell
    without EQUIP_LINK_SECRET generated a new secret, hashed the address with it, and the
    next send mailed the forgotten person again. Now forget refuses, as send does."""
    assert run("send", SPEC, "--allow-past", "--backend", "outbox", "--yes").exit_code == 0
    monkeypatch.setenv("EQUIP_LINK_SECRET", "another-secret-" + "x1Y2z3W4v5U6t7S8r9Q0p1O2n3M4")

    refused = run("forget", VIK, "--yes")

    assert refused.exit_code == 1
    assert "is not the one this store's mail was signed with" in refused.output
    monkeypatch.setenv("EQUIP_LINK_SECRET", LINK_SECRET)
    still = run("person", VIK)
    assert "Campaigns (1)" in still.output  # nothing was erased


def test_forget_names_the_other_files_in_lists_that_still_hold_the_address(demo_project):
    """`people export --out lists/people.csv` (the example its help gives) writes a master
    list no spec names yet; forget never edits lists/, but it must say that file still
    holds the person, as it does for the lists the specs read."""
    exported = run("people", "export", SPEC, "--out", "lists/people.csv")
    assert exported.exit_code == 0, exported.output
    xlsx = run("people", "export", SPEC, "--out", "lists/archive/people-2018.xlsx")
    assert xlsx.exit_code == 0, xlsx.output

    erased = run("forget", VIK.upper(), "--yes")

    assert erased.exit_code == 0, erased.output
    out = " ".join(erased.output.split())
    assert "Still in the mailing list lists/practice-staff.csv:2" in out
    assert "Also named in lists/archive/people-2018.xlsx: delete them there" in out
    assert "Also named in lists/people.csv: delete them there" in out
    assert "lists/suppressions.csv" not in out  # does not name them


def test_forget_of_an_address_never_held_says_so(demo_project):
    """Found in the audit: it printed "Erased n***@n***.example:" over nothing at all."""
    erased = run("forget", "nobody.here@nhs.example", "--yes")

    assert erased.exit_code == 0, erased.output
    said = " ".join(erased.output.split())
    assert "nothing was held in the store; from now on the address is kept only as a keyed" in said


def test_no_event_key_left_can_confirm_a_guessed_address(db_url, tmp_path):
    """A webhook event's dedupe key is a plain SHA-256 of the address and of fields stored
    in the same row (message id, recipient, event, time, URL). Found in the audit: after
    forget, hashing a guessed address with those fields matched the key, confirming who
    was erased. Their events (newsletter and single emails) now keep a keyed hash instead,
    and a retry of one of them SendGrid sends later is still recognised as a duplicate."""
    from equip_mailer.track.webhook import dedupe_key

    secret = LINK_SECRET.encode()
    engine = store.open_store(db_url)
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, CID, "Subject")
        ledger_id = sent_to_ann(conn, now)
        notice_id = conn.execute(
            store.notices.insert().values(
                key="signup:1:0:confirmed",
                kind="signup-confirmed",
                email="Ann@NHS.example",
                email_key="ann@nhs.example",
                from_email="equip@example.org",
                subject="Your place",
                text="Dear Ann",
                state="sent",
                attempts=1,
                created_at=now,
            )
        ).inserted_primary_key[0]
        base = {"email": "ann@nhs.example", "sg_message_id": "14c5d75ce93.dfd.64b469.filter1"}
        posted = [
            {**base, "event": "delivered", "timestamp": 1556000000, "recipient": str(ledger_id)},
            {**base, "event": "open", "timestamp": 1556000100, "recipient": str(ledger_id)},
            {**base, "event": "delivered", "timestamp": 1556000200, "notice_id": str(notice_id)},
        ]
        store_events(conn, posted, ip_key=secret)
    guessed = {dedupe_key(e) for e in posted}

    erasure.forget(engine, "ann@nhs.example", secret, outbox=tmp_path, now=now)
    with engine.begin() as conn:  # SendGrid retries the whole post later
        retried = store_events(conn, posted, ip_key=secret)

    assert (retried.stored, retried.duplicates) == (0, 3)
    with engine.connect() as conn:
        keys = set(conn.execute(sa.select(store.events.c.dedupe_key)).scalars())
        raws = conn.execute(sa.select(store.events.c.raw)).scalars().all()
    assert len(keys) == 3 and not keys & guessed
    assert raws == [None, None, None]
    engine.dispose()


def test_forget_leaves_a_retired_event_key_retired(db_url, tmp_path):
    """Past SendGrid's retry window purge replaces an event's dedupe key by "retired:<id>",
    which names nobody. forget keyed that again (an HMAC of "retired:1"), and the next
    purge retired it back: each erasure rewrote keys that needed nothing."""
    import datetime as dt

    from equip_mailer.people.retention import purge

    engine = store.open_store(db_url)
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, CID, "Subject")
        ledger_id = sent_to_ann(conn, now)
        store_events(
            conn,
            [{"event": "delivered", "email": "ann@nhs.example", "recipient": str(ledger_id)}],
            ip_key=b"k" * 32,
            received_at=now - dt.timedelta(days=401),
        )
    purge(engine, 400, now)

    erasure.forget(engine, "ann@nhs.example", LINK_SECRET.encode(), outbox=tmp_path, now=now)

    with engine.connect() as conn:
        assert conn.execute(sa.select(store.events.c.dedupe_key)).scalars().all() == ["retired:1"]
    engine.dispose()
