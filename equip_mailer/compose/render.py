"""From a campaign spec to one finished email per segment, with tokens where readers differ.

Rendering is done once per *segment*, never per recipient: Jinja2 fills the course-menu
template, MJML turns it into Outlook-safe responsive HTML, premailer inlines the card styles
and a second template writes the plain-text part. What changes from reader to reader (first
name, practice, each tracked link, the unsubscribe link) is left as a space-free token such
as ``-eq_link_0-`` that survives MJML and premailer untouched. Sending then costs one string
substitution per recipient (``personalise``), or none at all when SendGrid substitutes the
same tokens itself (``recipient_values`` is exactly its ``substitutions`` dict).

Each step has a trap this module defends against, with a test per trap in
``tests/compose/test_render.py``: premailer fetches remote CSS, drops mjml's lower-case doctype and
strips ``!important`` from media queries; mjml-python neither inlines ``mj-style inline``
nor complains about unknown ``mj-`` tags, and reports parse errors as byte offsets (or not
at all) in text nobody wrote by hand. Every failure becomes a ``RenderError`` that names the
template file, line and column.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import hashlib
import html as html_lib
import logging
import os
import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import cssutils
import jinja2
import mjml
from lxml import etree
from markdown_it import MarkdownIt
from markupsafe import Markup
from premailer import Premailer

from equip_mailer.errors import RenderError
from equip_mailer.send.links import LinkSpec, with_utm

from .audience import Recipient
from .campaign import Campaign, Course, Segment, Session
from .menu import SegmentMenu, segment_menu

# ---------------------------------------------------------------------------------------
# Tokens

TOKEN_RE = re.compile(r"(-eqt?_[a-z0-9_]+-)")
PLACEHOLDERS = ("first_name", "practice")
SUBSTITUTIONS_LIMIT = 10_000  # bytes per SendGrid personalization
TEXT_WIDTH = 76

# Fallbacks so a blank cell in a list never produces "Dear ,".
BLANK_VALUES = {"first_name": "colleague", "practice": "your practice"}


def html_token(name: str) -> str:
    return f"-eq_{name}-"


def text_token(name: str) -> str:
    return f"-eqt_{name}-"


def link_token_name(index: int) -> str:
    return f"link_{index}"


@dataclass(frozen=True)
class RenderedSegment:
    """One segment's finished email, identical for every reader except at its tokens."""

    segment_id: str
    subject: str  # segment override or campaign subject
    preheader: str
    html: str  # full compiled + inlined HTML document containing per-recipient tokens
    text: str  # plain-text part containing per-recipient tokens
    links: tuple[LinkSpec, ...]  # every link that needs a per-recipient URL, in token order
    # Both parts split at their tokens once, so personalising is a join, not a search.
    _parts: tuple = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_parts", (tuple(TOKEN_RE.split(self.html)), tuple(TOKEN_RE.split(self.text)))
        )

    @property
    def tokens(self) -> frozenset[str]:
        """Every token the two parts contain."""
        html_parts, text_parts = self._parts
        return frozenset(html_parts[1::2]) | frozenset(text_parts[1::2])


def recipient_values(
    rendered: RenderedSegment, recipient: Recipient, link_urls: dict[str, str], unsubscribe_url: str
) -> dict[str, str]:
    """Token -> value for one reader: the SendGrid ``substitutions`` dict, and what
    ``personalise`` uses for the outbox and previews.

    SendGrid applies one dict to both parts, so HTML tokens and text tokens have different
    names and only the HTML ones get escaped values.
    """
    urls = []
    for link in rendered.links:
        try:
            urls.append(link_urls[link.key])
        except KeyError:
            raise RenderError(
                f"no URL for link {link.key!r} ({link.label}) in segment {rendered.segment_id!r}",
                hint="Register every link of the rendered segment before sending.",
            ) from None
    return values_builder(rendered)(recipient, urls, unsubscribe_url)


_NEEDS_ESCAPE = re.compile("[&<>\"']").search


def _url_names(n_links: int) -> list[str]:
    return [link_token_name(i) for i in range(n_links)] + ["unsubscribe"]


@functools.lru_cache(maxsize=64)
def _token_plan(n_links: int, shared: bool) -> tuple[tuple, tuple, tuple[str, str], int]:
    """Token names of a segment with ``n_links`` links, and the bytes its keys take."""
    placeholders = tuple(
        (name, html_token(name), text_token(name), BLANK_VALUES[name]) for name in PLACEHOLDERS
    )
    urls = tuple(
        (html_token(name), None if shared else text_token(name)) for name in _url_names(n_links)
    )
    key_bytes = sum(len(k.encode("utf-8")) for _, h, t, _ in placeholders for k in (h, t))
    key_bytes += sum(len(h) + len(t or "") for h, t in urls)
    return placeholders, urls[:-1], urls[-1], key_bytes


def share_url_tokens(text: str, n_links: int) -> str:
    """``text`` with the text-part tokens of the link and unsubscribe URLs renamed to their
    HTML tokens, for ``values_builder(..., shared_urls=True)``: one value per URL instead
    of two equal ones, when no URL can contain a character HTML escapes."""
    for name in _url_names(n_links):
        text = text.replace(text_token(name), html_token(name))
    return text


def values_builder(
    rendered: RenderedSegment, *, shared_urls: bool = False
) -> Callable[[Recipient, list[str], str], dict[str, str]]:
    """``recipient_values`` for many readers of one segment, prepared once: called with the
    link URLs as a list in ``rendered.links`` order. Same dict, same size check; per reader
    only the values are escaped (when they contain a character that needs it) and measured.

    With ``shared_urls`` the URLs get only their HTML tokens, unescaped: for content whose
    text part went through ``share_url_tokens`` and URLs that never need escaping (a URL
    that does is refused)."""
    placeholders, link_tokens, (h_unsub, t_unsub), key_bytes = _token_plan(
        len(rendered.links), shared_urls
    )
    n_links = len(link_tokens)
    escape = html_lib.escape
    needs = _NEEDS_ESCAPE

    def build(recipient: Recipient, urls: list[str], unsubscribe_url: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for name, h, t, blank in placeholders:
            value = (getattr(recipient, name) or "").strip() or blank
            values[h] = escape(value, quote=True) if needs(value) else value
            values[t] = value
        if len(urls) != n_links:
            raise RenderError(
                f"{len(urls)} link URLs for the {n_links} links of segment {rendered.segment_id!r}",
                hint="Register every link of the rendered segment before sending.",
            )
        if shared_urls:
            for (h, _), url in zip(link_tokens, urls):
                values[h] = url
            values[h_unsub] = unsubscribe_url
            if needs("".join(urls) + unsubscribe_url):
                raise RenderError(
                    f"a link URL of segment {rendered.segment_id!r} needs HTML "
                    "escaping, so it cannot share one token (internal error)"
                )
        else:
            for (h, t), url in zip(link_tokens, urls):
                values[h] = escape(url, quote=True) if needs(url) else url
                values[t] = url
            values[h_unsub] = (
                escape(unsubscribe_url, quote=True) if needs(unsubscribe_url) else unsubscribe_url
            )
            values[t_unsub] = unsubscribe_url
        joined = "".join(values.values())
        size = key_bytes + (len(joined) if joined.isascii() else len(joined.encode("utf-8")))
        if size > SUBSTITUTIONS_LIMIT:
            raise RenderError(
                f"the personal values for {recipient.source} take {size:,} bytes; "
                f"SendGrid allows {SUBSTITUTIONS_LIMIT:,} per recipient",
                where=recipient.source,
                hint="Use fewer or shorter links, or shorten the names in the list.",
            )
        return values

    return build


def personalise(rendered: RenderedSegment, values: dict[str, str]) -> tuple[str, str]:
    """(html, text) for one reader: every token replaced in a single pass over each part."""
    html_parts, text_parts = rendered._parts
    return _fill(html_parts, values, rendered), _fill(text_parts, values, rendered)


def _fill(parts: tuple[str, ...], values: dict[str, str], rendered: RenderedSegment) -> str:
    out = list(parts)
    try:
        for i in range(1, len(out), 2):
            out[i] = values[out[i]]
    except KeyError as exc:
        raise RenderError(
            f"no value for token {exc.args[0]} in segment {rendered.segment_id!r}",
            hint="Build the values with render.recipient_values.",
        ) from None
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Colours: NHS identity colours, each text/background pair at least 4.5:1 (tested).


@dataclass(frozen=True)
class Palette:
    text: str = "#212B32"  # NHS black
    secondary: str = "#4C6272"  # NHS dark grey, for small print
    blue: str = "#005EB8"  # NHS blue: header, headings, links
    button: str = "#007F3B"  # NHS green: the sign-up buttons
    button_text: str = "#FFFFFF"
    white: str = "#FFFFFF"
    page: str = "#F0F4F5"  # NHS pale grey around the email
    featured: str = "#E8F1FA"  # pale blue behind the featured course
    border: str = "#D8DDE0"

    def contrast_pairs(self) -> list[tuple[str, str, str]]:
        """(what, foreground, background) for every text colour the templates use."""
        return [
            ("body text", self.text, self.white),
            ("body text on featured card", self.text, self.featured),
            ("headings and links", self.blue, self.white),
            ("links on featured card", self.blue, self.featured),
            ("header text", self.white, self.blue),
            ("button text", self.button_text, self.button),
            ("footer text", self.secondary, self.page),
            ("footer links", self.blue, self.page),
        ]


PALETTE = Palette()


# ---------------------------------------------------------------------------------------
# Dates

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def long_date(day: dt.date) -> str:
    """'Thursday 27 June 2019', spelled out whatever the machine's locale."""
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]} {day.year}"


def short_date(day: dt.date) -> str:
    return f"{DAYS[day.weekday()]} {day.day} {MONTHS[day.month - 1]}"


def time_range(session: Session) -> str:
    return f"{session.start:%H:%M}\u2013{session.end:%H:%M}"


# ---------------------------------------------------------------------------------------
# Links


class _LinkBook:
    """Numbers the links of one segment's email in the order the templates first use them,
    so ``-eq_link_0-`` is the first link a reader meets and ``RenderedSegment.links`` lines
    up with the tokens."""

    def __init__(self) -> None:
        self.specs: list[LinkSpec] = []
        self._index: dict[str, int] = {}

    def use(self, spec: LinkSpec) -> int:
        index = self._index.get(spec.key)
        if index is not None and self.specs[index].url != spec.url:
            # Two Markdown links whose slugs collide (e.g. /a-b and /a_b): keep both apart.
            spec = replace(
                spec, key=f"{spec.key}-{hashlib.sha1(spec.url.encode('utf-8')).hexdigest()[:7]}"
            )
            index = self._index.get(spec.key)
        if index is None:
            index = self._index[spec.key] = len(self.specs)
            self.specs.append(spec)
        return index


@dataclass(frozen=True)
class LinkRef:
    """A link as the templates see it: ``.html`` for an href, ``.text`` for the text part.

    Tracked links give tokens (and are numbered on first use); untracked ones their URL.
    """

    spec: LinkSpec
    book: _LinkBook | None = field(default=None, compare=False, repr=False)

    @property
    def html(self) -> str:
        return html_token(link_token_name(self.book.use(self.spec))) if self.book else self.spec.url

    @property
    def text(self) -> str:
        return text_token(link_token_name(self.book.use(self.spec))) if self.book else self.spec.url

    @property
    def label(self) -> str:
        return self.spec.label


def _target(campaign: Campaign, url: str, content: str) -> str:
    t = campaign.tracking
    return (
        with_utm(url, source=t.utm_source, campaign=campaign.id, content=content) if t.utm else url
    )


def link_slug(url: str) -> str:
    """A stable, readable name for a link found in Markdown: host and path as a slug."""
    parts = urlsplit(url)
    slug = re.sub(r"[^a-z0-9]+", "-", f"{parts.netloc}{parts.path}?{parts.query}".lower()).strip(
        "-"
    )
    if len(slug) > 48:
        slug = slug[:40].rstrip("-") + "-" + hashlib.sha1(url.encode("utf-8")).hexdigest()[:7]
    return slug or hashlib.sha1(url.encode("utf-8")).hexdigest()[:7]


def _other_link(campaign: Campaign, book: _LinkBook, url: str, label: str) -> LinkRef:
    """A link that is not a sign-up: tracked as ``link:<name>`` when the spec says so."""
    if not campaign.tracking.track_other_links or not url.lower().startswith(
        ("http://", "https://")
    ):
        return LinkRef(LinkSpec(key=url, url=url, label=label))
    name = next((n for n, u in campaign.links.items() if u == url), None) or link_slug(url)
    return LinkRef(
        LinkSpec(key=f"link:{name}", url=_target(campaign, url, name), label=label), book
    )


# ---------------------------------------------------------------------------------------
# Markdown (intro, sign-off, course blurbs), rendered for both parts

_md = MarkdownIt("commonmark", {"html": False, "typographer": True}).enable(
    ["replacements", "smartquotes"]
)
_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SENTINEL = {name: f"EQPH{name.replace('_', '').upper()}Z" for name in PLACEHOLDERS}
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


def markdown(campaign: Campaign, book: _LinkBook, source: str, field_name: str) -> Rich:
    """Render a Markdown field of the spec; ``{first_name}`` and ``{practice}`` become tokens."""

    def placeholder(m: re.Match) -> str:
        if m.group(1) not in _SENTINEL:
            raise RenderError(
                f"{field_name}: {{{m.group(1)}}} is not a placeholder; use "
                + " or ".join(f"{{{p}}}" for p in PLACEHOLDERS),
                where=_spec_name(campaign),
            )
        return _SENTINEL[m.group(1)]

    prepared = _PLACEHOLDER_RE.sub(placeholder, source)
    tokens = _md.parse(prepared)
    links: list[LinkRef] = []
    for tok in tokens:
        for child in tok.children or ():
            if child.type == "link_open":
                url = str(child.attrs.get("href", ""))
                label = _link_label(tok.children, child)
                links.append(_other_link(campaign, book, url, label))
                child.attrs["href"] = _LINK_SENTINEL.format(len(links) - 1)
                child.meta["eq_url"] = url
    html_source = _md.renderer.render(tokens, _md.options, {})
    return Rich(html_source=html_source, blocks=tuple(_text_blocks(tokens)), links=tuple(links))


def _link_label(children: list, opener) -> str:
    start = children.index(opener)
    label = []
    for child in children[start + 1 :]:
        if child.type == "link_close":
            break
        label.append(child.content)
    return "".join(label).strip() or "link"


def _inline_text(children) -> str:
    """Inline Markdown as plain text: emphasis dropped, links as 'label (target)'."""
    out: list[str] = []
    openers: list[tuple[int, object]] = []
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


def _text_blocks(tokens) -> list[_Block]:
    blocks: list[_Block] = []
    prefixes: list[list[str]] = []  # per open list: [marker kind, next number]
    quote = 0
    item_first: list[bool] = []
    for i, tok in enumerate(tokens):
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            start = int(tok.attrs.get("start", 1)) if tok.type == "ordered_list_open" else 0
            prefixes.append(["-" if tok.type == "bullet_list_open" else "n", start])
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
                kind = prefixes[-1]
                marker = "- " if kind[0] == "-" else f"{kind[1]}. "
                if kind[0] == "n":
                    kind[1] += 1
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


# ---------------------------------------------------------------------------------------
# Plain-text wrapping

# Tokens are short stand-ins for longer values; wrap as if the value were there.
_TOKEN_WIDTH = {"first_name": 10, "practice": 24, "unsubscribe": 50}
_LINK_WIDTH = 50


def _width(word: str) -> int:
    extra = 0
    for tok in TOKEN_RE.findall(word):
        name = tok.strip("-").split("_", 1)[1]
        extra += _TOKEN_WIDTH.get(name, _LINK_WIDTH) - len(tok)
    return len(word) + extra


def wrap(text: str, width: int = TEXT_WIDTH, first: str = "", rest: str | None = None) -> str:
    """Greedy word wrap that never breaks a word, a URL or a token (unlike textwrap's
    hyphen rules, which would split ``-eqt_link_0-``)."""
    rest = first if rest is None else rest
    lines: list[str] = []
    for hard_line in str(text).split("\n"):
        prefix = first if not lines else rest
        line, used = "", 0
        for word in hard_line.split():
            w = _width(word)
            if line and len(prefix) + used + 1 + w > width:
                lines.append(prefix + line)
                prefix, line, used = rest, word, w
            else:
                line, used = (f"{line} {word}", used + 1 + w) if line else (word, w)
        lines.append(prefix + line)
    return "\n".join(l.rstrip() for l in lines)


# ---------------------------------------------------------------------------------------
# What the templates see


@dataclass(frozen=True)
class SessionView:
    session: Session
    long_date: str  # Thursday 27 June 2019
    short_date: str  # Thursday 27 June
    times: str  # 13:00–17:00
    venue: str | None
    sign_up: LinkRef | None  # only when sessions have their own sign-up pages
    button_text: str  # Sign up for EQUIP Basics on Thursday 27 June


@dataclass(frozen=True)
class CourseView:
    course: Course
    name: str
    format_line: str  # "Half-day training, delivered by our ELFT colleagues"
    blurb: Rich
    who_can_register: str
    attendance: str | None
    sessions: tuple[SessionView, ...]
    sign_up: LinkRef | None  # one sign-up for the whole course
    button_text: str


@dataclass(frozen=True)
class LockedView:
    name: str
    note: str  # "Next step after EQUIP in Action"
    line: str  # "Data masterclass — Next step after EQUIP in Action"


@dataclass(frozen=True)
class FooterView:
    organisation: str
    address: str | None
    why: str
    segment_name: str
    links: tuple[LinkRef, ...]  # the campaign's other links (about, contact, ...)


def _course_view(campaign: Campaign, book: _LinkBook, course: Course) -> CourseView:
    per_session = any(s.sign_up_url for s in course.sessions)
    course_ref = None
    if course.sign_up_url:
        course_ref = LinkRef(
            LinkSpec(
                key=course.id,
                url=_target(campaign, course.sign_up_url, course.id),
                label=f"Sign up for {course.name}",
                course_id=course.id,
            ),
            book,
        )
    sessions = []
    for s in course.sessions:
        ref = None
        if per_session:
            if s.sign_up_url:
                key = f"{course.id}@{s.key}"
                ref = LinkRef(
                    LinkSpec(
                        key=key,
                        url=_target(campaign, s.sign_up_url, key),
                        label=f"Sign up for {course.name} on {short_date(s.date)}",
                        course_id=course.id,
                        session=s.key,
                    ),
                    book,
                )
            else:
                ref = course_ref
        sessions.append(
            SessionView(
                session=s,
                long_date=long_date(s.date),
                short_date=short_date(s.date),
                times=time_range(s),
                venue=s.venue,
                sign_up=ref,
                button_text=f"Sign up for {course.name} on {short_date(s.date)}",
            )
        )
    fmt = course.format + (f", delivered by {course.delivered_by}" if course.delivered_by else "")
    attendance = course.attendance
    if attendance is None and course.schedule == "attend_all" and len(course.sessions) > 1:
        attendance = f"You will need to attend all {len(course.sessions)} days."
    return CourseView(
        course=course,
        name=course.name,
        format_line=fmt,
        blurb=markdown(campaign, book, course.blurb, f"courses.{course.id}.blurb"),
        who_can_register=course.who_can_register,
        attendance=attendance,
        sessions=tuple(sessions),
        sign_up=None if per_session else course_ref,
        button_text=f"Sign up for {course.name}",
    )


def _context(campaign: Campaign, segment: Segment, book: _LinkBook) -> dict:
    menu: SegmentMenu = segment_menu(campaign, segment)
    footer_links = tuple(
        _other_link(campaign, book, url, name.replace("-", " ").replace("_", " ").capitalize())
        for name, url in campaign.links.items()
    )
    return {
        "campaign": campaign,
        "segment": segment,
        "menu": menu,
        "lang": campaign.language,
        "title": campaign.title,
        "subject": segment.subject or campaign.subject,
        "preheader": segment.preheader or campaign.preheader,
        "intro": markdown(campaign, book, campaign.intro, "intro"),
        "sign_off": markdown(campaign, book, campaign.sign_off, "sign_off"),
        "signature": campaign.signature,
        "featured": [_course_view(campaign, book, c) for c in menu.featured],
        "others": [_course_view(campaign, book, c) for c in menu.others],
        "locked": [
            LockedView(name=l.course.name, note=l.note, line=f"{l.course.name} \u2014 {l.note}")
            for l in menu.locked
        ],
        "footer": FooterView(
            organisation=campaign.footer.organisation,
            address=campaign.footer.address,
            why=campaign.footer.why,
            segment_name=segment.name,
            links=footer_links,
        ),
        "first_name": Markup(html_token("first_name")),
        "practice": Markup(html_token("practice")),
        "unsubscribe": Markup(html_token("unsubscribe")),
        "palette": PALETTE,
    }


def _text_context(ctx: dict) -> dict:
    return {
        **ctx,
        "first_name": text_token("first_name"),
        "practice": text_token("practice"),
        "unsubscribe": text_token("unsubscribe"),
    }


# ---------------------------------------------------------------------------------------
# Jinja


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.endswith((".mjml.j2", ".html.j2", ".mjml", ".html"))


def _environments(folder: Path) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The folder's two environments, reused while its files are byte for byte the same:
    compiling the templates costs more than rendering a segment with them."""
    return _cached_environments(str(folder), _folder_digest(folder))


def _folder_digest(folder: Path) -> str:
    """Hash of every file's name and content (content, not mtime: mtimes can repeat)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            digest.update(f"{os.path.relpath(path, folder)}\0{len(data)}\0".encode())
            digest.update(data)
    return digest.hexdigest()


@functools.lru_cache(maxsize=8)
def _cached_environments(
    folder: str, _digest: str
) -> tuple[jinja2.Environment, jinja2.Environment]:
    loader = jinja2.FileSystemLoader(folder)
    # No trim_blocks for MJML: whitespace is insignificant there, and keeping every template
    # line intact lets an MJML error be traced back to its template line.
    html_env = jinja2.Environment(
        loader=loader,
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    text_env = jinja2.Environment(
        loader=loader,
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    for env in (html_env, text_env):
        env.filters["wrap"] = wrap
    return html_env, text_env


def _shown(campaign: Campaign, path: str | Path) -> str:
    try:
        return os.path.relpath(path, campaign.root).replace(os.sep, "/")
    except ValueError:
        return str(path)


def _spec_name(campaign: Campaign) -> str:
    return _shown(campaign, campaign.source) if campaign.source else "campaign"


def _jinja_error(campaign: Campaign, exc: Exception, name: str) -> RenderError:
    """Point at the template line of a Jinja failure (syntax, undefined name, bad include)."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        where = f"{_shown(campaign, exc.filename or name)}:{exc.lineno}"
        return RenderError(f"template syntax: {exc.message}", where=where)
    where = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename.endswith((".mjml", ".html", ".txt")):
            where = f"{_shown(campaign, filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    if isinstance(exc, jinja2.TemplateNotFound):
        return RenderError(
            f"includes {exc.name!r}, which is not in the templates folder",
            where=where or _shown(campaign, campaign.path("templates") / name),
        )
    if isinstance(exc, jinja2.UndefinedError):
        message = exc.message or "undefined value"
        return RenderError(
            f"{message} (the template uses a name the renderer does not provide)",
            where=where or name,
        )
    return RenderError(f"{type(exc).__name__}: {exc}", where=where or name)


def _template(campaign: Campaign, env: jinja2.Environment, name: str) -> jinja2.Template:
    folder = campaign.path("templates")
    if not (folder / name).is_file():
        raise RenderError(
            f"no template {name!r} (the campaign's template is {campaign.template!r})",
            where=_shown(campaign, folder / name),
            hint="Set 'template:' in the campaign to a name in templates/, e.g. course-menu.",
        )
    try:
        return env.get_template(name)
    except jinja2.TemplateError as exc:
        raise _jinja_error(campaign, exc, name) from None


def _render(campaign: Campaign, template: jinja2.Template, ctx: dict) -> str:
    try:
        return template.render(ctx)
    except RenderError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside a template is the template's
        raise _jinja_error(campaign, exc, template.name) from None


# ---------------------------------------------------------------------------------------
# Tracing rendered MJML back to template lines


@dataclass(frozen=True)
class _Chunk:
    start: int  # offset in the rendered text
    filename: str  # template file that produced it
    line: int  # template line where it starts


def _traced_render(template: jinja2.Template, ctx: dict) -> tuple[str, list[_Chunk]]:
    """Render while noting which template line produced each piece of output.

    Jinja's compiled templates are generators; after each yield the innermost suspended
    generator (an include runs as a generator held in the local ``gen``) sits on a code
    line that Jinja's debug info maps to a template line.
    """
    env = template.environment
    by_file: dict[str, jinja2.Template] = {}
    for name in env.list_templates():
        try:
            t = env.get_template(name)
        except jinja2.TemplateError:
            continue
        if t.filename:
            by_file[t.filename] = t
    root = template.root_render_func(template.new_context(ctx))
    pieces: list[str] = []
    chunks: list[_Chunk] = []
    pos = 0
    for piece in root:
        gen = root
        while True:
            inner = gen.gi_frame.f_locals.get("gen") if gen.gi_frame else None
            if (
                isinstance(inner, types.GeneratorType)
                and inner is not gen
                and inner.gi_frame is not None
            ):
                gen = inner
            else:
                break
        filename = gen.gi_code.co_filename
        code_line = gen.gi_frame.f_lineno if gen.gi_frame else 1
        t = by_file.get(filename)
        line = t.get_corresponding_lineno(code_line) if t else 1
        chunks.append(_Chunk(start=pos, filename=filename, line=line))
        pieces.append(piece)
        pos += len(piece)
    return "".join(pieces), chunks


def _locate(campaign: Campaign, rendered: str, chunks: list[_Chunk], offset: int) -> str:
    """``templates/<file>:line:column`` of a position in the rendered MJML."""
    if not chunks:
        return f"rendered MJML:{rendered.count(chr(10), 0, offset) + 1}"
    i = max(bisect.bisect_right([c.start for c in chunks], offset) - 1, 0)
    chunk = chunks[i]
    before = rendered[chunk.start : offset]
    line = chunk.line + before.count("\n")
    line_start = rendered.rfind("\n", 0, offset) + 1
    column = offset - line_start + 1
    try:
        source_lines = Path(chunk.filename).read_text(encoding="utf-8").splitlines()
    except OSError:
        source_lines = []
    # Constant text is attributed to the node before it, so the estimate can be a few lines
    # early: confirm it against the source, taking the match nearest the estimate and
    # shortening the probe until it no longer reaches into interpolated values.
    line_end = rendered.find("\n", offset)
    rest_of_line = rendered[offset : line_end if line_end >= 0 else len(rendered)]
    for size in (40, 20, 10, 5):
        probe = rest_of_line[:size]
        if not probe.strip() or not source_lines:
            break
        hits = [
            (abs(n - line), n, text.find(probe))
            for n, text in enumerate(source_lines, 1)
            if probe in text
        ]
        if hits:
            _, line, found = min(hits)
            column = found + 1
            break
    return f"{_shown(campaign, chunk.filename)}:{line}:{column}"


# ---------------------------------------------------------------------------------------
# MJML

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
    ``</mjml>``."""
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
                    f"the <{named.group(1)}{named.group(2)}> tag is malformed (check its attributes and closing >)",
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
        tag = leftover.group(1)
        at = source.find(f"<{tag}")
        raise RenderError(
            f"<{tag}> is not an MJML tag, or is not allowed where it is; MJML passed it "
            "through unconverted",
            where=locate(max(at, 0)),
            hint="Check the spelling against mjml.io/documentation.",
        )
    return out


# ---------------------------------------------------------------------------------------
# premailer


def _refuse_fetch(url: str):
    """cssutils fetcher for @import: never go to the network while building an email."""
    return None


class _OfflinePremailer(Premailer):
    """premailer whose CSS parser cannot fetch ``@import`` targets (cssutils would, by default,
    even with ``allow_network=False``)."""

    def _parse_css_string(self, css_body, validate=True):
        return cssutils.CSSParser(fetcher=_refuse_fetch, validate=validate).parseString(css_body)


_DOCTYPE_RE = re.compile(r"^\s*<!doctype\s+html\s*>", re.IGNORECASE)
_STYLE_OPEN_RE = re.compile(r"<style\b([^>]*)>(.*?)</style>", re.IGNORECASE | re.DOTALL)
_INLINE_STYLE_RE = re.compile(
    r"<mj-style\b[^>]*\binline\s*=\s*[\"']inline[\"'][^>]*>(.*?)</mj-style>",
    re.IGNORECASE | re.DOTALL,
)


def _normalised(css: str) -> str:
    return " ".join(css.split())


def inline_css(html: str, inline: list[str] | tuple[str, ...] = ()) -> str:
    """Inline the CSS of ``<mj-style inline="inline">`` blocks into ``style`` attributes.

    Only those blocks are inlined, like MJML's own juice step: mjml's head styles (resets,
    responsive media queries, Outlook fixes) are left exactly as written, ``!important``
    included, by marking them for premailer to ignore. No stylesheet or ``@import`` is
    ever fetched, and the doctype mjml writes in lower case is kept.
    """
    wanted = {_normalised(css) for css in inline if css.strip()}

    def mark(m: re.Match) -> str:
        attrs, body = m.group(1), m.group(2)
        if _normalised(body) in wanted and "data-premailer" not in attrs:
            return m.group(0)
        if "data-premailer" in attrs:
            return m.group(0)
        return f'<style data-premailer="ignore"{attrs}>{body}</style>'

    had_doctype = bool(_DOCTYPE_RE.match(html))
    prepared = _DOCTYPE_RE.sub("<!DOCTYPE html>", html, count=1)
    prepared = _STYLE_OPEN_RE.sub(mark, prepared)
    premailer = _OfflinePremailer(
        allow_network=False,  # no <link rel=stylesheet> downloads
        allow_loading_external_files=False,
        keep_style_tags=False,  # the inlined block itself goes; the ignored ones stay
        strip_important=False,
        remove_classes=False,
        disable_validation=True,  # mso-* and -webkit-* properties are fine in email
        disable_link_rewrites=True,
        cache_css_parsing=False,
        cssutils_logging_level=logging.CRITICAL,
    )
    try:
        out = premailer.transform(prepared, pretty_print=False)
    except (etree.LxmlError, ValueError) as exc:
        raise RenderError(f"premailer could not inline the CSS: {exc}") from None
    # premailer drops the marker only from the tags it looked at (not from those inside
    # Outlook's conditional comments or with a media attribute).
    out = out.replace(' data-premailer="ignore"', "")
    if had_doctype and not _DOCTYPE_RE.match(out):
        out = "<!DOCTYPE html>\n" + out
    return out


# ---------------------------------------------------------------------------------------
# The pipeline


def render_mjml(campaign: Campaign, segment_id: str) -> str:
    """The Jinja step alone: the MJML source of one segment (for validators and debugging)."""
    html_env, _ = _environments(campaign.path("templates"))
    template = _template(campaign, html_env, f"{campaign.template}.mjml.j2")
    return _render(
        campaign, template, _context(campaign, _segment(campaign, segment_id), _LinkBook())
    )


def _segment(campaign: Campaign, segment_id: str) -> Segment:
    try:
        return campaign.segment(segment_id)
    except KeyError:
        known = ", ".join(s.id for s in campaign.segments)
        raise RenderError(
            f"there is no segment {segment_id!r}; the segments are {known}",
            where=_spec_name(campaign),
        ) from None


def render_campaign(
    campaign: Campaign, segments: list[str] | None = None
) -> dict[str, RenderedSegment]:
    """Render each segment's email once (all segments, or the ones named)."""
    folder = campaign.path("templates")
    if not folder.is_dir():
        raise RenderError(
            "no templates folder",
            where=_shown(campaign, folder),
            hint="Run from the project folder, or keep templates/ next to campaigns/.",
        )
    html_env, text_env = _environments(folder)
    html_template = _template(campaign, html_env, f"{campaign.template}.mjml.j2")
    text_template = _template(campaign, text_env, f"{campaign.template}.txt.j2")
    wanted = [_segment(campaign, s) for s in segments] if segments else list(campaign.segments)
    return {s.id: _render_segment(campaign, s, html_template, text_template) for s in wanted}


def _render_segment(
    campaign: Campaign,
    segment: Segment,
    html_template: jinja2.Template,
    text_template: jinja2.Template,
) -> RenderedSegment:
    book = _LinkBook()
    ctx = _context(campaign, segment, book)
    source = _render(campaign, html_template, ctx)

    def locate(offset: int) -> str:
        # Only on failure: render again, noting which template line wrote what.
        traced, chunks = _traced_render(html_template, _context(campaign, segment, _LinkBook()))
        if traced != source:
            return _shown(campaign, html_template.filename or html_template.name)
        return _locate(campaign, traced, chunks, offset)

    compiled = compile_mjml(source, locate)
    html = inline_css(compiled, [m.group(1) for m in _INLINE_STYLE_RE.finditer(source)])
    text = _render(campaign, text_template, _text_context(ctx))
    text = _tidy_text(text)
    rendered = RenderedSegment(
        segment_id=segment.id,
        subject=ctx["subject"],
        preheader=ctx["preheader"],
        html=html,
        text=text,
        links=tuple(book.specs),
    )
    known = {html_token(n) for n in (*PLACEHOLDERS, "unsubscribe")} | {
        text_token(n) for n in (*PLACEHOLDERS, "unsubscribe")
    }
    known |= {
        f(link_token_name(i)) for i in range(len(book.specs)) for f in (html_token, text_token)
    }
    strays = sorted(rendered.tokens - known)
    if strays:
        raise RenderError(
            f"the email contains token(s) the renderer did not make: {', '.join(strays)}",
            where=_shown(campaign, html_template.filename or html_template.name),
        )
    return rendered


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    out = "\n".join(lines).strip("\n")
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out + "\n"
