"""Helpers for render tests: variants of the demo project as real files (the spec or a
template edited), a reader, a rendered mail's plain link URLs and a section of one part."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from equip_mailer.compose.audience import Recipient
from equip_mailer.compose.render.personalisation import RenderedSegment

ROOT = Path(__file__).resolve().parents[2]


def make_project(tmp_path: Path, change=None, templates=None) -> Path:
    """A copy of the demo project: the spec edited by ``change(dict)``, templates by
    ``templates(folder)``. Returns the spec's path."""
    spec = yaml.safe_load(
        (ROOT / "campaigns" / "2019-04-equip-training.yaml").read_text(encoding="utf-8")
    )
    if change:
        change(spec)
    (tmp_path / "campaigns").mkdir()
    path = tmp_path / "campaigns" / "variant.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    if templates:
        templates(tmp_path / "templates")
    return path


def edit_template(folder: Path, name: str, old: str, new: str) -> int:
    """Replace ``old`` (once) in a template; return the 1-based line where ``new`` starts."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) >= 1, f"{old!r} not in {name}"
    at = text.index(old)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")
    return text[:at].count("\n") + 1


def reader(**overrides) -> Recipient:
    values = {
        "email": "ann.example@example.org",
        "first_name": "Ann",
        "last_name": "Example",
        "practice": "Example Practice",
        "role": "Practice nurse",
        "qi_level": "none",
        "source": "lists/practice-staff.csv:2",
    }
    values.update(overrides)
    return Recipient(**values)


def plain_urls(mail: RenderedSegment) -> dict[str, str]:
    return {link.key: link.url for link in mail.links}


def section(text: str, start: str, end: str | None) -> str:
    """The part of ``text`` from heading ``start`` to heading ``end``."""
    a = text.index(start)
    b = text.index(end, a) if end else len(text)
    return text[a:b]
