"""`equip-mailer check`, driven end to end the way the commissioning manager runs it."""

from __future__ import annotations

import re
import shutil

from click.testing import CliRunner

from equip_mailer.cli import main
from equip_mailer.store import add_suppression, open_store


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def test_demo_check_shows_three_segments_totals_and_rejects(demo_path, tmp_path):
    result = run(
        "check",
        str(demo_path),
        "--allow-past",
        env={"EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'none-yet.db'}"},
    )
    print(result.output)
    assert result.exit_code == 0, result.output
    segments = dict(
        re.findall(
            r"│ (getting-started|ready-for-action|project-leads)\s+│.*?│.*?│\s+(\d+) │",
            result.output,
        )
    )
    assert segments == {"getting-started": "186", "ready-for-action": "100", "project-leads": "48"}
    assert "Rows read 340 · rejected 2 · duplicates 1 · suppressed 3" in result.output
    assert (
        'lists/practice-staff.csv:43: email "mohammed.uddin42@@nhs.example" is not a valid address'
        in result.output.splitlines()
    )
    assert (
        "lists/practice-staff.csv:119: qi_level is blank (use none, basics or project)"
        in result.output
    )
    assert not (tmp_path / "none-yet.db").exists(), "check must not create a database"


def test_check_leaves_out_the_stores_suppressions(demo_path, sqlite_url):
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        add_suppression(
            conn, "Lena.Hall-Jones31@NHS.example", "unsubscribed"
        )  # lists/practice-staff.csv:32
    engine.dispose()
    result = run("check", str(demo_path), "--allow-past", env={"EQUIP_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.output
    assert "suppressed 4 (1 of them by the database)" in result.output


def test_the_databases_share_counts_list_rows_not_the_databases_own_size(demo_path, sqlite_url):
    """Found in the walkthrough: after forget erased someone from an import (never on the
    lists), check said "suppressed 3 (1 from the database)" (the size of the store's list),
    as if a reader had been left out by it."""
    engine = open_store(sqlite_url)
    with engine.begin() as conn:
        add_suppression(conn, "not.on.any.list@example.org", "unsubscribed")
        add_suppression(conn, "someone.else@example.org", "bounce")
    engine.dispose()
    result = run("check", str(demo_path), "--allow-past", env={"EQUIP_DATABASE_URL": sqlite_url})
    assert result.exit_code == 0, result.output
    assert "suppressed 3 (0 of them by the database)" in result.output


def test_broken_spec_lists_every_problem_one_per_line_without_a_traceback(demo_path, tmp_path):
    text = demo_path.read_text(encoding="utf-8")
    text = text.replace("date: 2019-06-27", "date: 2019-06-31").replace(
        "preheader:", "preheadr:", 1
    )
    spec = tmp_path / "campaigns" / "broken.yaml"
    spec.parent.mkdir()
    spec.write_text(text, encoding="utf-8")
    shutil.copytree(demo_path.parent.parent / "lists", tmp_path / "lists")
    result = run("check", str(spec), "--allow-past")
    print(result.output)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    problems = [line for line in result.output.splitlines() if line.startswith(str(spec))]
    assert len(problems) >= 3
    assert any(re.search(r":\d+: preheader: is required", p) for p in problems)
    assert any(
        re.search(r":\d+: unknown key 'preheadr' \(did you mean 'preheader'\?\)", p)
        for p in problems
    )
    assert any("2019-06-31 is not a date" in p for p in problems)
    assert f"problems in {spec}" in result.output


def test_a_list_over_the_reject_threshold_fails_the_check(demo_path, tmp_path):
    shutil.copytree(demo_path.parent, tmp_path / "campaigns")
    lists = tmp_path / "lists"
    shutil.copytree(demo_path.parent.parent / "lists", lists)
    shutil.copytree(demo_path.parent.parent / "templates", tmp_path / "templates")
    (lists / "citizens-and-service-users.csv").write_text(
        "email,first_name,qi_level\nbad-address,Ann,none\nann@example.org,Ann,none\n",
        encoding="utf-8",
    )
    result = run("check", str(tmp_path / "campaigns" / demo_path.name), "--allow-past")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.splitlines()
    verdict = next(i for i, line in enumerate(lines) if line.startswith("Error: "))
    assert lines[verdict].startswith(
        "Error: lists/citizens-and-service-users.csv: 1 of 2 rows were rejected (50%), "
        "more than the 5% allowed"
    )
    # Every bad row, of every list, one per line, before the verdict.
    bad = [
        'lists/citizens-and-service-users.csv:2: email "bad-address" is not a valid address',
        'lists/practice-staff.csv:43: email "mohammed.uddin42@@nhs.example" is not a valid address',
        "lists/practice-staff.csv:119: qi_level is blank (use none, basics or project)",
    ]
    for row in bad:
        assert lines.index(row) < verdict


def test_check_shows_the_roles_each_catch_all_took(demo_path, tmp_path):
    result = run("check", str(demo_path), "--allow-past")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heading = lines.index("Roles in each segment's catch-all (no segment names them):")
    roles = {line.split(" ", 1)[0]: line for line in lines[heading + 1 : heading + 4]}
    assert set(roles) == {"getting-started", "ready-for-action", "project-leads"}
    assert re.match(r"getting-started \(New to QI\): .*\bCitizen \d+", roles["getting-started"])


def test_check_help_shows_an_example():
    result = run("check", "--help")
    assert result.exit_code == 0
    assert "equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past" in result.output


def test_check_warns_of_what_would_refuse_a_real_send(demo_path):
    result = CliRunner().invoke(main, ["check", str(demo_path), "--allow-past"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: the public URL http://127.0.0.1:8025 (from the default) is not an https:// "
        "address; set EQUIP_PUBLIC_URL (or public_url in equip-mailer.toml) to the https:// "
        "address where `equip-mailer serve` is reachable from the internet.",
        "Warning: no sender domain is named; set sender_domain in equip-mailer.toml (or "
        "EQUIP_SENDER_DOMAIN) to the domain you authenticated in SendGrid (Settings > Sender "
        "Authentication).",
    ]
    ready = CliRunner().invoke(
        main,
        ["check", str(demo_path), "--allow-past"],
        env={"EQUIP_PUBLIC_URL": "https://equip.example.org", "EQUIP_SENDER_DOMAIN": "example.org"},
    )
    assert ready.exit_code == 0 and "Warning" not in ready.output
    assert "Before a real send: the pre-flight checks pass." in ready.output


def test_check_online_asks_the_live_service_about_this_stores_links(demo_project, tmp_path):
    from support.link_secrets import LINK_SECRET
    from support.service import running_app

    from equip_mailer.config import Settings
    from equip_mailer.track.app import create_app

    spec = str(demo_project / "campaigns" / "2019-04-equip-training.yaml")
    sent = CliRunner().invoke(main, ["send", spec, "--allow-past", "--yes", "--limit", "1"])
    assert sent.exit_code == 0, sent.output
    store = open_store(f"sqlite:///{demo_project / 'equip.db'}")
    with running_app(create_app(Settings(link_secret=LINK_SECRET), store)) as url:
        ok = CliRunner().invoke(
            main, ["check", spec, "--allow-past", "--online"], env={"EQUIP_PUBLIC_URL": url}
        )
    assert ok.exit_code == 0, ok.output
    assert f"Service at {url}: answers with this link secret and knows this campaign's links." in (
        ok.output
    )
    empty = open_store(f"sqlite:///{tmp_path / 'other.db'}")
    with running_app(create_app(Settings(link_secret=LINK_SECRET), empty)) as url:
        other = CliRunner().invoke(
            main, ["check", spec, "--allow-past", "--online"], env={"EQUIP_PUBLIC_URL": url}
        )
    assert other.exit_code == 1
    assert "does not know campaign 2019-04-equip-training's links (it reads another store)" in (
        other.output
    )
    store.dispose()
    empty.dispose()


def test_check_online_with_the_service_down_offers_what_check_can_do(demo_project):
    """Found following the README: the hint ended "--no-service-check skips this check",
    an option of send that check does not have ("No such option" when tried)."""
    spec = str(demo_project / "campaigns" / "2019-04-equip-training.yaml")
    down = run(
        "check", spec, "--allow-past", "--online", env={"EQUIP_PUBLIC_URL": "https://equip.invalid"}
    )
    assert down.exit_code == 1
    assert "cannot reach the tracking service at https://equip.invalid/healthz" in down.output
    assert "--no-service-check" not in down.output
    assert "without --online" in down.output


def test_rich_markup_in_spec_names_is_shown_as_written(demo_project):
    """Found in review: "[/x]" in a segment name crashed the table; "[link=...]" made a
    hidden link in the terminal."""
    spec = demo_project / "campaigns" / "2019-04-equip-training.yaml"
    name = "[link=https://e.example]New[/link] [/x]"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("name: New to QI", f'name: "{name}"', 1),
        encoding="utf-8",
    )
    for command in (["check"], ["send", "--dry-run"]):
        result = CliRunner().invoke(main, [command[0], str(spec), "--allow-past", *command[1:]])
        assert result.exit_code == 0, result.output
        # shown as written (a narrow cell may cut the middle short), no hidden hyperlink
        assert "[link=https://" in result.output and "[/x]" in result.output
        assert "\x1b]8;" not in result.output


def test_a_list_with_a_header_and_no_rows_is_pointed_out(demo_project):
    """A citizens list saved from Excel before the rows were pasted in read as 0 rows,
    and check said nothing about it: the totals just came out 40 short."""
    citizens = demo_project / "lists" / "citizens-and-service-users.csv"
    citizens.write_text("email,first_name,last_name,practice,role,qi_level\n", encoding="utf-8")
    result = run(
        "check", str(demo_project / "campaigns" / "2019-04-equip-training.yaml"), "--allow-past"
    )
    assert result.exit_code == 0, result.output
    assert (
        "Warning: lists/citizens-and-service-users.csv has no rows under its header, so "
        "nobody on it will be mailed (was it saved before the rows were added?)"
    ) in " ".join(result.output.split())
    assert "practice-staff.csv has no rows" not in result.output


def test_a_workbook_with_two_sheets_of_addresses_says_which_was_read(demo_project):
    """A workbook listed without its sheet is read from its first sheet with an email
    column: a "Leavers" sheet before "Staff" was mailed, and nothing on screen said so."""
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Leavers"
    book.active.append(["Email", "First name", "QI level"])
    book.active.append(["gone@nhs.example", "Gone", "none"])
    staff = book.create_sheet("Staff")
    staff.append(["Email", "First name", "QI level"])
    staff.append(["new.starter@nhs.example", "New", "none"])
    book.save(demo_project / "lists" / "citizens.xlsx")
    spec = demo_project / "campaigns" / "2019-04-equip-training.yaml"
    spec.write_text(
        spec.read_text(encoding="utf-8").replace(
            "lists/citizens-and-service-users.csv", "lists/citizens.xlsx"
        ),
        encoding="utf-8",
    )
    result = run("check", str(spec), "--allow-past")
    assert result.exit_code == 0, result.output
    assert (
        "Note: lists/citizens.xlsx was read from its sheet 'Leavers'; 'Staff' has an email "
        "column too and was not read. To read another, name it under 'lists: files:' as "
        "- {file: lists/citizens.xlsx, sheet: Staff}"
    ) in " ".join(result.output.split())
    named = spec.read_text(encoding="utf-8").replace(
        "- lists/citizens.xlsx", "- {file: lists/citizens.xlsx, sheet: Staff}"
    )
    spec.write_text(named, encoding="utf-8")
    assert "was read from its sheet" not in run("check", str(spec), "--allow-past").output


def test_an_accented_letter_before_the_at_is_pointed_out(demo_project):
    """Found in the audit: "zoë.brontë@nhs.example" is a valid address (RFC 6531), but
    SendGrid accepts the request and then drops it as invalid (sendgrid-csharp#656), so
    the reader never gets the mail. check names the rows, before anything is sent."""
    staff = demo_project / "lists" / "practice-staff.csv"
    staff.write_text(
        staff.read_text(encoding="utf-8-sig").replace(
            "vik.fernandez1@nhs.example", "vik.fernández1@nhs.example", 1
        ),
        encoding="utf-8",
    )
    result = run(
        "check", str(demo_project / "campaigns" / "2019-04-equip-training.yaml"), "--allow-past"
    )
    assert result.exit_code == 0, result.output
    assert (
        "Warning: 1 address has letters outside plain ASCII before the @ "
        "(lists/practice-staff.csv:2): SendGrid does not deliver to such addresses"
    ) in " ".join(result.output.split())
