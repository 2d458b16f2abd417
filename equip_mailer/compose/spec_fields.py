"""The field types every part of a campaign spec shares: QI levels, slugs, placeholders,
addresses, web addresses, and the rule that no text carries a control character.

Each check says in plain words what is wrong with one value; ``spec`` turns the message into
``file:line``. Kept apart from the models so ``campaign`` and ``courses`` read as the spec's
format and nothing else.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ValidationInfo,
    field_validator,
    model_validator,
)

QILevel = Literal["none", "basics", "project"]
QI_LEVELS: tuple[str, ...] = ("none", "basics", "project")
QI_LEVEL_NAMES = {
    "none": "new to QI",
    "basics": "basic QI knowledge",
    "project": "basic QI knowledge and a QI project",
}


def level_rank(level: str) -> int:
    return QI_LEVELS.index(level)


SLUG = r"^[a-z0-9][a-z0-9_-]{0,79}$"
LIST_ID = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"  # a DNS label: List-Id's first part
LONGEST = {SLUG: 80, LIST_ID: 63}  # what each pattern allows at most, for the error

# What may stand in braces in the text a reader sees. Each reader's own values are filled at
# send time; each segment's at render time ("EQUIP Basics and EQUIP in Action", "two").
READER_PLACEHOLDERS = ("first_name", "practice")
SEGMENT_PLACEHOLDERS = ("open_courses", "open_count")
PLACEHOLDER_RE = re.compile(r"\{([^{}\s]*)\}")


def _known_placeholders(value: str | None) -> str | None:
    """Refuse ``{anything}`` that is not a placeholder: it would reach readers as written."""
    if value is None:
        return value
    unknown = [m.group(1) for m in PLACEHOLDER_RE.finditer(value)]
    unknown = [name for name in unknown if name not in READER_PLACEHOLDERS + SEGMENT_PLACEHOLDERS]
    if unknown:
        known = [f"{{{p}}}" for p in READER_PLACEHOLDERS + SEGMENT_PLACEHOLDERS]
        raise ValueError(
            f"{{{unknown[0]}}} is not a placeholder; the placeholders are "
            + ", ".join(known[:-1])
            + f" and {known[-1]}"
        )
    return value


Text = Annotated[str, AfterValidator(_known_placeholders)]


def _check_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid address ({exc})") from None


def _check_url(value: str) -> str:
    value = value.strip()
    # Browsers read "\\" as "/" and "user@" as a login, so https://equip.example.org\\@evil.example/x
    # passes a look (and the pattern below) yet opens evil.example: refuse both outright.
    if _CONTROL_CHARS.search(value):
        raise ValueError(f"{value!r} contains a control character; web addresses cannot")
    if "\\" in value:
        raise ValueError(f"{value!r} contains a backslash (\\), which browsers read as /")
    authority = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)", value)
    if authority and "@" in authority.group(1):
        raise ValueError(
            f"{value!r} has a user name before @ in its address, which sends readers to "
            "the host after the @; give the plain address"
        )
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+", value) and not re.match(
        r"^https?://(localhost|127\.0\.0\.1)(:\d+)?(/|$)", value
    ):
        raise ValueError(f"{value!r} is not a web address (it must start with https://)")
    if re.search(r"\s", value):
        raise ValueError(f"{value!r} contains spaces; web addresses cannot")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
Url = Annotated[str, AfterValidator(_check_url)]


# Control characters have no place in a spec: in a header a CR or LF starts a new header
# (and the outbox refused the whole batch half way); elsewhere they break MJML and the
# terminal. Tab and line feed stay allowed in Markdown text; fields that end up in a mail
# header or on one line of a table (``ONE_LINE``) take no line break at all.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]")


def _plain_text(value: Any, one_line: bool) -> Any:
    if isinstance(value, list | tuple):
        for item in value:
            _plain_text(item, one_line)
        return value
    if not isinstance(value, str):
        return value
    if one_line and (found := _LINE_BREAKS.search(value)):
        raise ValueError(
            f"contains a line break ({found.group()!r}); this text must be on one line "
            "(it goes into a mail header or a table row)"
        )
    if found := _CONTROL_CHARS.search(value):
        raise ValueError(
            f"contains the control character {found.group()!r}, which cannot be shown; "
            "delete it (it often comes with text pasted from another program)"
        )
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    ONE_LINE: ClassVar[frozenset[str]] = frozenset()

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        return _plain_text(value, info.field_name in cls.ONE_LINE)


class Address(Strict):
    ONE_LINE = frozenset({"name"})

    email: Email
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        # Accept "EQUIP <equip@example.org>" or a bare address as well as a mapping.
        if isinstance(value, str):
            m = re.match(r"^\s*(.*?)\s*<([^>]+)>\s*$", value)
            return {"name": m.group(1) or None, "email": m.group(2)} if m else {"email": value}
        return value

    def formatted(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email
