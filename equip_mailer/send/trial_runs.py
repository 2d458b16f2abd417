"""Trying a send without sending to the list: ``--dry-run`` and ``--test-to``.

A dry run does everything a send would do up to the request (ledger sync, link registry,
the first batch and its request body) inside a transaction that is rolled back, so the
manager sees counts and sizes and the store is left exactly as it was. A test send mails
one copy of each segment to one address, outside the ledger, with a made-up reader's
values: the real list's names never go to the test address.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from equip_mailer.compose.audience import Recipient
from equip_mailer.config import Settings, mask_email
from equip_mailer.store import ensure_campaign

from .batch import Backend, Batch, BatchResult, check_addressee
from .campaign_mail import CampaignMail
from .dispatch import DEFAULT_OPTIONS, SendOptions
from .ledger_rows import count_sendable, next_rows
from .ledger_sync import sync_audience
from .links import TEST_RECIPIENT
from .prepare import Renderer, addressee, build_batch, default_renderer, prepare_segment
from .sendgrid_request import build_request

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign


@dataclass(frozen=True)
class DryRun:
    counts: dict[str, int]  # segment -> recipients a run would send
    first_segment: str | None = None
    first_personalizations: int = 0
    first_request_bytes: int = 0
    content_bytes: int = 0
    example: dict[str, Any] = field(default_factory=dict)  # one personalization, masked
    requests: int = 0


def dry_run(
    campaign: Campaign,
    engine: Engine,
    audience_by_segment: dict[str, list[Recipient]],
    suppressed: set[str],
    settings: Settings,
    mail: CampaignMail,
    options: SendOptions = DEFAULT_OPTIONS,
    *,
    render: Renderer | None = None,
    in_file: set[str] | None = None,
) -> DryRun:
    """Everything a send would do up to the request, inside a transaction that is rolled
    back: the ledger (and link registry) are left exactly as they were. ``in_file``: the
    listed addresses the campaign's suppression file left out, synced as the send syncs
    them (``Audience.file_suppressed``)."""
    render = render or default_renderer()
    secret = settings.require_link_secret()
    states, size = options.states, options.request_size
    if mail.send_at is not None and not mail.sg_batch_id:
        mail = replace(mail, sg_batch_id="(created when sending)")  # no request in a dry run
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            ensure_campaign(conn, campaign.id, campaign.subject)
            sync_audience(conn, campaign.id, audience_by_segment, suppressed, in_file or ())
            ordered = _in_spec_order(
                campaign,
                count_sendable(conn, campaign.id, states, options.uncertain_before),
                options.limit,
            )
            requests = sum(-(-n // size) for n in ordered.values())
            if not ordered:
                return DryRun(counts={})
            first = next(iter(ordered))
            rendered = render.render_campaign(
                campaign, segments=[first], pages_url=settings.public_url
            )[first]
            seg = prepare_segment(
                conn, campaign, rendered, settings, secret, render.recipient_values
            )
            rows = next_rows(
                conn,
                campaign.id,
                first,
                min(size, ordered[first]),
                states,
                uncertain_before=options.uncertain_before,
            )
            batch = build_batch(seg, rows, campaign, render.recipient_values, send_id="dry-run")
            body = build_request(mail, batch)
        finally:
            tx.rollback()
    return DryRun(
        counts=ordered,
        first_segment=first,
        first_personalizations=len(body["personalizations"]),
        first_request_bytes=len(json.dumps(body).encode()),
        content_bytes=len(batch.content.html.encode()) + len(batch.content.text.encode()),
        example=_masked(body["personalizations"][0]),
        requests=requests,
    )


def _in_spec_order(campaign: Campaign, counts: dict[str, int], limit: int | None) -> dict[str, int]:
    """Recipients per segment in the spec's order, as a run with ``limit`` would take them."""
    if limit is not None:
        left, limited = limit, {}
        for s in campaign.segments:
            take = min(left, counts.get(s.id, 0))
            if take:
                limited[s.id] = take
            left -= take
        counts = limited
    return {s.id: counts[s.id] for s in campaign.segments if counts.get(s.id)}


def _masked(personalization: dict[str, Any]) -> dict[str, Any]:
    """One personalization to show: address masked, name and values left out."""
    example = dict(personalization)
    example["to"] = [
        {"email": mask_email(t["email"]), **({"name": "***"} if "name" in t else {})}
        for t in example["to"]
    ]
    example["substitutions"] = f"{len(example['substitutions'])} values"
    example["headers"] = {"List-Unsubscribe": "<…/u/TOKEN>"}
    return example


def sample_recipient(address: str, qi_level: str) -> Recipient:
    """A made-up reader for --test-to: the real list's names never go to the test address."""
    return Recipient(
        email=address,
        first_name="Sam",
        last_name="Example",
        practice="Example Medical Centre",
        role="Practice manager",
        qi_level=qi_level,
        source="--test-to",
    )


def send_test(
    campaign: Campaign,
    engine: Engine,
    backend: Backend,
    settings: Settings,
    address: str,
    *,
    render: Renderer | None = None,
) -> list[tuple[str, BatchResult]]:
    """One copy of each segment's email to ``address``, subject prefixed ``[TEST] ``, outside
    the ledger: ledger id 0 in every token, so its links redirect but record nothing."""
    render = render or default_renderer()
    secret = settings.require_link_secret()
    rendered = render.render_campaign(campaign, pages_url=settings.public_url)
    results: list[tuple[str, BatchResult]] = []
    for s in campaign.segments:
        if s.id not in rendered:
            continue
        with engine.begin() as conn:
            seg = prepare_segment(conn, campaign, rendered[s.id], settings, secret)
        who = sample_recipient(address, s.qi_levels[0])
        a = addressee(seg, who, TEST_RECIPIENT, render.recipient_values)
        batch = Batch(
            campaign_id=campaign.id,
            send_id=f"test-{os.urandom(6).hex()}",
            content=seg.content,
            addressees=[a],
            test=True,
        )
        check_addressee(batch, a)
        results.append((s.id, backend.send_batch(batch)))
        if results[-1][1].stop:
            break
    return results
