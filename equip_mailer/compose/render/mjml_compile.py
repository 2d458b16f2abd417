"""The MJML step: compile the rendered MJML into Outlook-safe responsive HTML, or say where not.

mjml-python neither complains about unknown ``mj-`` tags (it passes them through) nor always
gives a position: it reports parse errors as byte offsets, or not at all. So a leftover
``<mj-`` tag is an error here, byte offsets are turned into characters, and a failure
without a position is found by scanning the source for the first unclosed, mismatched or
malformed tag. ``locate`` (see ``templates``) turns the offset into a template line.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import mjml

from equip_mailer.errors import RenderError

_POSITION_RE = re.compile(r"\s*at position (\d+):(\d+)")
_VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "param",
    "source",
    "track",
    "wbr",
    "mj-all",
    "mj-class",
    "mj-breakpoint",
    "mj-font",
    "mj-include",
}
_RAW_CONTENT = {"mj-style", "style", "script", "mj-title", "mj-preview"}
_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][\w:-]*)((?:\s+[^\s=/>]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?)*)\s*(/?)>"
)
_ANY_TAG_RE = re.compile(r"<(/?)([A-Za-z][\w:-]*)")
_MJ_TAG_RE = re.compile(r"<(mj-[\w-]+)")


def _scan_mjml(source: str) -> tuple[int, str] | None:
    """Find the first structural problem mjml-python complained about without a position:
    an unclosed or mismatched tag, a malformed tag, an unterminated comment, text after
    ``</mjml>``.

    One loop over the tags (over 60 lines): each branch is one kind of markup; splitting the
    loop would spread its position and stack of open tags over several functions."""
    stack: list[tuple[str, int]] = []
    pos = 0
    end_of_root = None
    while True:
        lt = source.find("<", pos)
        if lt < 0:
            break
        if end_of_root is not None and source[end_of_root:lt].strip():
            return end_of_root + (
                len(source[end_of_root:lt]) - len(source[end_of_root:lt].lstrip())
            ), "text after </mjml>"
        if source.startswith("<!--", lt):
            close = source.find("-->", lt + 4)
            if close < 0:
                return lt, "a comment (<!--) is never closed"
            pos = close + 3
            continue
        if source.startswith("<!", lt) or source.startswith("<?", lt):
            close = source.find(">", lt)
            pos = (close + 1) if close >= 0 else len(source)
            continue
        m = _TAG_RE.match(source, lt)
        if not m:
            named = _ANY_TAG_RE.match(source, lt)
            if named:
                return (
                    lt,
                    f"the <{named.group(1)}{named.group(2)}> tag is malformed "
                    "(check its attributes and closing >)",
                )
            pos = lt + 1
            continue
        closing, name, _, self_closing = m.group(1), m.group(2).lower(), m.group(3), m.group(4)
        pos = m.end()
        if closing:
            if not stack:
                return lt, f"</{name}> closes a tag that was never opened"
            open_name, open_at = stack[-1]
            if open_name != name:
                if any(n == name for n, _ in stack):
                    return open_at, f"<{open_name}> is not closed before </{name}>"
                return lt, f"</{name}> closes a tag that was never opened (<{open_name}> is open)"
            stack.pop()
            if name == "mjml" and not stack:
                end_of_root = pos
            continue
        if self_closing or name in _VOID:
            continue
        if name in _RAW_CONTENT:
            close = source.lower().find(f"</{name}>", pos)
            if close < 0:
                return lt, f"<{name}> is never closed"
            pos = close + len(name) + 3
            continue
        stack.append((name, lt))
    if stack:
        name, at = stack[-1]
        return at, f"<{name}> is never closed"
    if end_of_root is not None and source[end_of_root:].strip():
        return end_of_root, "text after </mjml>"
    return None


def _char_offset(source: str, byte_offset: int) -> int:
    return len(source.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))


def compile_mjml(source: str, locate: Callable[[int], str] | None = None) -> str:
    """MJML -> HTML with mjml-python; any problem becomes a RenderError at a template line.

    ``locate`` turns an offset in ``source`` into ``file:line:column``.
    """

    def rendered_position(offset: int) -> str:
        line_start = source.rfind("\n", 0, offset) + 1
        return f"MJML:{source.count(chr(10), 0, offset) + 1}:{offset - line_start + 1}"

    locate = locate or rendered_position
    try:
        # fonts={}: no web fonts, so no request to Google from every reader's mail client.
        out = mjml.mjml2html(source, disable_comments=True, fonts={})
    except ValueError as exc:
        message = str(exc)
        m = _POSITION_RE.search(message)
        problem = _POSITION_RE.sub("", message).replace(" in root template", "")
        if m:
            offset = _char_offset(source, int(m.group(1)))
            # "unexpected element" points at the tag's name, "unexpected token" at the
            # whitespace before it: report the tag's "<" either way.
            while offset < len(source) and source[offset].isspace():
                offset += 1
            while offset > 0 and source[offset - 1] in "</":
                offset -= 1
            tag = _ANY_TAG_RE.match(source, offset)
            what = f" <{tag.group(2)}>" if tag else ""
            raise RenderError(
                f"MJML cannot compile this{what}: {problem}",
                where=locate(offset),
                hint="Check that the tag is allowed here (see mjml.io/documentation).",
            ) from None
        found = _scan_mjml(source)
        if found:
            offset, explanation = found
            raise RenderError(
                f"MJML cannot compile this: {explanation} ({problem})", where=locate(offset)
            ) from None
        raise RenderError(f"MJML cannot compile the template: {problem}", where=locate(0)) from None
    leftover = _MJ_TAG_RE.search(out)
    if leftover:
        name = leftover.group(1)
        at = source.find(f"<{name}")
        raise RenderError(
            f"<{name}> is not an MJML tag, or is not allowed where it is; MJML passed it "
            "through unconverted",
            where=locate(max(at, 0)),
            hint="Check the spelling against mjml.io/documentation.",
        )
    return out
