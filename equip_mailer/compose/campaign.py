"""The campaign a spec describes: courses, sessions, segments and options as pydantic models.

These models are the contract between the YAML a commissioning manager writes and every later
step. Each check that one field or one object can make lives here, next to the field, and
says in plain words what is wrong; turning those messages into ``file:line`` is the job of
``spec``, which reads the YAML. The file runs past 400 lines on purpose: it is the spec's
whole format, read top to bottom; should courses grow further (sign-ups), ``Session`` and
``Course`` are the part to move into a module of their own.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
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


class Session(Strict):
    ONE_LINE = frozenset({"venue"})

    date: dt.date
    start: dt.time
    end: dt.time
    venue: str | None = None
    sign_up_url: Url | None = None
    # Capacity for a course signed up for here (``sign_up: equip``); absent = unlimited.
    places: Annotated[int, Field(ge=1, le=100_000)] | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            raise ValueError(f"{value} is a date and time; give the date alone (YYYY-MM-DD)")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        # People write 9:00 and 9.00; pydantic only takes 09:00. Unquoted, YAML reads 9.30
        # as the number 9.3, and pydantic would read a number as seconds past midnight (UTC).
        if isinstance(value, float):
            value = f"{value:.2f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"{value} is not a time (use HH:MM, e.g. 13:00)")
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d{1,2})[:.](\d{2})\s*", value)
            if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
                return dt.time(int(m.group(1)), int(m.group(2)))
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: dt.time) -> dt.time:
        # A zone on one time only would make start and end incomparable (a TypeError).
        if value.tzinfo is not None:
            raise ValueError(f"{value} has a time zone; give the local time alone (HH:MM)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Session:
        if self.end <= self.start:
            raise ValueError(
                f"ends at {self.end:%H:%M}, which is not after its start {self.start:%H:%M}"
            )
        return self

    @property
    def key(self) -> str:
        return self.date.isoformat()


class Course(Strict):
    ONE_LINE = frozenset({"id", "name", "format"})

    id: Annotated[str, Field(pattern=SLUG)]
    name: str
    format: str  # "Half-day training", "3-day action learning set"
    blurb: Text  # short Markdown
    who_can_register: str
    requires: QILevel = "none"  # lowest QI level that may attend
    leads_to: QILevel | None = None  # level a reader has after completing it
    attendance: str | None = None  # "You will need to attend all 3 days."
    # Required with two or more sessions (see _schedule_said): a forgotten attend_all would
    # otherwise say "Choose a date" above the days everyone must attend.
    schedule: Literal["choose_one", "attend_all"] = "choose_one"
    delivered_by: str | None = None
    sign_up_url: Url | None = None  # one link for the course, or one per session
    # "equip": readers sign up on our own pages (places, waiting list, confirmations);
    # otherwise sign_up_url names an external booking page.
    sign_up: Literal["equip"] | None = None
    waiting_list: bool = True  # when every place is taken, take names in order (hosted only)
    sessions: list[Session] = []
    # Dates not set yet: no sessions, and the email says "Dates to be confirmed" with a
    # button to register interest at sign_up_url.
    dates_tbc: bool = False
    # Sign-up deadline (hosted only) as a London wall-clock time; a bare date in the spec
    # means the end of that day. Absent: the first session's start (see ``closes_local``).
    closes: dt.datetime | None = None

    @field_validator("sign_up", mode="before")
    @classmethod
    def _equip_or_nothing(cls, value: Any) -> Any:
        if value is not None and value != "equip":
            shown = (
                {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
            )
            raise ValueError(
                f"{shown!r} is not 'equip': write sign_up: equip to take sign-ups on our own "
                "pages, or leave it out and give a sign_up_url"
            )
        return value

    @field_validator("waiting_list", "closes", mode="before")
    @classmethod
    def _hosted_only(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("sign_up") != "equip":
            raise ValueError(
                "only applies to a course signed up for here (sign_up: equip); "
                "this one uses sign_up_url"
            )
        return value

    @field_validator("closes", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                raise ValueError(f"{value} has a time zone; give the London time alone")
            return value
        if isinstance(value, dt.date):  # the whole of that day
            return dt.datetime.combine(value + dt.timedelta(days=1), dt.time())
        m = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2})[:.](\d{2}))?\s*", str(value))
        try:
            if m is None:
                raise ValueError
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
            if m[4] is None:
                return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
            return dt.datetime.combine(day, dt.time(int(m[4]), int(m[5])))
        except ValueError:
            raise ValueError(
                f"{value} is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM)"
            ) from None

    @field_validator("closes")
    @classmethod
    def _before_the_end(cls, value: dt.datetime | None, info: ValidationInfo) -> Any:
        sessions = info.data.get("sessions") or []
        if value is not None and sessions:
            last = max(dt.datetime.combine(s.date, s.start) for s in sessions)
            if value > last:
                raise ValueError(
                    f"sign-ups would close at {value:%Y-%m-%d %H:%M}, after the last session "
                    f"starts ({last:%Y-%m-%d %H:%M}); close them before the course is over"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _schedule_said(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schedule" not in data:
            sessions = data.get("sessions")
            if isinstance(sessions, list) and len(sessions) >= 2:
                raise ValueError(
                    f"has {len(sessions)} sessions: add schedule: choose_one (each reader "
                    "picks one date) or schedule: attend_all (readers come to every date)"
                )
        return data

    @property
    def hosted(self) -> bool:
        """Signed up for on our own pages (places, waiting list, confirmation mail)."""
        return self.sign_up == "equip"

    @model_validator(mode="after")
    def _sign_up_somewhere(self) -> Course:
        if self.dates_tbc or not self.sessions:
            self._check_dates_tbc()
            return self
        if self.hosted:
            self._check_hosted()
        elif self.sign_up_url is None:
            missing = [i for i, s in enumerate(self.sessions) if s.sign_up_url is None]
            if missing:
                raise ValueError(
                    "needs a sign_up_url for the course, or one on every session "
                    f"(missing on sessions {', '.join(map(str, missing))})"
                )
        keys = [s.key for s in self.sessions]
        if len(set(keys)) != len(keys):
            raise ValueError("has two sessions on the same date")
        return self

    def _check_dates_tbc(self) -> None:
        if not self.dates_tbc:
            raise ValueError(
                "has no sessions: give its sessions, or write dates_tbc: true for a course "
                "whose dates are to be confirmed"
            )
        if self.sessions:
            raise ValueError(
                "has dates_tbc: true and sessions; remove dates_tbc now that the dates are set"
            )
        if self.hosted or self.sign_up_url is None:
            raise ValueError(
                "has dates to be confirmed, so readers cannot take a place yet: give a "
                "sign_up_url where they register their interest"
                + (" (instead of sign_up: equip)" if self.hosted else "")
            )

    def _check_hosted(self) -> None:
        external = ["the course"] if self.sign_up_url else []
        external += [f"sessions[{i}]" for i, s in enumerate(self.sessions) if s.sign_up_url]
        if external:
            raise ValueError(
                "is signed up for here (sign_up: equip), so it cannot also have a "
                f"sign_up_url (found on {', '.join(external)}); keep one of the two"
            )

    @property
    def closes_local(self) -> dt.datetime:
        """When sign-ups close, as a London wall-clock time: ``closes`` (a bare date means the
        end of that day), else the first session's start."""
        if self.closes is not None:
            return self.closes
        if not self.sessions:  # dates to be confirmed: never hosted, nothing to close
            return dt.datetime.max
        first = min(self.sessions, key=lambda s: (s.date, s.start))
        return dt.datetime.combine(first.date, first.start)


class Segment(Strict):
    ONE_LINE = frozenset({"id", "name", "subject", "preheader"})

    id: Annotated[str, Field(pattern=SLUG)]
    name: str
    qi_levels: Annotated[list[QILevel], Field(min_length=1)]
    # Only readers whose role is one of these (any case); leave out to take every role at
    # these levels. Lets citizens and service users get their own version of the email.
    roles: Annotated[list[str], Field(min_length=1)] | None = None
    subject: Text | None = None  # overrides the campaign subject
    preheader: Text | None = None
    intro: Text | None = None  # overrides the campaign intro (Markdown)
    locked_courses: Literal["next_step", "hide"] | None = None  # default: the campaign's

    def takes(self, level: str, role: str) -> bool:
        if level not in self.qi_levels:
            return False
        return self.roles is None or role.strip().casefold() in {
            r.strip().casefold() for r in self.roles
        }


class Tracking(Strict):
    # "equip": our own signed /c/ links and redirect; "sendgrid": SendGrid's click tracking.
    clicks: Literal["equip", "sendgrid"] = "equip"
    utm: bool = True
    utm_source: str = "equip-newsletter"
    track_other_links: bool = True  # links in intro/sign-off, not just sign-ups
    opens: bool = False  # SendGrid open pixel (unreliable; off by default)


class SendGridOptions(Strict):
    asm_group_id: int | None = None
    sandbox: bool = False
    send_at: dt.datetime | None = None  # schedule (<= 72 h ahead), cancellable
    categories: list[str] = []


class Lists(Strict):
    # Each entry a path, or {file: lists/staff.xlsx, sheet: Staff} to name a workbook's
    # sheet; read as the paths, with the sheets named in ``sheets``.
    files: Annotated[list[str], Field(min_length=1)]
    suppressions: str | None = "lists/suppressions.csv"
    max_reject_share: Annotated[float, Field(ge=0, le=1)] = 0.05  # stop if more rows are bad
    # file -> the sheet to read; a workbook without one is read from its first sheet that
    # has an email column
    sheets: dict[str, str] = {}

    @model_validator(mode="before")
    @classmethod
    def _entries_with_sheets(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("files"), list):
            return data
        files, sheets = [], dict(data.get("sheets") or {})
        for entry in data["files"]:
            if isinstance(entry, dict) and set(entry) <= {"file", "sheet"} and "file" in entry:
                files.append(entry["file"])
                if entry.get("sheet") is not None:
                    sheets[str(entry["file"])] = str(entry["sheet"])
            else:
                files.append(entry)
        return {**data, "files": files, "sheets": sheets}

    def sheet(self, file: str) -> str | None:
        """The sheet the spec names for ``file``, if any."""
        return self.sheets.get(file)


class Footer(Strict):
    ONE_LINE = frozenset({"organisation"})

    organisation: str
    address: str | None = None
    why: str  # "You get this because ..."
    # The privacy notice (what is held, why, how long): linked from every mail and sign-up
    # page; a real send refuses to go without it (send.preflight).
    privacy_url: Url | None = None


class Campaign(Strict):
    ONE_LINE = frozenset({"id", "title", "subject", "preheader", "language", "template"})

    id: Annotated[str, Field(pattern=SLUG)]
    title: str
    subject: Text
    preheader: Text
    sender: Address = Field(alias="from")
    reply_to: Address | None = None
    language: str = "en-GB"
    template: str = "course-menu"
    # The newsletter's List-Id label (RFC 2919), kept from one campaign to the next: with the
    # sender's domain it names the list ("newsletter.example.org") for filters and providers.
    list_id: Annotated[str, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")] = "newsletter"
    intro: Text  # Markdown; placeholders allowed, as in every Text field
    sign_off: Text  # Markdown
    signature: Text  # a role, not a person; a phone number in it becomes a tel: link
    links: dict[str, Url] = {}  # other links: website, contact page, ...
    footer: Footer
    lists: Lists
    segments: Annotated[list[Segment], Field(min_length=1)]
    courses: Annotated[list[Course], Field(min_length=1)]
    locked_courses: Literal["next_step", "hide"] = "next_step"
    tracking: Tracking = Tracking()
    sendgrid: SendGridOptions = SendGridOptions()

    _source: Path | None = PrivateAttr(default=None)
    _root: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The YAML file this was read from."""
        return self._source

    @property
    def root(self) -> Path:
        """Folder that relative paths (lists, templates) are resolved from: the project root
        (``equip_mailer.project``: the folder holding ``campaigns/``), found from the spec."""
        return self._root or Path.cwd()

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

    def shown(self, path: str | Path) -> str:
        """``path`` as messages name it: relative to the project root, with forward slashes."""
        try:
            return os.path.relpath(path, self.root).replace(os.sep, "/")
        except ValueError:
            return str(path)

    @property
    def shown_source(self) -> str:
        """The spec file as messages name it ("campaign" when it was not read from a file)."""
        return self.shown(self.source) if self.source else "campaign"

    def segment(self, segment_id: str) -> Segment:
        for s in self.segments:
            if s.id == segment_id:
                return s
        raise KeyError(segment_id)

    def course(self, course_id: str) -> Course:
        for c in self.courses:
            if c.id == course_id:
                return c
        raise KeyError(course_id)

    def segment_for_level(self, level: str) -> Segment | None:
        """The segment that takes every role at ``level`` (its catch-all)."""
        for s in self.segments:
            if level in s.qi_levels and s.roles is None:
                return s
        return None

    def segment_for(self, level: str, role: str) -> Segment | None:
        """A segment that names the reader's role wins over the level's catch-all."""
        for s in self.segments:
            if s.roles is not None and s.takes(level, role):
                return s
        return self.segment_for_level(level)

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        problems = []
        ids = {"courses": [c.id for c in self.courses], "segments": [s.id for s in self.segments]}
        for what, item_ids in ids.items():
            seen: dict[str, int] = {}
            for i, item_id in enumerate(item_ids):
                if item_id in seen:
                    problems.append(
                        f"{what}[{i}].id: {item_id!r} is used twice (also {what}[{seen[item_id]}])"
                    )
                seen.setdefault(item_id, i)
        owner: dict[str, str] = {}  # level -> its catch-all segment
        role_owner: dict[tuple[str, str], str] = {}  # (level, role) -> role segment
        for s in self.segments:
            for level in s.qi_levels:
                if s.roles is None:
                    if level in owner and owner[level] != s.id:
                        problems.append(
                            f"segments: QI level {level!r} is in both {owner[level]!r} "
                            f"and {s.id!r}; each level has one segment for all roles "
                            "(give the other one 'roles:' to split by role)"
                        )
                    owner.setdefault(level, s.id)
                    continue
                for role in s.roles:
                    key = (level, role.strip().casefold())
                    if key in role_owner and role_owner[key] != s.id:
                        problems.append(
                            f"segments: role {role!r} at QI level {level!r} is in both "
                            f"{role_owner[key]!r} and {s.id!r}"
                        )
                    role_owner.setdefault(key, s.id)
        for name in QI_LEVELS:
            if name not in owner:
                problems.append(
                    f"segments: no segment takes QI level {name!r} for every role; "
                    "readers at that level would get nothing"
                )
        lowest_segment_level = max(
            min(level_rank(level) for level in s.qi_levels) for s in self.segments
        )
        for i, c in enumerate(self.courses):
            if level_rank(c.requires) > lowest_segment_level:
                problems.append(
                    f"courses[{i}]: no segment may attend {c.name!r} (it requires "
                    f"{c.requires!r}, above every segment's level)"
                )
        if problems:
            raise ValueError("\n".join(problems))  # one per line: messages may hold "; "
        return self
