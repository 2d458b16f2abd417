"""Hand-edited text files (campaign specs, templates) saved in the wrong encoding.

Notepad's "ANSI" and Excel's habits leave Windows-1252 bytes (a £, a curly apostrophe) in a
file that must be UTF-8. Saying only "not UTF-8" leaves the person searching a long file,
so the problem names the line and the character as Windows shows it.
"""

from __future__ import annotations

from pathlib import Path

READ_AT_MOST = 4 * 1024 * 1024  # enough for any spec or template; larger files are refused


def not_utf8(path: Path) -> tuple[int | None, str]:
    """(line, problem) for a file that is not UTF-8: the line where it first stops being
    UTF-8 and the character as Windows shows it, or (None, ...) when it is UTF-16 (Windows'
    "Unicode text") or no line can be told."""
    with path.open("rb") as f:
        data = f.read(READ_AT_MOST)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None, "is UTF-16 text (Unicode text); save it as UTF-8"
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        char = data[exc.start : exc.start + 1].decode("cp1252", "replace")
        seen = f" at {char!r}" if char.isprintable() and char != "\ufffd" else ""
        return line, (
            f"is not UTF-8 text{seen} (saved as Windows-1252 or ANSI?); save the file as UTF-8"
        )
    return None, "is not UTF-8 text; save it as UTF-8"


def place(shown: str, line: int | None) -> str:
    """``file:line`` as messages name a place, or just the file."""
    return f"{shown}:{line}" if line else shown
