"""Outlook for Windows lays the email out from MJML's "ghost tables" (the tables inside
``<!--[if mso | IE]>`` comments), not from the responsive divs everyone else reads; so their
widths must be the ones the reference compiler, npm ``mjml``, would write. mjml-python once
made the course cards' column 600px where npm mjml makes it 552px (a section padding starting
with a bare ``0``), a card wider than its section in Outlook only. Every segment's ghost
tables are compared, width by width, with npm mjml's output for the same MJML.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from equip_mailer.compose.render.mjml_compile import compile_mjml
from equip_mailer.compose.render.pipeline import render_mjml

ROOT = Path(__file__).resolve().parents[3]
MJML_CLI = ROOT / "tests" / "js" / "node_modules" / ".bin" / "mjml"

_GHOST = re.compile(r"<!--\[if mso \| IE\]>(.*?)<!\[endif\]-->", re.DOTALL)
_TAG = re.compile(r"<(table|td)\b([^>]*)>", re.IGNORECASE)
_STYLE_WIDTH = re.compile(r"(?<![-\w])width:\s*(\d+(?:\.\d+)?)px")
_ATTR_WIDTH = re.compile(r'\bwidth="(\d+)"')


def ghost_widths(html: str) -> list[str]:
    """Each Outlook-only table and cell that sets a width, in document order: 'td:552'."""
    out = []
    for block in _GHOST.findall(html):
        for tag, attrs in _TAG.findall(block):
            found = _STYLE_WIDTH.search(attrs) or _ATTR_WIDTH.search(attrs)
            if found:
                out.append(f"{tag.lower()}:{found.group(1)}")
    return out


def npm_mjml(source: str, tmp_path: Path) -> str:
    if not MJML_CLI.exists() or not shutil.which("node"):
        pytest.skip(
            "npm mjml is not installed "
            "(tests/setup-system.sh installs it into tests/js/node_modules)"
        )
    path = tmp_path / "segment.mjml"
    path.write_text(source, encoding="utf-8")
    done = subprocess.run(
        [str(MJML_CLI), str(path), "-s"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("segment_id", ["getting-started", "ready-for-action", "project-leads"])
def test_outlook_ghost_tables_match_npm_mjml(demo, rendered, segment_id, tmp_path):
    reference = ghost_widths(npm_mjml(render_mjml(demo, segment_id), tmp_path))
    ours = ghost_widths(rendered[segment_id].html)  # after premailer, as sent
    assert ours == reference
    # Every course card's column sits inside its section's 24px side padding.
    assert "td:552" in reference and "td:600" in reference


def test_a_bare_zero_padding_is_what_made_the_widths_differ(demo, tmp_path):
    """Guards the test above: the trap is still there in mjml-python, so the comparison
    catches it if a template brings it back."""
    source = render_mjml(demo, "getting-started").replace(
        'padding="0px 24px 16px"', 'padding="0 24px 16px"'
    )
    assert 'padding="0 24px 16px"' in source
    ours = ghost_widths(compile_mjml(source, lambda offset: "segment"))
    assert ours != ghost_widths(npm_mjml(source, tmp_path))
    assert "td:552" not in ours
