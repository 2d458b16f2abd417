"""Campaign spec files for tests: the demo spec edited the way a person might, and the
problems ``load_campaign`` reports for a file, without the file name in front."""

from __future__ import annotations

from pathlib import Path

import pytest

from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import SpecError


def edited(tmp_path: Path, demo_path: Path, *replacements: tuple[str, str]) -> Path:
    """The demo spec with each (old, new) replaced once, saved under tmp_path/campaigns."""
    text = demo_path.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "campaigns" / "edited.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path, **options) -> list[str]:
    with pytest.raises(SpecError) as exc:
        load_campaign(path, **options)
    return [p.removeprefix(f"{path}:").lstrip() for p in exc.value.problems]
