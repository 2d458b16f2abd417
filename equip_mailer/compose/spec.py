"""Campaign specs: the YAML a commissioning manager writes, checked before anything is built.

Every problem is reported as ``file:line: field.path: plain sentence`` (all of them at once),
because the person fixing it works in a text editor, not a debugger. YAML is composed by hand
so each value keeps its line, and a few YAML 1.1 traps are defused: ``13:00`` stays a time
(PyYAML reads it as the integer 780), an impossible date such as ``2019-06-31`` reaches
validation as text instead of crashing the loader, and duplicate keys are an error.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from equip_mailer.errors import SpecError

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


def _check_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid address ({exc})") from None


def _check_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+", value) and not re.match(
        r"^https?://(localhost|127\.0\.0\.1)(:\d+)?(/|$)", value
    ):
        raise ValueError(f"{value!r} is not a web address (it must start with https://)")
    if re.search(r"\s", value):
        raise ValueError(f"{value!r} contains spaces; web addresses cannot")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
Url = Annotated[str, AfterValidator(_check_url)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Address(Strict):
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
    date: dt.date
    start: dt.time
    end: dt.time
    venue: str | None = None
    sign_up_url: Url | None = None

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
    id: Annotated[str, Field(pattern=SLUG)]
    name: str
    format: str  # "Half-day training", "3-day action learning set"
    blurb: str  # short Markdown
    who_can_register: str
    requires: QILevel = "none"  # lowest QI level that may attend
    leads_to: QILevel | None = None  # level a reader has after completing it
    attendance: str | None = None  # "You will need to attend all 3 days."
    schedule: Literal["choose_one", "attend_all"] = "choose_one"
    delivered_by: str | None = None
    sign_up_url: Url | None = None  # one link for the course, or one per session
    sessions: Annotated[list[Session], Field(min_length=1)]

    @model_validator(mode="after")
    def _sign_up_somewhere(self) -> Course:
        if self.sign_up_url is None:
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


class Segment(Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    name: str
    qi_levels: Annotated[list[QILevel], Field(min_length=1)]
    # Only readers whose role is one of these (any case); leave out to take every role at
    # these levels. Lets citizens and service users get their own version of the email.
    roles: Annotated[list[str], Field(min_length=1)] | None = None
    subject: str | None = None  # overrides the campaign subject
    preheader: str | None = None
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
    files: Annotated[list[str], Field(min_length=1)]
    suppressions: str | None = "lists/suppressions.csv"
    max_reject_share: Annotated[float, Field(ge=0, le=1)] = 0.05  # stop if more rows are bad


class Footer(Strict):
    organisation: str
    address: str | None = None
    why: str  # "You get this because ..."


class Campaign(Strict):
    id: Annotated[str, Field(pattern=SLUG)]
    title: str
    subject: str
    preheader: str
    sender: Address = Field(alias="from")
    reply_to: Address | None = None
    language: str = "en-GB"
    template: str = "course-menu"
    intro: str  # Markdown; {first_name} and {practice} allowed
    sign_off: str  # Markdown
    signature: str  # a role, not a person
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
        """Folder that relative paths (lists, templates) are resolved from: the project root,
        i.e. the parent of ``campaigns/`` when the spec sits there, else the spec's folder."""
        return self._root or Path.cwd()

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.root / p

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
        for what, items in (("courses", self.courses), ("segments", self.segments)):
            seen: dict[str, int] = {}
            for i, item in enumerate(items):
                if item.id in seen:
                    problems.append(
                        f"{what}[{i}].id: {item.id!r} is used twice (also {what}[{seen[item.id]}])"
                    )
                seen.setdefault(item.id, i)
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
        for level in QI_LEVELS:
            if level not in owner:
                problems.append(
                    f"segments: no segment takes QI level {level!r} for every role; "
                    "readers at that level would get nothing"
                )
        lowest_segment_level = max(min(level_rank(l) for l in s.qi_levels) for s in self.segments)
        for i, c in enumerate(self.courses):
            if level_rank(c.requires) > lowest_segment_level:
                problems.append(
                    f"courses[{i}]: no segment may attend {c.name!r} (it requires "
                    f"{c.requires!r}, above every segment's level)"
                )
        if problems:
            raise ValueError("\n".join(problems))  # one per line: messages may hold "; "
        return self


# ---------------------------------------------------------------------------------------
# Loading with line numbers

# Values built from one spec. A campaign has a few hundred; YAML aliases (*name) repeat a
# value without writing it out, so nine lines of nested aliases can stand for billions.
MAX_VALUES = 100_000


class _TooManyValues(Exception):
    """Raised with the path being built when a spec expands past MAX_VALUES."""


class _Located:
    """Values built from YAML nodes, with the line of every path."""

    def __init__(self) -> None:
        self.lines: dict[tuple, int] = {}
        self.problems: list[tuple[int, str]] = []
        self.built = 0


def _build(node: yaml.Node, path: tuple, loc: _Located, loader: yaml.SafeLoader) -> Any:
    loc.built += 1
    if loc.built > MAX_VALUES:
        raise _TooManyValues(path)
    loc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for key_node, value_node in node.value:
            key = _build(key_node, path + ("<key>",), loc, loader)
            if not isinstance(key, str | int | float | bool) or key is None:
                loc.problems.append(
                    (
                        key_node.start_mark.line + 1,
                        f"{_dotted(path) or 'top level'}: keys must be plain words",
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                loc.problems.append(
                    (key_node.start_mark.line + 1, f"{_dotted(path + (key,))}: appears twice")
                )
                continue
            out[key] = _build(value_node, path + (key,), loc, loader)
            loc.lines[path + (key,)] = (
                key_node.start_mark.line + 1
            )  # the key, not its value's first line
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), loc, loader) for i, child in enumerate(node.value)]
    # scalars
    if node.tag == "tag:yaml.org,2002:int" and ":" in node.value:
        return node.value  # 13:00 is a time, not base-60
    try:
        return loader.construct_object(node, deep=True)
    except (yaml.constructor.ConstructorError, ValueError, TypeError):
        return node.value  # e.g. 2019-06-31: let validation say why


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_for(loc_path: tuple, lines: dict[tuple, int]) -> int:
    path = tuple(loc_path)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _friendly(err: dict) -> str:
    kind, value = err["type"], err.get("input")
    shown = value if isinstance(value, str) else repr(value)
    if kind in (
        "date_from_datetime_parsing",
        "date_parsing",
        "date_type",
        "date_from_datetime_inexact",
    ):
        return f"{shown} is not a date (use YYYY-MM-DD)"
    if kind in ("time_parsing", "time_type"):
        return f"{shown} is not a time (use HH:MM, e.g. 13:00)"
    if kind in ("datetime_parsing", "datetime_type", "datetime_from_date_parsing"):
        return f"{shown} is not a date and time (use YYYY-MM-DDTHH:MM+00:00)"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{shown} is not one of {expected}"
    if kind == "string_type":
        return f"{shown} should be text (put it in quotes)"
    if kind == "string_pattern_mismatch":
        return f"{shown} should be lower-case letters, digits and dashes"
    if kind in ("list_type",):
        return f"{shown} should be a list (one '- item' per line)"
    if kind in ("too_short",):
        return "must have at least one entry"
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown} should be true or false"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type"):
        return f"{shown} should be a number"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{shown} should be a set of 'key: value' lines"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _known_fields(model: type[BaseModel], path: tuple) -> list[str]:
    """Field names allowed at ``path`` (for 'did you mean')."""
    current: Any = model
    for part in path:
        if isinstance(part, int) or current is None:
            continue
        field = None
        for name, f in current.model_fields.items():
            if (f.alias or name) == part or name == part:
                field = f
        if field is None:
            return []
        current = _model_in(field.annotation)
    if current is None:
        return []
    return [(f.alias or n) for n, f in current.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    meta = getattr(annotation, "__origin__", None)
    return _model_in(meta) if meta and meta is not annotation else None


def project_root_for(spec_path: Path) -> Path:
    spec_path = spec_path.resolve()
    return spec_path.parent.parent if spec_path.parent.name == "campaigns" else spec_path.parent


MAX_SPEC_CHARS = 1_000_000  # the demo campaign is about 8,000


def load_campaign(
    path: str | Path, *, allow_past: bool = False, today: dt.date | None = None
) -> Campaign:
    """Read and validate a campaign spec; raise SpecError listing every problem by line."""
    path = Path(path)
    shown = str(path)
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError
        if not stat.S_ISREG(mode):  # /dev/zero, a pipe: reading would never end
            raise SpecError(
                [
                    f"{shown}: is not a file (a device or pipe); give the path of a "
                    "campaign .yaml file"
                ]
            )
        with path.open(encoding="utf-8-sig") as f:
            text = f.read(MAX_SPEC_CHARS + 1)
    except FileNotFoundError:
        raise SpecError([f"{shown}: no such campaign file"]) from None
    except UnicodeDecodeError:
        raise SpecError([f"{shown}: is not UTF-8 text; save it as UTF-8"]) from None
    except IsADirectoryError:
        raise SpecError([f"{shown}: is a folder, not a campaign file"]) from None
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(
            [
                f"{shown}: is over {MAX_SPEC_CHARS:,} characters long; a campaign file "
                "is a few thousand (is this the right file?)"
            ]
        )
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise SpecError(
            [f"{shown}:{line}: not valid YAML ({exc.problem or exc.context})"]
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{shown}: not valid YAML ({exc})"]) from None
    except RecursionError:
        raise SpecError([f"{shown}: nested too deeply to be a campaign file"]) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(node, yaml.MappingNode):
        raise SpecError([f"{shown}:1: a campaign file must be a set of 'key: value' lines"])
    located = _Located()
    try:
        data = _build(node, (), located, yaml.SafeLoader(""))
    except _TooManyValues as exc:
        top = exc.args[0][:1]  # the top-level key whose value blew up
        line = next((k.start_mark.line + 1 for k, _ in node.value if top and k.value == top[0]), 1)
        raise SpecError(
            [
                f"{shown}:{line}: the file expands to too many values (YAML aliases); "
                "write the values out"
            ]
        ) from None
    except RecursionError:
        raise SpecError([f"{shown}: nested too deeply to be a campaign file"]) from None
    problems = [f"{shown}:{line}: {msg}" for line, msg in located.problems]
    if "from" not in data and "sender" in data:
        data["from"] = data.pop("sender")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_for(loc, located.lines)
            where = _dotted(loc)
            if err["type"] == "extra_forbidden":
                known = _known_fields(Campaign, loc[:-1])
                close = difflib.get_close_matches(str(loc[-1]), known, n=1)
                msg = f"unknown key {str(loc[-1])!r}" + (
                    f" (did you mean {close[0]!r}?)" if close else ""
                )
                where = _dotted(loc[:-1])
            else:
                msg = _friendly(err)
            if not where and err["type"] == "value_error":
                # model-level checks already name their fields: "courses[1]: ..." per part
                for part in msg.split("\n"):
                    field = part.split(":", 1)[0]
                    pl = _line_for(_parse_dotted(field), located.lines)
                    problems.append(f"{shown}:{pl}: {part}")
                continue
            problems.append(f"{shown}:{line}: {where + ': ' if where else ''}{msg}")
        raise SpecError(_ordered(problems)) from None
    if problems:
        raise SpecError(_ordered(problems))
    campaign._source = path
    campaign._root = project_root_for(path)
    if not allow_past:
        today = today or dt.date.today()
        past = []
        for ci, c in enumerate(campaign.courses):
            for si, s in enumerate(c.sessions):
                if s.date < today:
                    line = _line_for(("courses", ci, "sessions", si, "date"), located.lines)
                    past.append(
                        f"{shown}:{line}: courses[{ci}].sessions[{si}].date: {s.date} is in "
                        "the past"
                    )
        if past:
            raise SpecError(
                past, hint="Use --allow-past to work with an old campaign, such as the demo."
            )
    return campaign


def _parse_dotted(text: str) -> tuple:
    parts: list = []
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _ordered(problems: list[str]) -> list[str]:
    def key(p: str) -> tuple:
        m = re.match(r"^.*?:(\d+):", p)
        return (int(m.group(1)) if m else 0, p)

    return sorted(dict.fromkeys(problems), key=key)
