"""What every command shares, seen from the person running it: whatever goes wrong, one plain
sentence and an exit status, never a traceback."""

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from equip_mailer.cli import common, main


def test_an_unexpected_failure_is_one_sentence_with_the_details_in_a_file(monkeypatch, demo_path):
    def broken(*_a, **_k):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(common, "load_settings", broken)  # stand-in for any bug deep inside
    result = CliRunner().invoke(main, ["status", str(demo_path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "something unexpected went wrong (ZeroDivisionError)" in result.output
    saved = Path(result.output.split("Details for the developers are in ")[1].strip().rstrip("."))
    details = saved.read_text()
    assert "builtins.ZeroDivisionError: (message withheld)" in details
    assert 'raise ZeroDivisionError("boom")' in details  # the stack, with its source lines
    saved.unlink()


def test_the_details_file_holds_no_personal_data(demo_project, monkeypatch):
    """Found in review: the file held SQLAlchemy's message, whose parameters were a list
    row's address, name and practice."""
    import sqlalchemy as sa

    from equip_mailer.send.ledger import Ledger

    def failing_sync(self, by_segment, suppressed=(), in_file=()):
        reader = next(iter(by_segment.values()))[0]
        with self.engine.begin() as conn:  # a real database error carrying a real row
            conn.execute(
                sa.text("INSERT INTO no_such_table VALUES (:email, :first, :last, :practice)"),
                {
                    "email": reader.email,
                    "first": reader.first_name,
                    "last": reader.last_name,
                    "practice": reader.practice,
                },
            )

    monkeypatch.setattr(Ledger, "sync", failing_sync)
    from equip_mailer.compose.audience import load_audience
    from equip_mailer.compose.spec import load_campaign

    spec = load_campaign(demo_project / "campaigns" / f"{CID}.yaml", allow_past=True)
    reader = next(iter(load_audience(spec).by_segment.values()))[0]
    result = _run("send", demo_project / "campaigns" / f"{CID}.yaml", "--allow-past", "--yes")
    assert result.exit_code == 1
    assert "something unexpected went wrong (OperationalError)" in result.output
    saved = Path(result.output.split("Details for the developers are in ")[1].strip().rstrip("."))
    details = saved.read_text()
    saved.unlink()
    assert (
        "sqlalchemy.exc.OperationalError: SQL: INSERT INTO no_such_table VALUES (?, ?, ?, ?)"
        in (details)
    )
    assert "failing_sync" in details
    for personal in (reader.email, reader.first_name, reader.last_name, reader.practice):
        assert personal and personal not in details
    assert not re.search(r"[\w.+-]+@[\w-]+\.\w", details)  # no address of anyone


# One project, found the way git finds its repository (issue 10, item 1)

CID = "2019-04-equip-training"


def _run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_a_send_from_another_folder_uses_the_projects_one_store(
    demo_project, monkeypatch, tmp_path_factory
):
    monkeypatch.delenv("EQUIP_DATABASE_URL")  # the default store: equip-mailer.db
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    spec = demo_project / "campaigns" / f"{CID}.yaml"
    store = demo_project / "equip-mailer.db"

    first = _run("send", spec, "--allow-past", "--yes")
    assert first.exit_code == 0, first.output
    assert first.stderr.splitlines()[0] == f"Project {demo_project} · store sqlite:///{store}"
    assert store.exists() and len(list((demo_project / "outbox" / CID).glob("*.eml"))) > 300
    assert list(elsewhere.iterdir()) == []  # no store, no outbox in the current folder

    monkeypatch.chdir(tmp_path_factory.mktemp("another"))
    again = _run("send", spec, "--allow-past", "--dry-run")
    assert again.exit_code == 0, again.output
    assert "everyone on the lists already has this campaign" in again.output

    monkeypatch.chdir(demo_project / "lists")  # serve and report look upward, like git
    report = _run("report", CID)
    assert report.exit_code == 0, report.output
    assert report.stderr.splitlines()[0] == f"Project {demo_project} · store sqlite:///{store}"
    assert (demo_project / "report" / CID / "report.html").exists()


def test_without_a_project_or_a_named_store_a_command_says_how_to_name_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = _run("serve")
    assert result.exit_code == 1
    assert f"no equip-mailer project in {tmp_path} or any folder above it" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_first_line_masks_the_database_password(demo_project):
    url = "postgresql://equip:hunter2-secret@127.0.0.1:1/equip"  # nothing listens on port 1
    result = _run(
        "check",
        demo_project / "campaigns" / f"{CID}.yaml",
        "--allow-past",
        env={"EQUIP_DATABASE_URL": url},
    )
    first = result.stderr.splitlines()[0]
    assert (
        first == f"Project {demo_project} · store postgresql+psycopg://equip:***@127.0.0.1:1/equip"
    )
    assert "hunter2" not in result.output


# Settings that fail plainly (issue 10, item 4)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://equip@db.example.org/equip",
            "mysql://equip@db.example.org/equip is not a database equip-mailer can use "
            "(only SQLite and PostgreSQL)",
        ),
        (
            "sqlite:///no-such-folder/equip.db",
            "the folder {root}/no-such-folder for the SQLite database does not exist",
        ),
        ("equip.db", "the value is not a database URL"),
    ],
)
def test_a_store_that_cannot_work_is_one_sentence_naming_the_variable(demo_project, url, message):
    result = _run(
        "status", demo_project / "campaigns" / f"{CID}.yaml", env={"EQUIP_DATABASE_URL": url}
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: EQUIP_DATABASE_URL: {message.format(root=demo_project)}"]
    assert "unexpected" not in result.output
    assert not (demo_project / "no-such-folder").exists()


def test_postgres_urls_of_either_spelling_reach_the_store(demo_project, pg_url):
    rest = pg_url.split("://", 1)[1]
    for scheme in ("postgres", "postgresql"):
        result = _run(
            "status",
            demo_project / "campaigns" / f"{CID}.yaml",
            env={"EQUIP_DATABASE_URL": f"{scheme}://{rest}"},
        )
        assert result.exit_code == 0, result.output
        assert "has not been sent yet" in result.output
        assert result.stderr.splitlines()[0].endswith(f"store postgresql+psycopg://{rest}")
