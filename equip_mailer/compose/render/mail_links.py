"""The links an email contains: what each is called, where it points, and its token.

Sign-up buttons and the links in the spec's Markdown and footer become ``LinkSpec``s, numbered
in the order a reader meets them so ``-eq_link_0-`` is the first. Tracked links are replaced
by tokens here and registered and signed by ``send.links`` later; untracked ones keep their
URL. Both ``send`` and the tracking service read ``LinkSpec``, so it lives on this side of the
pipeline: compose never imports from send.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..campaign import Campaign
from .tokens import html_token, link_token_name, text_token


@dataclass(frozen=True)
class LinkSpec:
    """A link the campaign's emails carry, before it has a row in the registry."""

    key: str  # stable within a campaign: "equip-basics@2019-06-27", "about"
    url: str  # target, UTM parameters already added
    label: str
    course_id: str | None = None
    session: str | None = None  # session date (ISO) for per-session links


def with_utm(url: str, *, source: str, campaign: str, content: str | None) -> str:
    """Add UTM parameters, keeping any the author already set."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    extra = [("utm_source", source), ("utm_medium", "email"), ("utm_campaign", campaign)]
    if content:
        extra.append(("utm_content", content))
    query += [(k, v) for k, v in extra if k not in present]
    return urlunsplit(parts._replace(query=urlencode(query)))


class LinkBook:
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
    book: LinkBook | None = field(default=None, compare=False, repr=False)

    @property
    def html(self) -> str:
        return html_token(link_token_name(self.book.use(self.spec))) if self.book else self.spec.url

    @property
    def text(self) -> str:
        return text_token(link_token_name(self.book.use(self.spec))) if self.book else self.spec.url

    @property
    def label(self) -> str:
        return self.spec.label


def target_url(campaign: Campaign, url: str, content: str) -> str:
    """``url`` with the UTM parameters the campaign's tracking settings ask for."""
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


def other_link(campaign: Campaign, book: LinkBook, url: str, label: str) -> LinkRef:
    """A link that is not a sign-up: tracked as ``link:<name>`` when the spec says so."""
    if not campaign.tracking.track_other_links or not url.lower().startswith(
        ("http://", "https://")
    ):
        return LinkRef(LinkSpec(key=url, url=url, label=label))
    name = next((n for n, u in campaign.links.items() if u == url), None) or link_slug(url)
    return LinkRef(
        LinkSpec(key=f"link:{name}", url=target_url(campaign, url, name), label=label), book
    )
