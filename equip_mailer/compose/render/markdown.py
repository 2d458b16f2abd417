"""Markdown fields of the spec (intro, sign-off, course blurbs), rendered once for both parts.

The HTML part gets markdown-it's HTML; the text part gets the same content as paragraphs
wrapped at 76 columns, with list markers, quote marks, and links written as ``label
(target)``. ``{first_name}`` and ``{practice}`` become tokens and links become ``LinkRef``s,
numbered when a template first uses them so tokens follow reading order. The wrapping never
breaks a token or a URL and measures a token as the value it stands for.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

from equip_mailer.errors import RenderError

from ..campaign import Campaign
from .mail_links import LinkBook, LinkRef, other_link
from .tokens import PLACEHOLDERS, TOKEN_RE, html_token, text_token

TEXT_WIDTH = 76

_md = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
    ["replacements", "smartquotes"]
)
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SENTINEL = {name: f"EQPH{name.replace('_', '').upper()}Z" for name in PLACEHOLDERS}
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")
_LINK_SENTINEL = "EQLNK{}Z"
_LINK_SENTINEL_RE = re.compile(r"EQLNK(\d+)Z")


@dataclass(frozen=True)
class _Block:
    """A paragraph of the text part: wrapped later, once link tokens are known."""

    text: str
    first: str = ""  # prefix of the first line ("- ", "1. ", "> ")
    rest: str = ""  # prefix of the following lines
    preformatted: bool = False


@dataclass(frozen=True)
class Rich:
    """Markdown rendered once for both parts; links become tokens when a template first uses
    them, so tokens are numbered in reading order."""

    html_source: str
    blocks: tuple[_Block, ...]
    links: tuple[LinkRef, ...]

    @property
    def html(self) -> Markup:
        out = _LINK_SENTINEL_RE.sub(
            lambda m: html_lib.escape(self.links[int(m.group(1))].html), self.html_source
        )
        for name, sentinel in _SENTINEL.items():
            out = out.replace(sentinel, html_token(name))
        return Markup(out)

    @property
    def text(self) -> str:
        paragraphs = []
        for block in self.blocks:
            body = _LINK_SENTINEL_RE.sub(lambda m: self.links[int(m.group(1))].text, block.text)
            for name, sentinel in _SENTINEL.items():
                body = body.replace(sentinel, text_token(name))
            if block.preformatted:
                paragraphs.append("\n".join(block.first + line for line in body.splitlines()))
            else:
                paragraphs.append(wrap(body, first=block.first, rest=block.rest))
        return "\n\n".join(paragraphs)

    def __bool__(self) -> bool:
        return bool(self.blocks)


def markdown(
    campaign: Campaign,
    book: LinkBook,
    source: str,
    field_name: str,
    constants: Mapping[str, str] | None = None,
) -> Rich:
    """Render a Markdown field of the spec; ``{first_name}`` and ``{practice}`` become tokens,
    the segment's own placeholders (``constants``: ``{open_courses}``...) their values."""
    constants = constants or {}

    def placeholder(m: re.Match[str]) -> str:
        if m.group(1) in constants:
            return _MARKDOWN_SPECIAL.sub(r"\\\1", constants[m.group(1)])
        if m.group(1) not in _SENTINEL:
            raise RenderError(
                f"{field_name}: {{{m.group(1)}}} is not a placeholder; use "
                + " or ".join(f"{{{p}}}" for p in PLACEHOLDERS),
                where=campaign.shown_source,
            )
        return _SENTINEL[m.group(1)]

    prepared = _PLACEHOLDER_RE.sub(placeholder, source)
    tokens = _md.parse(prepared)
    links: list[LinkRef] = []
    for tok in tokens:
        children = tok.children or []
        for child in children:
            if child.type == "link_open":
                url = str(child.attrs.get("href", ""))
                label = _link_label(children, child)
                links.append(other_link(campaign, book, url, label))
                child.attrs["href"] = _LINK_SENTINEL.format(len(links) - 1)
                child.meta["eq_url"] = url
    html_source = _md.renderer.render(tokens, _md.options, {})
    return Rich(html_source=html_source, blocks=tuple(_text_blocks(tokens)), links=tuple(links))


def _link_label(children: list[Token], opener: Token) -> str:
    start = children.index(opener)
    label = []
    for child in children[start + 1 :]:
        if child.type == "link_close":
            break
        label.append(child.content)
    return "".join(label).strip() or "link"


def _inline_text(children: list[Token] | None) -> str:
    """Inline Markdown as plain text: emphasis dropped, links as 'label (target)'."""
    out: list[str] = []
    openers: list[tuple[int, Token]] = []
    for child in children or ():
        kind = child.type
        if kind in ("text", "code_inline", "html_inline"):
            out.append(child.content)
        elif kind == "softbreak":
            out.append(" ")
        elif kind == "hardbreak":
            out.append("\n")
        elif kind == "image":
            out.append(child.content or "")
        elif kind == "link_open":
            openers.append((len(out), child))
        elif kind == "link_close" and openers:
            start, opener = openers.pop()
            label = "".join(out[start:]).strip()
            target = str(opener.attrs["href"])
            if not label or label == opener.meta.get("eq_url"):
                del out[start:]
                out.append(target)
            else:
                out.append(f" ({target})")
    return "".join(out)


@dataclass
class _OpenList:
    """A Markdown list being written out: bullets, or numbers counting up from ``number``."""

    numbered: bool
    number: int


def _text_blocks(tokens: list[Token]) -> list[_Block]:
    """The text part's paragraphs, with list markers, quote marks and indents as prefixes."""
    blocks: list[_Block] = []
    prefixes: list[_OpenList] = []  # the lists open at this point, innermost last
    quote = 0
    item_first: list[bool] = []
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1)) if tok.type == "ordered_list_open" else 0
            prefixes.append(_OpenList(numbered=tok.type == "ordered_list_open", number=start))
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            prefixes.pop()
        elif tok.type == "list_item_open":
            item_first.append(True)
        elif tok.type == "list_item_close":
            item_first.pop()
        elif tok.type == "blockquote_open":
            quote += 1
        elif tok.type == "blockquote_close":
            quote -= 1
        elif tok.type == "inline":
            indent = "  " * max(len(prefixes) - 1, 0)
            q = "> " * quote
            first = rest = q + indent
            if prefixes and item_first and item_first[-1]:
                open_list = prefixes[-1]
                marker = f"{open_list.number}. " if open_list.numbered else "- "
                if open_list.numbered:
                    open_list.number += 1
                first, rest = q + indent + marker, q + indent + " " * len(marker)
                item_first[-1] = False
            elif prefixes:
                first = rest = q + indent + "  "
            text = _inline_text(tok.children)
            if i > 0 and tokens[i - 1].type == "heading_open":
                text = text.upper() if tokens[i - 1].tag in ("h1", "h2") else text
            blocks.append(_Block(text=text, first=first, rest=rest))
        elif tok.type in ("fence", "code_block"):
            blocks.append(_Block(text=tok.content.rstrip("\n"), first="    ", preformatted=True))
        elif tok.type == "hr":
            blocks.append(_Block(text="-" * 20, preformatted=True))
    return blocks


# Tokens are short stand-ins for longer values; wrap as if the value were there.
_TOKEN_WIDTH = {"first_name": 10, "practice": 24, "unsubscribe": 50}
_LINK_WIDTH = 50


def _width(word: str) -> int:
    extra = 0
    for tok in TOKEN_RE.findall(word):
        name = tok.strip("-").split("_", 1)[1]
        extra += _TOKEN_WIDTH.get(name, _LINK_WIDTH) - len(tok)
    return len(word) + extra


# A UK postcode's halves ("E1", "0AA"), with the punctuation that may follow them.
_POSTCODE_PART = re.compile(r"^(?:[A-Z]{1,2}[0-9][A-Z0-9]?|[0-9][A-Z]{2})[,.;:)]*$")


def _unbreakable(words: list[str]) -> list[str]:
    """Words, with each postcode half joined to the word before it: a line never ends in
    "London" with "E1" on the next."""
    out: list[str] = []
    for word in words:
        if out and _POSTCODE_PART.match(word):
            out[-1] = f"{out[-1]} {word}"
        else:
            out.append(word)
    return out


def wrap(text: str, width: int = TEXT_WIDTH, first: str = "", rest: str | None = None) -> str:
    """Greedy word wrap that never breaks a word, a URL or a token (unlike textwrap's
    hyphen rules, which would split ``-eqt_link_0-``)."""
    rest = first if rest is None else rest
    lines: list[str] = []
    for hard_line in str(text).split("\n"):
        prefix = first if not lines else rest
        line, used = "", 0
        for word in _unbreakable(hard_line.split()):
            w = _width(word)
            if line and len(prefix) + used + 1 + w > width:
                lines.append(prefix + line)
                prefix, line, used = rest, word, w
            else:
                line, used = (f"{line} {word}", used + 1 + w) if line else (word, w)
        lines.append(prefix + line)
    return "\n".join(line.rstrip() for line in lines)
