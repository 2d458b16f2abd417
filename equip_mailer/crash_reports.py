"""The "details for the developers" file written when a command fails unexpectedly.

What a developer needs is where it failed: the chain of exception types and, for each, the
stack of files, lines, functions and source lines. What must not be in it is anything about
people: an exception's message can carry a list row, and SQLAlchemy's carries the SQL
parameters (addresses, names, practices). So the file holds the stack and the types only;
of a message it keeps the SQL statement (placeholders, never parameters) and nothing else.
"""

from __future__ import annotations

import platform
import re
import sys
import tempfile
import traceback
from pathlib import Path

# A statement as SQLAlchemy quotes it, up to the parameters it appends after it.
_SQL = re.compile(r"\[SQL: (?P<sql>.*?)\]", re.DOTALL)


def _safe_message(exc: BaseException) -> str:
    """What of ``exc``'s message can be kept: a SQL statement's text, or nothing."""
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        return f"SQL: {' '.join(statement.split())[:2000]}"
    found = _SQL.search(str(exc)) if type(exc).__module__.startswith("sqlalchemy") else None
    return f"SQL: {' '.join(found['sql'].split())[:2000]}" if found else "(message withheld)"


def describe(exc: BaseException) -> str:
    """The failure as a traceback without messages: each exception's type and stack."""
    from equip_mailer import __version__

    lines = [
        f"equip-mailer {__version__}, Python {platform.python_version()} on {sys.platform}",
        "Exception messages are withheld: they may hold personal data.",
        "",
    ]
    te = traceback.TracebackException.from_exception(exc, capture_locals=False)
    chain: list[tuple[traceback.TracebackException, BaseException]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    tec: traceback.TracebackException | None = te
    while current is not None and tec is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((tec, current))
        if current.__cause__ is not None:
            current, tec = current.__cause__, tec.__cause__
        elif current.__context__ is not None and not current.__suppress_context__:
            current, tec = current.__context__, tec.__context__
        else:
            break
    for depth, (tec, current) in enumerate(reversed(chain)):
        if depth:
            lines.append("\nwhich led to:\n")
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in tec.stack.format())
        kind = type(current)
        lines.append(f"{kind.__module__}.{kind.__qualname__}: {_safe_message(current)}")
    return "\n".join(lines) + "\n"


def write(exc: BaseException) -> Path | None:
    """Write ``describe(exc)`` to a new file (mode 600) in the temporary folder."""
    try:
        fd, name = tempfile.mkstemp(prefix="equip-mailer-error-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(describe(exc))
        return Path(name)
    except OSError:
        return None
