"""From a rendered segment and ledger rows to the ``Batch`` a backend is given.

Per segment the content is rendered ONCE and its links registered and keyed once
(``prepare_segment``), with its link and unsubscribe URLs written in around one token; each
reader then only gets a dict of substitution values (their name, practice and reader token,
``send.links``) and a display name (``build_batch``). The send loop and the dry run build
batches this way, so what a dry run measures is what a send posts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.audience import Recipient
from equip_mailer.config import Settings
from equip_mailer.store import ensure_campaign

from .batch import Addressee, Batch, Content, display_name
from .ledger_rows import Row
from .links import (
    CLICK_PATH,
    UNSUBSCRIBE_PREFIX,
    click_url_maker,
    reader_token_maker,
    register_links,
)

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.compose.render.personalisation import RenderedSegment

# Rendering reads a reader's name, practice, role, level and source. The send loop passes
# ledger Rows, which carry exactly those attributes (see ledger_rows.Row), where compose's
# functions are declared to take a Recipient: a tuple is far cheaper than a Recipient per
# reader. The casts below, at the boundary with compose, say so once.
Reader = Recipient | Row
ReaderValues = Callable[[Reader, str], dict[str, str]]  # per segment, with the reader token
RecipientValues = Callable[["RenderedSegment", Reader, dict[str, str], str], dict[str, str]]


@dataclass(frozen=True)
class Renderer:
    """What sending needs from compose: each segment rendered once, and a reader's values.
    A parameter of the send functions, so content rendered another way can be sent too."""

    render_campaign: Callable[..., dict[str, RenderedSegment]]
    recipient_values: RecipientValues


def default_renderer() -> Renderer:
    """compose's renderer (imported late: it loads MJML and CSS inlining, which reading the
    ledger for ``status`` or ``cancel`` does not need)."""
    from equip_mailer.compose.render.personalisation import recipient_values
    from equip_mailer.compose.render.pipeline import render_campaign

    return Renderer(
        render_campaign=render_campaign,
        recipient_values=cast(RecipientValues, recipient_values),
    )


def spec_hash(campaign: Campaign) -> str | None:
    src = campaign.source
    try:
        return hashlib.sha256(src.read_bytes()).hexdigest() if src else None
    except OSError:
        return None


def register_campaign(engine: Engine, campaign: Campaign) -> None:
    """The campaign's row in the store, which the ledger, its lock and links hang from."""
    with engine.begin() as conn:
        ensure_campaign(
            conn,
            campaign.id,
            campaign.subject,
            str(campaign.source) if campaign.source else None,
            spec_hash(campaign),
        )


@dataclass
class PreparedSegment:
    """A segment ready to send: rendered once, links registered and keyed once."""

    content: Content
    rendered: RenderedSegment
    link_urls: Callable[[int], dict[str, str]]  # ledger id -> {link key: URL}
    reader_token: Callable[[int], str]  # ledger id -> the token in all of their URLs
    unsubscribe_prefix: str  # our /u/ URL (always ours) without its token
    # personalisation.reader_values_builder, when content has the URLs written in
    values: ReaderValues | None = None

    def unsubscribe(self, ledger_id: int) -> str:
        return self.unsubscribe_prefix + self.reader_token(ledger_id)


def prepare_segment(
    conn: Connection,
    campaign: Campaign,
    rendered: RenderedSegment,
    settings: Settings,
    secret: bytes,
    values_fn: RecipientValues | None = None,
) -> PreparedSegment:
    """Register the segment's links and key its URL makers. With compose's own
    ``recipient_values`` as ``values_fn``, also prepare its per-segment values builder."""
    specs = list(rendered.links)
    link_ids = register_links(conn, campaign.id, specs)
    base = settings.public_url.rstrip("/")
    tracked = campaign.tracking.clicks == "equip"
    urls: Callable[[int], dict[str, str]]
    if tracked:
        urls = click_url_maker(settings.public_url, secret, link_ids)
    else:
        plain = {s.key: s.url for s in specs}  # SendGrid rewrites them for its own tracking
        urls = lambda _ledger_id: plain  # noqa: E731
    values = None
    subject, html, text = rendered.subject, rendered.html, rendered.text
    if values_fn is not None:
        from equip_mailer.compose.render import personalisation
        from equip_mailer.compose.render.tokens import READER_TOKEN

        if values_fn is personalisation.recipient_values:
            # The same mail as recipient_values makes, with the URLs written in once.
            subject, html, text = personalisation.with_reader_urls(
                rendered,
                [
                    base + CLICK_PATH.format(token=READER_TOKEN, link_id=link_ids[s.key])
                    if tracked
                    else s.url
                    for s in specs
                ],
                base + UNSUBSCRIBE_PREFIX + READER_TOKEN,
            )
            values = cast(ReaderValues, personalisation.reader_values_builder(rendered))
    return PreparedSegment(
        content=Content(segment=rendered.segment_id, subject=subject, html=html, text=text),
        rendered=rendered,
        link_urls=urls,
        reader_token=reader_token_maker(secret),
        unsubscribe_prefix=base + UNSUBSCRIBE_PREFIX,
        values=values,
    )


def addressee(
    seg: PreparedSegment, recipient: Reader, ledger_id: int, values_fn: RecipientValues
) -> Addressee:
    """One reader of a batch, through ``values_fn`` (the unprepared way: test sends)."""
    unsub = seg.unsubscribe(ledger_id)
    # recipient_values refuses substitutions over SendGrid's 10,000 bytes itself
    values = values_fn(seg.rendered, recipient, seg.link_urls(ledger_id), unsub)
    return Addressee(
        ledger_id=ledger_id,
        email=recipient.email,
        name=display_name(recipient.first_name, recipient.last_name),
        values=values,
        unsubscribe_url=unsub,
    )


def build_batch(
    seg: PreparedSegment,
    rows: list[Row],
    campaign: Campaign,
    values_fn: RecipientValues,
    send_id: str = "",
) -> Batch:
    """The batch for these rows (its send id comes with the claim, just before sending)."""
    if seg.values is None:
        addressees = [addressee(seg, r, r.id, values_fn) for r in rows]
    else:
        # The same mail through the per-segment builders: one token per reader fills all
        # of their URLs; recipient_values' checks still run for each reader.
        values, token, unsubscribe = seg.values, seg.reader_token, seg.unsubscribe_prefix
        addressees = []
        append = addressees.append
        for r in rows:
            tok = token(r.id)
            append(
                Addressee(
                    r.id,
                    r.email,
                    display_name(r.first_name, r.last_name),
                    values(r, tok),
                    unsubscribe + tok,
                )
            )
    return Batch(
        campaign_id=campaign.id, send_id=send_id, content=seg.content, addressees=addressees
    )
