"""Personalisation: one rendered segment becomes each reader's email by filling its tokens.

Sending costs one string substitution per recipient (``personalise``), or none at all when
SendGrid substitutes the same tokens itself: ``recipient_values`` is exactly its
``substitutions`` dict, and ``values_builder`` prepares it once per segment for many readers.
SendGrid caps that dict at 10,000 bytes per recipient, so the size is checked here, where the
reader whose values are too long can be named.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from equip_mailer.errors import RenderError

from ..audience import Recipient
from .mail_links import LinkSpec
from .tokens import (
    BLANK_VALUES,
    PLACEHOLDERS,
    READER_TOKEN,
    TOKEN_RE,
    html_token,
    link_token_name,
    text_token,
)

SUBSTITUTIONS_LIMIT = 10_000  # bytes per SendGrid personalization


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
    _parts: tuple[tuple[str, ...], tuple[str, ...]] = field(
        init=False, repr=False, compare=False, default=((), ())
    )

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


# name, HTML token, text token, value when the list's cell is blank
_Placeholder = tuple[str, str, str, str]
_UrlTokens = tuple[str, str]  # HTML token, text token


_PLACEHOLDERS: tuple[_Placeholder, ...] = tuple(
    (name, html_token(name), text_token(name), BLANK_VALUES[name]) for name in PLACEHOLDERS
)
_PLACEHOLDER_KEY_BYTES = sum(len(k.encode("utf-8")) for _, h, t, _ in _PLACEHOLDERS for k in (h, t))


@functools.lru_cache(maxsize=64)
def _token_plan(n_links: int) -> tuple[tuple[_UrlTokens, ...], _UrlTokens, int]:
    """The URL tokens of a segment with ``n_links`` links (links, unsubscribe), and the bytes
    all of its keys take."""
    urls = tuple((html_token(name), text_token(name)) for name in _url_names(n_links))
    key_bytes = _PLACEHOLDER_KEY_BYTES + sum(len(h) + len(t) for h, t in urls)
    return urls[:-1], urls[-1], key_bytes


def _placeholder_values(recipient: Recipient) -> dict[str, str]:
    """A reader's name and practice under both tokens: escaped for HTML (only when they
    hold a character that needs it), raw for text, the fallback where the cell is blank."""
    values: dict[str, str] = {}
    for name, h, t, blank in _PLACEHOLDERS:
        value = (getattr(recipient, name) or "").strip() or blank
        values[h] = html_lib.escape(value, quote=True) if _NEEDS_ESCAPE(value) else value
        values[t] = value
    return values


def values_builder(
    rendered: RenderedSegment,
) -> Callable[[Recipient, list[str], str], dict[str, str]]:
    """``recipient_values`` for many readers of one segment, prepared once: called with the
    link URLs as a list in ``rendered.links`` order. Same dict, same size check; per reader
    only the values are escaped (when they contain a character that needs it) and measured."""
    link_tokens, (h_unsub, t_unsub), key_bytes = _token_plan(len(rendered.links))
    n_links = len(link_tokens)
    escape = html_lib.escape
    needs = _NEEDS_ESCAPE

    def build(recipient: Recipient, urls: list[str], unsubscribe_url: str) -> dict[str, str]:
        values = _placeholder_values(recipient)
        if len(urls) != n_links:
            raise RenderError(
                f"{len(urls)} link URLs for the {n_links} links of segment {rendered.segment_id!r}",
                hint="Register every link of the rendered segment before sending.",
            )
        for (h, t), url in zip(link_tokens, urls, strict=True):
            values[h] = escape(url, quote=True) if needs(url) else url
            values[t] = url
        values[h_unsub] = (
            escape(unsubscribe_url, quote=True) if needs(unsubscribe_url) else unsubscribe_url
        )
        values[t_unsub] = unsubscribe_url
        _check_size(values, key_bytes, recipient)
        return values

    return build


def with_reader_urls(
    rendered: RenderedSegment, link_urls: list[str], unsubscribe_url: str
) -> tuple[str, str, str]:
    """(subject, html, text) of the segment with every link's URL (in ``rendered.links``
    order) and the unsubscribe URL written in, for ``reader_values_builder``.

    The URLs are the same for every reader of the segment but for ``READER_TOKEN`` inside
    the tracked ones, so per reader one value fills them all: a send signs each reader
    once, not once per link, and a SendGrid request carries one short value per reader
    instead of one URL per link. HTML gets the URLs escaped (the token needs none)."""
    names = _url_names(len(rendered.links))
    if len(link_urls) != len(names) - 1:
        raise RenderError(
            f"{len(link_urls)} link URLs for the {len(names) - 1} links of segment "
            f"{rendered.segment_id!r}",
            hint="Register every link of the rendered segment before sending.",
        )
    raw = dict(zip(names, [*link_urls, unsubscribe_url], strict=True))
    subject, html, text = rendered.subject, rendered.html, rendered.text
    for name, url in raw.items():
        subject = subject.replace(html_token(name), url).replace(text_token(name), url)
        html = html.replace(html_token(name), html_lib.escape(url, quote=True))
        text = text.replace(text_token(name), url)
    return subject, html, text


def reader_values_builder(rendered: RenderedSegment) -> Callable[[Recipient, str], dict[str, str]]:
    """A reader's values for content from ``with_reader_urls``: their placeholders as
    ``recipient_values`` gives them, and their reader token. Same size check."""
    key_bytes = _PLACEHOLDER_KEY_BYTES + len(READER_TOKEN)

    def build(recipient: Recipient, reader_token: str) -> dict[str, str]:
        values = _placeholder_values(recipient)
        values[READER_TOKEN] = reader_token
        _check_size(values, key_bytes, recipient)
        return values

    return build


def _check_size(values: dict[str, str], key_bytes: int, recipient: Recipient) -> None:
    joined = "".join(values.values())
    size = key_bytes + (len(joined) if joined.isascii() else len(joined.encode("utf-8")))
    if size > SUBSTITUTIONS_LIMIT:
        raise RenderError(
            f"the personal values for {recipient.source} take {size:,} bytes; "
            f"SendGrid allows {SUBSTITUTIONS_LIMIT:,} per recipient",
            where=recipient.source,
            hint="Use fewer or shorter links, or shorten the names in the list.",
        )


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
