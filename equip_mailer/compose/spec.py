"""Reading a campaign spec: YAML in, a checked ``Campaign`` out, or every problem by line.

Every problem is reported as ``file:line: field.path: plain sentence`` (all of them at once),
because the person fixing it works in a text editor, not a debugger. YAML is composed by hand
so each value keeps its line, and a few YAML 1.1 traps are defused: ``13:00`` stays a time
(PyYAML reads it as the integer 780), an impossible date such as ``2019-06-31`` reaches
validation as text instead of crashing the loader, and duplicate keys are an error. What a
valid campaign is, field by field, is ``campaign``'s business.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from equip_mailer.errors import SpecError
from equip_mailer.project import project_for_spec

from .campaign import Campaign
from .spec_fields import LONGEST
from .text_files import not_utf8, place

# Where a value sits in the spec: ("courses", 0, "sessions", 1, "date").
FieldPath = tuple[str | int, ...]

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
        self.lines: dict[FieldPath, int] = {}
        self.problems: list[tuple[int, str]] = []
        self.built = 0


def _build(node: yaml.Node, path: FieldPath, loc: _Located, loader: yaml.SafeLoader) -> Any:
    """The plain value of ``node`` (what YAML holds: any type, validated later)."""
    loc.built += 1
    if loc.built > MAX_VALUES:
        raise _TooManyValues(path)
    loc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
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


def _dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_for(loc_path: FieldPath, lines: dict[FieldPath, int]) -> int:
    path = tuple(loc_path)
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _friendly(err: ErrorDetails) -> str:
    kind, value = err["type"], err.get("input")
    if value is None and kind not in ("missing", "value_error", "assertion_error"):
        # `subject:` with nothing after it: YAML reads null, which would show as "None"
        return "is empty: write its value after the colon"
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
        value = err.get("input")
        most = LONGEST.get(str(err.get("ctx", {}).get("pattern", "")))
        if isinstance(value, str) and most is not None and len(value) > most:
            return f"{shown} is {len(value)} characters long; at most {most}"
        return f"{shown} should be lower-case letters, digits and dashes"
    if kind in ("list_type",):
        return f"{shown} should be a list (one '- item' per line)"
    if kind in ("too_short",):
        return "must have at least one entry"
    if kind in ("bool_parsing", "bool_type"):
        return f"{shown} should be true or false"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type"):
        return f"{shown} should be a number"
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = err.get("ctx", {}).get("ge" if kind == "greater_than_equal" else "le")
        return f"{shown} should be at {'least' if kind == 'greater_than_equal' else 'most'} {bound}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{shown} should be a set of 'key: value' lines"
    msg = err["msg"]
    return msg.removeprefix("Value error, ")


def _known_fields(model: type[BaseModel], path: FieldPath) -> list[str]:
    """Field names allowed at ``path`` (for 'did you mean')."""
    current: type[BaseModel] | None = model
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


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    meta = getattr(annotation, "__origin__", None)
    return _model_in(meta) if meta and meta is not annotation else None


def project_root_for(spec_path: Path) -> Path:
    """The project root: the nearest folder at or above the spec's holding campaigns/ or
    equip-mailer.toml (see ``equip_mailer.project``), else the spec's own folder."""
    return project_for_spec(spec_path).root


MAX_SPEC_CHARS = 1_000_000  # the demo campaign is about 8,000


def load_campaign(
    path: str | Path, *, allow_past: bool = False, today: dt.date | None = None
) -> Campaign:
    """Read and validate a campaign spec; raise SpecError listing every problem by line."""
    path = Path(path)
    shown = str(path)
    node = _parse(_read_text(path, shown), shown)
    located = _Located()
    data = _values(node, located, shown)
    problems = [f"{shown}:{line}: {msg}" for line, msg in located.problems]
    if "from" not in data and "sender" in data:
        data["from"] = data.pop("sender")
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        problems += _explained(exc, located.lines, shown)
        raise SpecError(_ordered(problems)) from None
    if problems:
        raise SpecError(_ordered(problems))
    # Private attributes: where the spec came from is not part of the spec.
    campaign._source = path
    campaign._root = project_root_for(path)
    if not allow_past:
        _refuse_past(campaign, located.lines, shown, today or dt.date.today())
    return campaign


def _read_text(path: Path, shown: str) -> str:
    """The file's text, refusing plainly what is not a readable, reasonably sized UTF-8 file."""
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
        line, problem = not_utf8(path)
        raise SpecError([f"{place(shown, line)}: {problem}"]) from None
    except IsADirectoryError:
        raise SpecError([f"{shown}: is a folder, not a campaign file"]) from None
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(
            [
                f"{shown}: is over {MAX_SPEC_CHARS:,} characters long; a campaign file "
                "is a few thousand (is this the right file?)"
            ]
        )
    return text


def _parse(text: str, shown: str) -> yaml.MappingNode:
    """The YAML's top-level mapping as a node tree (nodes keep their lines; values do not)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line, plain = _plain_yaml_problem(exc, text)
        raise SpecError([f"{shown}:{line}: not valid YAML: {plain}"]) from None
    except yaml.YAMLError as exc:
        raise SpecError([f"{shown}: not valid YAML ({exc})"]) from None
    except RecursionError:
        raise SpecError([f"{shown}: nested too deeply to be a campaign file"]) from None
    finally:
        loader.dispose()
    if node is None or not isinstance(node, yaml.MappingNode):
        raise SpecError([f"{shown}:1: a campaign file must be a set of 'key: value' lines"])
    return node


def _plain_yaml_problem(exc: yaml.MarkedYAMLError, text: str) -> tuple[int, str]:
    """The line and a plain sentence for the YAML mistakes people make by hand (a colon in
    a value, a tab, a line indented out of step, a quote left open), instead of the
    parser's words ("expected <block end>, but found '<block mapping start>'"), which
    say nothing to the person fixing the file; anything else keeps the parser's words."""
    problem, context = exc.problem or "", exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else 1
    started = exc.context_mark.line + 1 if exc.context_mark else line
    char = re.fullmatch(r"found character '(.+)' that cannot start any token", problem)
    if problem == "mapping values are not allowed here":
        missing = _key_without_colon(text.splitlines(), line)
        if missing:
            return missing
        return line, (
            "a colon YAML cannot place here: put a value that holds ': ' in quotes "
            '(title: "Wave 3: QI training"); otherwise check this line\'s indentation, and '
            "that the line above ends with ':' if it opens a section"
        )
    if char and char.group(1) == "\\t":
        return line, "a tab character: indent with spaces only (YAML does not allow tabs)"
    if char or problem.startswith("found undefined alias"):
        first = char.group(1) if char else "*"
        return line, f"a value cannot start with {first}: put the value in quotes"
    if problem.startswith("expected <block end>, but found '<block"):
        return line, (
            "this line is indented out of step with the lines above it: give keys of the "
            "same level (and the '- ' items of one list) the same number of spaces"
        )
    if problem == "expected <block end>, but found '<scalar>'":
        return line, (
            "unexpected text: a quote on this line or the one above is not closed, or text "
            "follows a closing quote (inside '...' write an apostrophe twice: '')"
        )
    if context == "while scanning a simple key":
        return started, "no colon after the key: write 'key: value', with a space after ':'"
    if context == "while scanning a quoted scalar":
        return started, "a quote opened on this line is never closed"
    if context == "while parsing a flow sequence":
        return line, "a [ ... ] list is not closed with ] (on this line or the one above)"
    if context == "while parsing a flow mapping":
        return line, "a { ... } is not closed with } (on this line or the one above)"
    return line, problem or context


def _key_without_colon(lines: list[str], line: int) -> tuple[int, str] | None:
    """The line above ``line`` that is a key missing its colon ("  files" over its list),
    when there is one: YAML reads it and the lines under it as one long value and only
    stumbles at the next key, lines further down."""
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    indent = len(here) - len(here.lstrip())
    for k in range(min(line, len(lines) + 1) - 2, -1, -1):
        words = lines[k].strip()
        if not words or words.startswith("#"):
            continue
        depth = len(lines[k]) - len(lines[k].lstrip())
        if depth > indent:
            continue  # the lines YAML swallowed into that value
        if ":" in words:
            return None
        if (depth == indent and not words.startswith("-")) or (
            depth < indent and words.startswith("- ")
        ):
            key = words.removeprefix("- ").split()[0]
            return k + 1, f"no colon after {key!r}: write '{key}:', with a colon, as every key has"
        return None
    return None


def _values(node: yaml.MappingNode, located: _Located, shown: str) -> dict[str, Any]:
    """Plain values from the node tree, noting each path's line in ``located``."""
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
    return data


def _explained(exc: ValidationError, lines: dict[FieldPath, int], shown: str) -> list[str]:
    """pydantic's errors as ``file:line: field.path: plain sentence``, one per problem."""
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = _line_for(loc, lines)
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
                pl = _line_for(_parse_dotted(field), lines)
                problems.append(f"{shown}:{pl}: {part}")
            continue
        problems.append(f"{shown}:{line}: {where + ': ' if where else ''}{msg}")
    return problems


def _refuse_past(
    campaign: Campaign, lines: dict[FieldPath, int], shown: str, today: dt.date
) -> None:
    past = []
    for ci, c in enumerate(campaign.courses):
        for si, s in enumerate(c.sessions):
            if s.date < today:
                line = _line_for(("courses", ci, "sessions", si, "date"), lines)
                past.append(
                    f"{shown}:{line}: courses[{ci}].sessions[{si}].date: {s.date} is in the past"
                )
    if past:
        raise SpecError(
            past, hint="Use --allow-past to work with an old campaign, such as the demo."
        )


def _parse_dotted(text: str) -> FieldPath:
    parts: list[str | int] = []
    for name, index in re.findall(r"([A-Za-z_]+)|\[(\d+)\]", text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def _ordered(problems: list[str]) -> list[str]:
    def key(p: str) -> tuple[int, str]:
        m = re.match(r"^.*?:(\d+):", p)
        return (int(m.group(1)) if m else 0, p)

    return sorted(dict.fromkeys(problems), key=key)
