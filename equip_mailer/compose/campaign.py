"""The campaign a spec describes: segments, lists, footer and options as pydantic models,
with the courses of ``courses`` and the shared field types of ``spec_fields``.

These models are the contract between the YAML a commissioning manager writes and every later
step. Each check that one field or one object can make lives next to the field and says in
plain words what is wrong; turning those messages into ``file:line`` is the job of ``spec``,
which reads the YAML. The campaign-wide checks (segments cover the levels, courses named by
segments exist, sign-up rules across courses) stay on ``Campaign`` itself.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from .courses import Course, Session
from .spec_fields import (
    LIST_ID,
    QI_LEVEL_NAMES,
    QI_LEVELS,
    SLUG,
    Address,
    QILevel,
    Strict,
    Text,
    Url,
    level_rank,
)

# The spec's whole format is importable from here: its parts live in courses and spec_fields.
__all__ = ["QI_LEVEL_NAMES", "QI_LEVELS", "Address", "Campaign", "Course", "Session", "level_rank"]


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
    list_id: Annotated[str, Field(pattern=LIST_ID)] = "newsletter"
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

    def has_past_sessions(self, today: dt.date | None = None) -> bool:
        """Whether a session is before ``today``: loading the spec then needs --allow-past,
        so a command printed for the manager to run must carry it."""
        today = today or dt.date.today()
        return any(s.date < today for c in self.courses for s in c.sessions)

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
