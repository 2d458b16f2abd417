"""The send loop: render once per segment, then claim, send and record batch after batch.

Per segment the content is rendered ONCE; each recipient only gets a dict of substitution
values (their name, practice, signed link URLs, unsubscribe URL). Per batch there are three
committed database steps (claim, request, record), never one per recipient.

An error budget pauses the run when too many batches fail or end uncertain, instead of
burning through the list (listmonk's lesson); the message says how to carry on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html as html_lib
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy.engine import Engine

from equip_mailer.compose.audience import Recipient, gc_paused
from equip_mailer.config import Settings, mask_email
from equip_mailer.errors import DeliveryError, EquipError
from equip_mailer.store import ensure_campaign, utcnow

from .delivery import (
    MAX_PER_REQUEST,
    Addressee,
    Backend,
    Batch,
    CampaignMail,
    Content,
    build_request,
    check_addressee,
    display_name,
)
from .ledger import SENDABLE, Ledger, Row, count_sendable, next_rows, sync_audience
from .links import (
    TEST_RECIPIENT,
    click_url_list_maker,
    click_url_maker,
    register_links,
    unsubscribe_url_maker,
)

DEFAULT_MAX_BAD_BATCHES = 3


def renderer() -> Any:
    """The render module's two functions the loop needs (imported late: optional in tests)."""
    from equip_mailer.compose import render

    return SimpleNamespace(
        render_campaign=render.render_campaign, recipient_values=render.recipient_values
    )


@dataclass(frozen=True)
class SendOptions:
    limit: int | None = None  # at most this many recipients in this run
    retry_uncertain: bool = False  # also send rows a dead run left uncertain
    batch_size: int = MAX_PER_REQUEST
    max_bad_batches: int = DEFAULT_MAX_BAD_BATCHES  # error budget per run

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kw: Any) -> SendOptions:
        """EQUIP_BATCH_SIZE (1..1000) and EQUIP_MAX_BAD_BATCHES tune a run (tests, slow links)."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for var, name, lo, hi in (
            ("EQUIP_BATCH_SIZE", "batch_size", 1, MAX_PER_REQUEST),
            ("EQUIP_MAX_BAD_BATCHES", "max_bad_batches", 1, 10**6),
        ):
            if env.get(var, "").strip():
                try:
                    n = int(env[var])
                except ValueError:
                    n = lo - 1
                if not lo <= n <= hi:
                    raise EquipError(
                        f"{var} must be a whole number from {lo} to {hi}, not {env[var]!r}"
                    )
                values[name] = n
        values.update(kw)
        return cls(**values)


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    batches: int = 0
    by_segment: Counter = field(default_factory=Counter)
    recovered: int = 0  # in-flight batches of a dead run, now uncertain
    stopped: str | None = None  # why the run ended early (one sentence)
    hint: str | None = None
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def spec_hash(campaign: Any) -> str | None:
    src = getattr(campaign, "source", None)
    try:
        return hashlib.sha256(src.read_bytes()).hexdigest() if src else None
    except OSError:
        return None


def register_campaign(engine: Engine, campaign: Any) -> None:
    with engine.begin() as conn:
        ensure_campaign(
            conn,
            campaign.id,
            campaign.subject,
            str(campaign.source) if campaign.source else None,
            spec_hash(campaign),
        )


@dataclass
class _Segment:
    """A segment ready to send: rendered once, links registered and keyed once."""

    content: Content
    rendered: Any
    link_urls: Callable[[int], dict[str, str]]  # ledger id -> {link key: URL}
    unsubscribe: Callable[[int], str]  # ledger id -> our /u/ URL (always ours)
    url_list: Callable[[int], list[str]] | None = None  # ledger id -> URLs in link order
    values: Callable | None = None  # render.values_builder(rendered)


def _prepare(
    conn,
    campaign: Any,
    rendered: Any,
    settings: Settings,
    secret: bytes,
    values_fn: Callable | None = None,
) -> _Segment:
    specs = list(rendered.links)
    link_ids = register_links(conn, campaign.id, specs)
    if campaign.tracking.clicks == "equip":
        urls = click_url_maker(settings.public_url, secret, link_ids)
        url_list = click_url_list_maker(
            settings.public_url, secret, [link_ids[s.key] for s in specs]
        )
    else:
        plain = {s.key: s.url for s in specs}  # SendGrid rewrites them for its own tracking
        plain_list = [s.url for s in specs]
        urls = lambda _ledger_id: plain  # noqa: E731
        url_list = lambda _ledger_id: plain_list  # noqa: E731
    values = None
    subject, text = rendered.subject, rendered.text
    if values_fn is not None:
        from equip_mailer.compose import render as render_module

        if values_fn is render_module.recipient_values:
            # The same dict, prepared once. Our own click and unsubscribe URLs are the public
            # URL plus base64url characters: when the public URL needs no HTML escaping,
            # neither does any of them, so both parts share one token per URL (a third
            # smaller request, the same mail).
            shared = (
                campaign.tracking.clicks == "equip"
                and html_lib.escape(settings.public_url, quote=True) == settings.public_url
            )
            values = render_module.values_builder(rendered, shared_urls=shared)
            if shared:
                subject = render_module.share_url_tokens(subject, len(specs))
                text = render_module.share_url_tokens(text, len(specs))
    return _Segment(
        content=Content(
            segment=rendered.segment_id, subject=subject, html=rendered.html, text=text
        ),
        rendered=rendered,
        link_urls=urls,
        unsubscribe=unsubscribe_url_maker(settings.public_url, secret),
        url_list=url_list,
        values=values,
    )


def _addressee(
    seg: _Segment,
    recipient: Recipient,
    ledger_id: int,
    settings: Settings,
    secret: bytes,
    values_fn: Callable,
) -> Addressee:
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
    seg: _Segment,
    rows: list[Row],
    campaign: Any,
    settings: Settings,
    secret: bytes,
    values_fn: Callable,
    send_id: str = "",
) -> Batch:
    if seg.values is None:
        addressees = [_addressee(seg, r, r.id, settings, secret, values_fn) for r in rows]
    else:
        # The same Addressees through the per-segment builders (no per-reader dict of link
        # keys, token names made once); recipient_values' checks still run for each reader.
        values, url_list, unsubscribe = seg.values, seg.url_list, seg.unsubscribe
        addressees = []
        append = addressees.append
        for r in rows:
            ledger_id = r.id
            unsub = unsubscribe(ledger_id)
            append(
                Addressee(
                    ledger_id,
                    r.email,
                    display_name(r.first_name, r.last_name),
                    values(r, url_list(ledger_id), unsub),
                    unsub,
                )
            )
    return Batch(
        campaign_id=campaign.id, send_id=send_id, content=seg.content, addressees=addressees
    )


FINISH_TRIES = 4  # recording an answer: tries, with a short backoff between


def _finish(ledger: Ledger, batch_db_id: int, state: str, **kw: Any) -> None:
    """ledger.finish, tried again a few times: a 202 must not stay in_flight (and later become
    uncertain) because of one passing database error."""
    for attempt in range(FINISH_TRIES):
        try:
            ledger.finish(batch_db_id, state, **kw)
            return
        except Exception:
            if attempt == FINISH_TRIES - 1:
                raise
            time.sleep(0.1 * 2**attempt)


def _states(options: SendOptions) -> tuple[str, ...]:
    return SENDABLE + (("uncertain",) if options.retry_uncertain else ())


def run_send(
    campaign: Any,
    engine: Engine,
    ledger: Ledger,
    backend: Backend,
    settings: Settings,
    options: SendOptions = SendOptions(),
    *,
    render: Any = None,
    progress: Callable[[str, int], None] | None = None,
) -> SendReport:
    """Send every sendable row of the campaign (the caller holds the lock and has synced).

    One request is in flight at a time, posted from a worker thread, so that the next batch
    is read and built while the previous request travels and the server works (build only:
    the next claim still waits for the previous answer to be recorded, so a stop or a pause
    never leaves a claimed batch unsent). ``progress(segment, n)`` is called after each
    batch with the recipients it sent.
    """
    render = render or renderer()
    secret = settings.require_link_secret()
    report = SendReport()
    started = time.monotonic()
    run_start = utcnow()
    states = _states(options)
    todo = ledger.sendable(states)
    segments = [s.id for s in campaign.segments if todo.get(s.id)]
    if not segments:
        return report
    rendered = render.render_campaign(campaign, segments=segments)
    size = max(1, min(options.batch_size, MAX_PER_REQUEST))
    left = [options.limit]

    def drafts():
        """(segment, rows, batch without send id), built ahead of the claim."""
        for seg_id in segments:
            with engine.begin() as conn:
                seg = _prepare(
                    conn, campaign, rendered[seg_id], settings, secret, render.recipient_values
                )
            last_id = 0
            while left[0] is None or left[0] > 0:
                n = size if left[0] is None else min(size, left[0])
                rows = ledger.next_rows(seg_id, n, states, before=run_start, after_id=last_id)
                if not rows:
                    break
                last_id = rows[-1].id
                if left[0] is not None:
                    left[0] -= len(rows)
                # Built (and checked) before claiming: a refusal here leaves nothing in flight.
                yield (
                    seg_id,
                    rows,
                    build_batch(seg, rows, campaign, settings, secret, render.recipient_values),
                )

    bad = 0

    def settle(flight: tuple, result: Any) -> bool:
        """Record a batch's answer; False when the run must stop."""
        nonlocal bad
        _, batch_db_id, seg_id, count = flight
        _finish(
            ledger,
            batch_db_id,
            result.state,
            status=result.status,
            message_id=result.message_id,
            error=result.error,
            attempts=result.attempts,
        )
        report.batches += 1
        if result.state == "sent":
            report.sent += count
            report.by_segment[seg_id] += count
            if progress:
                progress(seg_id, count)
        else:
            bad += 1
            if result.state == "failed":
                report.failed += count
            else:
                report.uncertain += count
        if result.stop:
            report.stopped, report.hint = result.error, result.hint
            return False
        if bad >= options.max_bad_batches:
            report.stopped = (
                f"paused after {bad} batches that failed or got no answer (last: {result.error})"
            )
            report.hint = resume_hint(campaign, report.uncertain > 0)
            return False
        return True

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="equip-send")
    flight: tuple | None = None  # (future, batch row id, segment, recipients)
    # Batches are acyclic: the collector would only re-scan them (and the audience) again.
    with gc_paused():
        try:
            for seg_id, rows, draft in drafts():  # building overlaps the request in flight
                if flight is not None:
                    result = flight[0].result()  # raises here keep the flight for except
                    done, flight = flight, None
                    if not settle(done, result):
                        break
                batch_db_id, send_id = ledger.claim(
                    seg_id, [r.id for r in rows], backend.name, states
                )
                batch = Batch(
                    campaign_id=draft.campaign_id,
                    send_id=send_id,
                    content=draft.content,
                    addressees=draft.addressees,
                )
                flight = (pool.submit(backend.send_batch, batch), batch_db_id, seg_id, len(rows))
            if flight is not None:
                result = flight[0].result()
                done, flight = flight, None
                settle(done, result)
        except BaseException as exc:
            if flight is not None:
                future, batch_db_id = flight[0], flight[1]
                if not isinstance(exc, KeyboardInterrupt):
                    # The request goes on regardless: wait for its real answer and record it,
                    # rather than calling a batch uncertain that may well come back 202.
                    wait([future])
                if future.done() and future.exception() is None:
                    settle(flight, future.result())  # the answer came: record it as it is
                else:
                    why = (
                        "interrupted (Ctrl+C) while this request was in flight"
                        if isinstance(exc, KeyboardInterrupt)
                        else f"the send stopped ({type(exc).__name__}) while this request was in flight"
                    )
                    _finish(ledger, batch_db_id, "uncertain", error=why)
            raise
        finally:
            pool.shutdown(wait=False)
    report.seconds = time.monotonic() - started
    return report


def resume_hint(campaign: Any, uncertain: bool) -> str:
    src = str(campaign.source) if getattr(campaign, "source", None) else campaign.id
    text = f"Run `equip-mailer send {src}` again to carry on: nothing already sent goes twice."
    if uncertain:
        text += (
            " Recipients of batches with no answer are left out (SendGrid may have accepted "
            "them); see `equip-mailer status`, and add --retry-uncertain only if you "
            "accept that some of them may get two copies."
        )
    return text


# ---------------------------------------------------------------------------------------
# --dry-run and --test-to


@dataclass(frozen=True)
class DryRun:
    counts: dict[str, int]  # segment -> recipients a run would send
    first_segment: str | None = None
    first_personalizations: int = 0
    first_request_bytes: int = 0
    content_bytes: int = 0
    example: dict = field(default_factory=dict)  # one personalization, address masked
    requests: int = 0


def dry_run(
    campaign: Any,
    engine: Engine,
    audience_by_segment: dict[str, list[Recipient]],
    suppressed: set[str],
    settings: Settings,
    mail: CampaignMail,
    options: SendOptions = SendOptions(),
    *,
    render: Any = None,
) -> DryRun:
    """Everything a send would do up to the request, inside a transaction that is rolled
    back: the ledger (and link registry) are left exactly as they were."""
    render = render or renderer()
    secret = settings.require_link_secret()
    states = _states(options)
    size = max(1, min(options.batch_size, MAX_PER_REQUEST))
    if mail.send_at is not None and not mail.sg_batch_id:
        from dataclasses import replace

        mail = replace(mail, sg_batch_id="(created when sending)")  # no request in a dry run
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            ensure_campaign(conn, campaign.id, campaign.subject)
            sync_audience(conn, campaign.id, audience_by_segment, suppressed)
            counts = count_sendable(conn, campaign.id, states)
            if options.limit is not None:
                left, limited = options.limit, {}
                for s in campaign.segments:
                    take = min(left, counts.get(s.id, 0))
                    if take:
                        limited[s.id] = take
                    left -= take
                counts = limited
            ordered = {s.id: counts[s.id] for s in campaign.segments if counts.get(s.id)}
            requests = sum(-(-n // size) for n in ordered.values())
            if not ordered:
                return DryRun(counts={})
            first = next(iter(ordered))
            rendered = render.render_campaign(campaign, segments=[first])[first]
            seg = _prepare(conn, campaign, rendered, settings, secret, render.recipient_values)
            rows = next_rows(conn, campaign.id, first, min(size, ordered[first]), states)
            batch = build_batch(
                seg, rows, campaign, settings, secret, render.recipient_values, send_id="dry-run"
            )
            body = build_request(mail, batch)
        finally:
            tx.rollback()
    import json

    example = dict(body["personalizations"][0])
    example["to"] = [
        {"email": mask_email(t["email"]), **({"name": "***"} if "name" in t else {})}
        for t in example["to"]
    ]
    example["substitutions"] = f"{len(example['substitutions'])} values"
    example["headers"] = {"List-Unsubscribe": "<…/u/TOKEN>"}
    return DryRun(
        counts=ordered,
        first_segment=first,
        first_personalizations=len(body["personalizations"]),
        first_request_bytes=len(json.dumps(body).encode()),
        content_bytes=len(batch.content.html.encode()) + len(batch.content.text.encode()),
        example=example,
        requests=requests,
    )


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
    campaign: Any,
    engine: Engine,
    backend: Backend,
    settings: Settings,
    address: str,
    *,
    render: Any = None,
) -> list[tuple[str, Any]]:
    """One copy of each segment's email to ``address``, subject prefixed ``[TEST] ``, outside
    the ledger: ledger id 0 in every token, so its links redirect but record nothing."""
    render = render or renderer()
    secret = settings.require_link_secret()
    rendered = render.render_campaign(campaign)
    results = []
    for s in campaign.segments:
        if s.id not in rendered:
            continue
        with engine.begin() as conn:
            seg = _prepare(conn, campaign, rendered[s.id], settings, secret)
        who = sample_recipient(address, s.qi_levels[0])
        a = _addressee(seg, who, TEST_RECIPIENT, settings, secret, render.recipient_values)
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


def ensure_schedule(ledger: Ledger, backend: Any, mail: CampaignMail) -> CampaignMail:
    """Refuse to send a campaign whose scheduled send was cancelled. A scheduled send needs one SendGrid batch id for the whole campaign (so `cancel` can
    stop it); it is created once and kept in the campaigns row."""
    row = ledger.campaign_row()
    if row is not None and row.cancelled_at is not None:
        raise DeliveryError(
            f"the scheduled send of campaign {mail.campaign_id} was cancelled on "
            f"{row.cancelled_at:%Y-%m-%d %H:%M} UTC",
            hint="Give the campaign a new id to schedule it again.",
        )
    if mail.send_at is None or getattr(backend, "name", "") != "sendgrid":
        return mail
    sg_batch_id = row.sg_batch_id if row is not None else None
    wanted = dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
    if sg_batch_id and row.send_at is not None and row.send_at != wanted:
        # Later batches would go at the new time under the old batch id, and `cancel` would
        # judge "too late" by the old one: one campaign, one schedule.
        raise DeliveryError(
            f"campaign {mail.campaign_id} is already scheduled for "
            f"{row.send_at:%Y-%m-%d %H:%M} UTC; the spec now says "
            f"{wanted:%Y-%m-%d %H:%M} UTC",
            hint="Put sendgrid.send_at back, or cancel (equip-mailer cancel) and "
            "schedule again under a new campaign id.",
        )
    if not sg_batch_id:
        sg_batch_id = backend.create_batch_id()
        ledger.set_sg_batch(
            sg_batch_id, dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
        )
    from dataclasses import replace

    mail = replace(mail, sg_batch_id=sg_batch_id)
    backend.mail = mail
    return mail
