"""Reading one setting's value by its kind, with an error that names where it came from.

A value arrives as a string from the environment or typed from TOML; each kind turns it
into what the code uses (a number, a path under the project root, a database URL the
installed driver takes) or fails in one sentence naming the variable or the file and line.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

from .errors import ConfigError, EquipError
from .project import Project

_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}")


def whole_number_env(env: Mapping[str, str], var: str, lo: int, hi: int) -> int | None:
    """A tuning variable's whole number from ``lo`` to ``hi``; None when unset or blank."""
    raw = env.get(var, "").strip()
    if not raw:
        return None
    try:
        n = int(raw) if raw.isascii() else lo - 1
    except ValueError:
        n = lo - 1
    if not lo <= n <= hi:
        raise EquipError(f"{var} must be a whole number from {lo} to {hi}, not {env[var]!r}")
    return n


def _fail(where: str, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(message, where=where, hint=hint)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"must be text in quotes, not {value!r}")
    return value.strip()


def _url(value: Any, where: str, project: Project | None) -> str:
    text = _text(value, where).rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises only when read
    except ValueError:  # "http://[::1" (an unclosed IPv6 bracket), "https://host:80a"
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(
            where,
            f"{text!r} is not an absolute URL (it must start with https://, e.g. "
            "https://equip.example.org)",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise _fail(where, f"{text!r} must be a plain address, without ?query, #part or user@")
    return text


def _domain(value: Any, where: str, project: Project | None) -> str:
    text = _text(value, where).lower().rstrip(".")
    if not _HOSTNAME.fullmatch(text) or "." not in text:
        raise _fail(where, f"{text!r} is not a domain name (e.g. equip.example.org)")
    return text


def _path(value: Any, where: str, project: Project | None) -> Path:
    if not isinstance(value, str | Path) or not str(value).strip():
        raise _fail(where, f"must be a folder path in quotes, not {value!r}")
    p = Path(str(value).strip()).expanduser()
    return project.path(p) if project is not None else p


def _seconds(value: Any, where: str, project: Project | None) -> float:
    try:
        n = float(value)
    except (TypeError, ValueError):
        n = -1.0
    if not n > 0 or isinstance(value, bool):
        raise _fail(where, f"must be a number of seconds above 0, not {value!r}")
    return n


def _int(value: Any, where: str, project: Project | None) -> int:
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise _fail(where, f"must be a whole number, not {value!r}") from None


def _bool(value: Any, where: str, project: Project | None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise _fail(where, f"must be true or false, not {value!r}")


def _list(value: Any, where: str, project: Project | None) -> tuple[str, ...]:
    """A list of strings: a TOML array, or a comma-separated environment variable."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise _fail(where, f"must be a list of text values, not {value!r}")
    return tuple(i.strip() for i in items if i.strip())


def _emails(value: Any, where: str, project: Project | None) -> tuple[str, ...]:
    """Addresses from a TOML list or "a@x.org, b@y.org" (commas or semicolons), lower-cased
    and de-duplicated; anything that is not an address is an error naming it."""
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    found: list[str] = []
    for item in items:
        address = str(item).strip().lower()
        if not address:
            continue
        local, _, domain = address.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            raise _fail(
                where,
                f"{str(item).strip()!r} is not an email address",
                hint="List the addresses separated by commas, e.g. "
                "ann@nhs.example,bob@nhs.example (or a TOML list in a file).",
            )
        if address not in found:
            found.append(address)
    return tuple(found)


def masked_url(url: str) -> str:
    """A database URL as it may be printed: the password replaced by ***."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(not a database URL)"


SUPPORTED_DATABASES = "sqlite:///path/to/file.db or postgresql://user@host/database"


def _database(value: Any, where: str, project: Project | None) -> str:
    """postgres:// and postgresql:// normalised to the installed driver (psycopg 3); a
    relative SQLite path taken from the project root, its folder required to exist."""
    text = _text(value, where)
    try:
        url = sa.engine.make_url(text)
    except sa.exc.ArgumentError:
        raise _fail(
            where,
            "the value is not a database URL",
            hint=f"Use {SUPPORTED_DATABASES}.",
        ) from None
    shown = url.render_as_string(hide_password=True)
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    if url.drivername not in ("sqlite", "sqlite+pysqlite"):
        raise _fail(
            where,
            f"{shown} is not a database equip-mailer can use (only SQLite and PostgreSQL)",
            hint=f"Use {SUPPORTED_DATABASES}.",
        )
    if not url.database or url.database == ":memory:":
        return text
    path = Path(url.database).expanduser()
    if not path.is_absolute() and project is not None:
        path = project.path(path)
    if not path.parent.is_dir():
        raise _fail(
            where,
            f"the folder {path.parent} for the SQLite database does not exist",
            hint="Create the folder, or correct the path.",
        )
    return url.set(database=str(path)).render_as_string(hide_password=False)


KINDS: dict[str, Callable[[Any, str, Project | None], Any]] = {
    "str": lambda value, where, _project: _text(value, where),
    "url": _url,
    "domain": _domain,
    "path": _path,
    "seconds": _seconds,
    "int": _int,
    "bool": _bool,
    "list": _list,
    "emails": _emails,
    "database": _database,
}


def read(kind: str, value: Any, where: str, project: Project | None) -> Any:
    return KINDS[kind](value, where, project)


def secret_part(kind: str, value: Any) -> str | None:
    """The part of a non-secret setting that is secret (a password in a database URL)."""
    if kind == "database" and isinstance(value, str):
        try:
            return "a password" if sa.engine.make_url(value).password else None
        except sa.exc.ArgumentError:
            return None
    return None


def line_of(text: str, key: str) -> int:
    """The line where a top-level TOML key is set (1 when it cannot be found)."""
    pattern = re.compile(rf"^\s*(?:\[+\s*)?[\"']?{re.escape(key)}[\"']?\s*(?:=|\])")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return 1


def did_you_mean(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
