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
    assert "suppressed 4 (1 from the database)" in result.output


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
