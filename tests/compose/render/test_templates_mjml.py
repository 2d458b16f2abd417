"""The templates are valid MJML by the reference validator, not only by mjml-python.

mjml-python (a Rust port) quietly drops attributes it does not know and passes unknown tags
through; the npm ``mjml`` package's validator at strict level is the authority, so each demo
segment's MJML (the Jinja step alone) goes through it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from equip_mailer.compose.render.pipeline import render_mjml
from equip_mailer.compose.spec import load_campaign

ROOT = Path(__file__).resolve().parents[3]
MJML_CLI = ROOT / "tests" / "js" / "node_modules" / ".bin" / "mjml"
DEMO = load_campaign(ROOT / "campaigns" / "2019-04-equip-training.yaml", allow_past=True)


def validate(path: Path) -> subprocess.CompletedProcess:
    if not MJML_CLI.exists() or not shutil.which("node"):
        pytest.skip(
            "the npm MJML validator is not installed (tests/setup-system.sh installs it "
            "into tests/js/node_modules)"
        )
    return subprocess.run(
        [str(MJML_CLI), "--validate", str(path), "--config.validationLevel=strict"],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("segment_id", [s.id for s in DEMO.segments])
def test_each_segment_is_valid_mjml_at_strict_level(segment_id, tmp_path):
    path = tmp_path / f"{segment_id}.mjml"
    path.write_text(render_mjml(DEMO, segment_id), encoding="utf-8")
    result = validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_does_reject_what_mjml_python_lets_through(tmp_path):
    """Guards the test above: strict validation fails on an attribute mjml-python ignores."""
    source = render_mjml(DEMO, "project-leads").replace(
        "<mj-button ", '<mj-button aria-label="x" ', 1
    )
    path = tmp_path / "bad.mjml"
    path.write_text(source, encoding="utf-8")
    result = validate(path)
    assert result.returncode != 0
    assert "Attribute aria-label is illegal" in result.stdout + result.stderr
