"""``equip-mailer preview``: each segment's email as a reader will see it, in files to open.

Driven end to end with click's CliRunner into tmp_path, then looked at in Debian's headless
Chromium at phone (375 px) and desktop (600 px) widths.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from support.browser import ink_stats, require_chromium, screenshot

from equip_mailer.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "campaigns" / "2019-04-equip-training.yaml"
SEGMENTS = ["getting-started", "ready-for-action", "project-leads"]
FEATURED = {
    "getting-started": "EQUIP Basics",
    "ready-for-action": "EQUIP in Action",
    "project-leads": "Data masterclass",
}


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def previews(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("preview")
    result = run("preview", str(DEMO), "--allow-past", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_preview_writes_html_and_text_for_every_segment(tmp_path):
    out = tmp_path / "preview"
    result = run("preview", str(DEMO), "--allow-past", "--out", str(out))
    assert result.exit_code == 0, result.output
    paths = [str(out / f"{s}.{ext}") for s in SEGMENTS for ext in ("html", "txt")]
    first, *lines = result.output.splitlines()
    assert first.startswith("Project ") and " · store sqlite:///" in first  # which project
    assert lines[:6] == paths
    assert "Nothing was sent." in result.output
    for segment in SEGMENTS:
        html = (out / f"{segment}.html").read_text(encoding="utf-8")
        text = (out / f"{segment}.txt").read_text(encoding="utf-8")
        assert not re.search(r"-eqt?_\w+-", html + text), "a token was left unfilled"
        assert FEATURED[segment] in html and FEATURED[segment].upper() in text
        # Links go straight to their pages (an external page with UTM, or our open sign-up
        # page for a course taken here); the unsubscribe link is a placeholder.
        assert (
            "/join/2019-04-equip-training/" in html or "https://equip.example.org/courses/" in html
        )
        assert "/c/" not in html
        assert 'href="#unsubscribe-preview"' in html


def test_preview_is_personalised_for_the_first_reader_on_the_lists(previews):
    html = (previews / "getting-started.html").read_text(encoding="utf-8")
    # lists/practice-staff.csv: the first reader new to QI is Vik, at Tower View Surgery.
    assert "Dear Vik," in html
    assert "Dear Vik," in (previews / "getting-started.txt").read_text(encoding="utf-8")


def test_preview_of_one_segment(tmp_path):
    result = run(
        "preview", str(DEMO), "--allow-past", "--out", str(tmp_path), "--segment", "project-leads"
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".previews.json",  # which files each campaign's previews wrote (see below)
        "project-leads.html",
        "project-leads.txt",
    ]


def test_a_segment_renamed_since_the_last_preview_leaves_no_stale_file(tmp_path):
    """Found in the audit: after a segment's id changed, preview/<old id>.html stayed
    beside the new one, to be opened as this campaign's mail. A preview of every segment
    deletes what an earlier preview of the campaign wrote and this one did not; files it
    did not write stay."""
    project = tmp_path / "project"
    for part in ("campaigns", "lists", "templates"):
        shutil.copytree(ROOT / part, project / part)
    spec = project / "campaigns" / DEMO.name
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert run("preview", str(spec), "--allow-past", "--out", str(out)).exit_code == 0
    spec.write_text(
        spec.read_text(encoding="utf-8").replace("id: project-leads", "id: qi-project-leads"),
        encoding="utf-8",
    )

    result = run("preview", str(spec), "--allow-past", "--out", str(out))

    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir() if p.suffix in (".html", ".txt"))
    assert names == sorted(
        [f"{s}.{x}" for s in ("getting-started", "ready-for-action", "qi-project-leads")
         for x in ("html", "txt")] + ["notes.txt"]
    )  # fmt: skip
    assert (
        f"Removed {out / 'project-leads.html'}: an earlier preview of a segment this campaign "
        "no longer has." in " ".join(result.output.split())
    )


def test_an_empty_segment_is_shown_for_a_sample_reader(tmp_path):
    spec = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    spec["lists"] = {"files": ["lists/staff.csv"], "suppressions": None}
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "staff.csv").write_text(
        "email,first_name,last_name,practice,role,qi_level\n"
        "ann.example@example.org,Ann,Example,Example Surgery,Practice nurse,none\n",
        encoding="utf-8",
    )
    spec_path = tmp_path / "campaigns" / "one-reader.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")

    result = run("preview", str(spec_path), "--allow-past", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert "Dear Ann," in (tmp_path / "out" / "getting-started.html").read_text(encoding="utf-8")
    assert "Dear Sam," in (tmp_path / "out" / "project-leads.html").read_text(encoding="utf-8")
    assert (
        "no one on the lists in ready-for-action, project-leads; shown for a sample reader, "
        "Sam Example." in " ".join(result.output.split())
    )


def test_an_unknown_segment_is_one_plain_sentence(tmp_path):
    result = CliRunner().invoke(
        main,
        ["preview", str(DEMO), "--allow-past", "--out", str(tmp_path), "--segment", "everyone"],
    )
    assert result.exit_code == 1
    assert (
        "Error: campaigns/2019-04-equip-training.yaml: there is no segment 'everyone'; the "
        "segments are getting-started, ready-for-action, project-leads"
        in " ".join(result.output.split())
    )
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_preview_without_allow_past_says_how_to_carry_on(tmp_path):
    result = CliRunner().invoke(main, ["preview", str(DEMO), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "is in the past" in result.output
    assert "Hint: Use --allow-past" in result.output


def test_preview_help_shows_an_example():
    result = run("preview", "--help")
    assert result.exit_code == 0
    assert (
        "Example:\n    equip-mailer preview campaigns/2019-04-equip-training.yaml --allow-past"
        in result.output
    )


# ---------------------------------------------------------------------------------------
# In a browser


@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("segment", SEGMENTS)
def test_preview_looks_like_a_newsletter(previews, tmp_path, segment, width):
    png = screenshot(previews / f"{segment}.html", tmp_path / f"{segment}-{width}.png", width)
    stats = ink_stats(png)
    assert stats["width"] == width
    assert stats["ink_share"] > 0.05, stats  # not a blank page
    assert stats["colours"] > 20, stats  # text, blue header, green buttons, cards


def dump_dom(page: Path, width: int) -> str:
    """The page's DOM after Chromium has laid it out at ``width`` CSS pixels."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="equip-chromium-") as profile:
        proc = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},1400",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


PROBE = """
addEventListener("load", () => {
  const doc = document.getElementById("email").contentDocument;
  const button = [...doc.querySelectorAll("a")].find(a => a.textContent.trim().startsWith("Sign up"));
  document.body.dataset.scrollWidth = doc.documentElement.scrollWidth;
  document.body.dataset.buttonWidth = button ? Math.round(button.getBoundingClientRect().width) : 0;
  document.body.dataset.firstCourse = doc.querySelector("h3.course-name").textContent;
});
"""  # noqa: E501 - JavaScript for the page


@pytest.mark.parametrize("segment", SEGMENTS)
def test_the_course_menu_fits_a_phone_screen(previews, tmp_path, segment):
    """At 375 px nothing sticks out sideways, and the featured course and its button show.

    Headless Chromium will not lay a window out narrower than 500 px, so the email goes in
    a 375 px frame, as a phone's mail app would show it.
    """
    email = (previews / f"{segment}.html").read_text(encoding="utf-8")
    page = tmp_path / "phone.html"
    page.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe id="email" '
        f'style="width:375px;height:1400px;border:0" srcdoc="{html_lib.escape(email)}">'
        f"</iframe><script>{PROBE}</script></body></html>",
        encoding="utf-8",
    )
    dom = dump_dom(page, 600)
    body = re.search(r"<body[^>]*>", dom).group(0)
    assert int(re.search(r'data-scroll-width="(\d+)"', body).group(1)) <= 375
    assert int(re.search(r'data-button-width="(\d+)"', body).group(1)) >= 120  # easy to tap
    assert re.search(r'data-first-course="([^"]*)"', body).group(1) == FEATURED[segment]
