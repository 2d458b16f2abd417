"""`equip-mailer roster`, driven end to end: the files per session, places filled against
capacity on screen, ``--session``, and plain errors. The sign-in sheet is printed to PDF by
headless Chromium and must come out as A4 pages, the trainer's page on its own."""

from __future__ import annotations

import csv
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from support.browser import require_chromium
from support.signup_data import NOW, hosted_spec, seed_readers

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.compose.spec import load_campaign
from equip_mailer.signup import registration as reg
from equip_mailer.signup.catalogue import find_course, register_courses


def run(*args: str, db: str):
    return CliRunner().invoke(main, list(args), env={"EQUIP_DATABASE_URL": db})


@pytest.fixture
def signed_up(sqlite_url, tmp_path, demo_path):
    """Basics June: 3 places, 3 confirmed and 2 waiting; In Action: 25 confirmed of 30."""
    spec = hosted_spec(tmp_path, demo_path, basics_places=(3, 30), action_places=30)
    campaign = load_campaign(spec, allow_past=True)
    engine = store.open_store(sqlite_url)
    seed_readers(engine, campaign, 30)
    with engine.begin() as conn:
        register_courses(conn, campaign)
        basics = find_course(conn, campaign.id, "equip-basics")
        action = find_course(conn, campaign.id, "equip-in-action")
    for i in range(5):
        with store.immediate(engine) as conn:
            reg.register(
                conn,
                basics.id,
                reg.Applicant(f"reader{i}@nhs.example", f"Reader Number{i}", ledger_id=i + 1),
                basics.sessions[0].id,
                NOW,
            )
    for i in range(25):
        with store.immediate(engine) as conn:
            reg.register(
                conn,
                action.id,
                reg.Applicant(
                    f"reader{i}@nhs.example",
                    f"Reader Number{i} With A Rather Long Double-Barrelled Name",
                    practice="The Example Health Centre and Walk-in Clinic, Whitechapel",
                    role="Advanced nurse practitioner",
                    access_needs="Hearing loop" if i == 3 else None,
                    ledger_id=i + 1,
                ),
                None,
                NOW,
            )
    engine.dispose()
    return spec


def test_roster_writes_three_files_per_session_and_shows_places(signed_up, sqlite_url, tmp_path):
    out = tmp_path / "rosters"
    result = run("roster", str(signed_up), "--out", str(out), db=sqlite_url)
    assert result.exit_code == 0, result.output
    stems = sorted({p.name.split(".")[0].removesuffix("_sign-in") for p in out.iterdir()})
    assert stems == [
        "equip-basics_2019-06-27",
        "equip-basics_2019-09-10",
        "equip-in-action_2019-06-13",
        "equip-in-action_2019-07-09",
        "equip-in-action_2019-09-17",
    ]
    assert len(list(out.iterdir())) == 15
    places = re.findall(r"│\s+(\d+ of \d+)\s+│\s+(\d+)\s+│\s+(\d+)\s+│", result.output)
    assert places == [  # filled, waiting, access needs; In Action's 25 are on all 3 days
        ("3 of 3", "2", "0"),
        ("0 of 30", "0", "0"),
        ("25 of 30", "0", "1"),
        ("25 of 30", "0", "1"),
        ("25 of 30", "0", "1"),
    ]
    assert "(Day 2 of 3)" in result.output
    assert "15:00" not in result.output and "13:00" in result.output
    with open(out / "equip-basics_2019-06-27.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Status"] for r in rows] == ["confirmed"] * 3 + ["waiting"] * 2
    assert {r["QI level"] for r in rows} == {"none"}

    again = run("roster", str(signed_up), "--out", str(out), db=sqlite_url)
    assert again.exit_code == 0 and len(list(out.iterdir())) == 15  # rewritten, not added


def test_one_session_by_id_into_the_default_folder(signed_up, sqlite_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("roster", "2019-04-equip-training", "--session", "2019-09-17", db=sqlite_url)
    assert result.exit_code == 0, result.output
    folder = tmp_path / "rosters" / "2019-04-equip-training"
    assert sorted(p.name for p in folder.iterdir()) == [
        "equip-in-action_2019-09-17.csv",
        "equip-in-action_2019-09-17.xlsx",
        "equip-in-action_2019-09-17_sign-in.html",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--session", "2019-06-28"],
            "Error: campaign 2019-04-equip-training has no session '2019-06-28'\n"
            "Hint: Its sessions: equip-basics@2019-06-27, equip-basics@2019-09-10, "
            "equip-in-action@2019-06-13, equip-in-action@2019-07-09, equip-in-action@2019-09-17.",
        ),
    ],
)
def test_an_unknown_session_lists_the_known_ones(signed_up, sqlite_url, args, expected):
    result = run("roster", str(signed_up), *args, db=sqlite_url)
    assert result.exit_code == 1
    assert expected in " ".join(result.output.split("\n ")).replace("\n  ", " ")


def test_a_campaign_not_sent_yet_says_so_and_makes_no_database(demo_path, tmp_path):
    db = tmp_path / "none.db"
    result = run("roster", str(demo_path), db=f"sqlite:///{db}")
    assert result.exit_code == 1
    assert "campaign 2019-04-equip-training has not been sent yet" in result.output
    assert not db.exists()
    unknown = run("roster", "2018-01-nope", db=f"sqlite:///{tmp_path / 'other.db'}")
    assert unknown.exit_code == 1 and "has not been sent yet" in unknown.output


def test_an_unknown_campaign_id_names_the_known_ones(signed_up, sqlite_url):
    result = run("roster", "2018-01-nope", db=sqlite_url)
    assert result.exit_code == 1
    assert "there is no campaign '2018-01-nope' in the database" in result.output
    assert "Campaigns in the database: 2019-04-equip-training." in result.output


def print_to_pdf(page: Path, pdf: Path) -> Path:
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="equip-chromium-") as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                f"--user-data-dir={profile}",
                "--no-pdf-header-footer",
                f"--print-to-pdf={pdf}",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=90,
            check=False,
        )
    assert pdf.is_file(), "chromium printed no PDF"
    return pdf


def test_the_sign_in_sheet_prints_on_a4_with_the_trainers_page_apart(
    signed_up, sqlite_url, tmp_path
):
    out = tmp_path / "rosters"
    result = run(
        "roster", str(signed_up), "--session", "2019-06-13", "--out", str(out), db=sqlite_url
    )
    assert result.exit_code == 0, result.output
    pdf = PdfReader(
        print_to_pdf(out / "equip-in-action_2019-06-13_sign-in.html", tmp_path / "sheet.pdf")
    )
    sizes = {(round(float(p.mediabox.width)), round(float(p.mediabox.height))) for p in pdf.pages}
    assert sizes == {(595, 842)}  # A4 in points
    texts = [" ".join(p.extract_text().split()) for p in pdf.pages]
    *sheet, trainer = texts
    assert len(sheet) >= 2  # 25 long names with room to sign do not fit one page
    assert all("Name Practice Role Signature" in t for t in sheet)  # the header on every page
    assert all(f"Page {i} of {len(texts)}" in t for i, t in enumerate(texts, start=1))
    for i in range(25):  # everyone once, each name whole on its page
        assert sum(f"Reader Number{i} With" in t for t in sheet) == 1
    assert "For the trainer: EQUIP in Action, 2019-06-13" in trainer
    assert "EQUIP in Action · 2019-06-13" in trainer  # the footer, from the CSS string
    assert not any("For the trainer" in t for t in sheet)
    assert "Hearing loop" in trainer and not any("Hearing loop" in t for t in sheet)


def test_roster_from_another_folder_reads_the_store_of_the_specs_project(
    signed_up, sqlite_url, tmp_path, tmp_path_factory, monkeypatch
):
    """The spec's project names the store (equip-mailer.toml); the current folder does not."""
    (tmp_path / "equip-mailer.toml").write_text(f'database_url = "{sqlite_url}"\n')
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # no project at or above it
    out = tmp_path / "rosters"
    result = CliRunner().invoke(
        main, ["roster", str(signed_up), "--out", str(out)], env={"EQUIP_DATABASE_URL": None}
    )
    assert result.exit_code == 0, result.output
    assert f"Project {tmp_path}" in result.output
    assert (out / "equip-basics_2019-06-27.csv").exists()
