"""Mailing-list files for tests: real files in tmp_path, written as an export would be."""

from __future__ import annotations

from pathlib import Path

HEADER = "email,first_name,last_name,practice,role,qi_level"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path
