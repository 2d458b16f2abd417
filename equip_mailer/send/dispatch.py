"""The send loop: render once per segment, then claim, send and record batch after batch.

Per batch there are three committed database steps (claim, request, record), never one per
recipient. A batch is claimed (committed) just before its request leaves and its answer is
recorded as soon as it comes, oldest first. Requests travel from worker threads, up to the
backend's ``max_in_flight`` at once (SendGrid and the outbox: 2; test backends: 1), so the
server works on one batch while the next is built, claimed and posted: with one in flight
the loop spent most of a second per 100,000 waiting for answers, and a real SendGrid's
latency adds up batch after batch (the outbox's writers likewise waited for the ledger). The
cost is on a crash: every batch in flight then is *uncertain* (two at most, not one). A
stop, a pause or an error never leaves a claimed batch unsent: no new batch is claimed once
the run is ending, and the answers of those already sent are waited for and recorded (after
Ctrl+C, for a moment only: a request waiting to retry is then not posted again).

An error budget pauses the run when too many batches fail or end uncertain, instead of
burning through the list (listmonk's lesson); the message says how to carry on.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from equip_mailer.compose.audience import gc_paused
from equip_mailer.config import Settings
from equip_mailer.settings_values import whole_number_env
from equip_mailer.store import utcnow

from .batch import MAX_PER_REQUEST, Backend, Batch, BatchResult, BatchState
from .ledger import Ledger
from .ledger_rows import SENDABLE, Row, SettledMeanwhile
from .prepare import Renderer, build_batch, default_renderer, prepare_segment

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.compose.render.personalisation import RenderedSegment

DEFAULT_MAX_BAD_BATCHES = 3
MAX_IN_FLIGHT = 8  # the most EQUIP_IN_FLIGHT may ask for
FINISH_TRIES = 4  # recording an answer: tries, with a short backoff between
STOP_GRACE = 1.0  # seconds after Ctrl+C for an interrupted request's answer


@dataclass(frozen=True)
class SendOptions:
    limit: int | None = None  # at most this many recipients in this run
    retry_uncertain: bool = False  # also send rows a dead run left uncertain...
    uncertain_before: dt.datetime | None = None  # ...of batches that left before this time
    batch_size: int = MAX_PER_REQUEST
    max_bad_batches: int = DEFAULT_MAX_BAD_BATCHES  # error budget per run
    in_flight: int | None = None  # requests at once; None: the backend's max_in_flight

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **kw: Any) -> SendOptions:
        """EQUIP_BATCH_SIZE (1..1000), EQUIP_MAX_BAD_BATCHES and EQUIP_IN_FLIGHT (1..8, at
        most what the backend allows) tune a run (tests, slow links)."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for var, name, lo, hi in (
            ("EQUIP_BATCH_SIZE", "batch_size", 1, MAX_PER_REQUEST),
            ("EQUIP_MAX_BAD_BATCHES", "max_bad_batches", 1, 10**6),
            ("EQUIP_IN_FLIGHT", "in_flight", 1, MAX_IN_FLIGHT),
        ):
            n = whole_number_env(env, var, lo, hi)
            if n is not None:
                values[name] = n
        values.update(kw)
        return cls(**values)

    @property
    def states(self) -> tuple[str, ...]:
        """The ledger states this run sends."""
        return SENDABLE + (("uncertain",) if self.retry_uncertain else ())

    @property
    def request_size(self) -> int:
        """Recipients per request: the batch size, within SendGrid's limit."""
        return max(1, min(self.batch_size, MAX_PER_REQUEST))

    def requests_at_once(self, backend: Backend) -> int:
        """How many requests may be in flight: the backend's most, or fewer if asked."""
        most = max(1, int(getattr(backend, "max_in_flight", 1)))
        return most if self.in_flight is None else max(1, min(self.in_flight, most))


DEFAULT_OPTIONS = SendOptions()


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    uncertain: int = 0
    batches: int = 0
    by_segment: Counter[str] = field(default_factory=Counter)
    recovered: int = 0  # in-flight batches of a dead run, now uncertain
    stopped: str | None = None  # why the run ended early (one sentence)
    hint: str | None = None
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def run_send(
    campaign: Campaign,
    engine: Engine,
    ledger: Ledger,
    backend: Backend,
    settings: Settings,
    options: SendOptions = DEFAULT_OPTIONS,
    *,
    render: Renderer | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> SendReport:
    """Send every sendable row of the campaign (the caller holds the lock and has synced).

    ``progress(segment, n)`` is called after each batch with the recipients it sent.
    """
    run = _Run(campaign, engine, ledger, settings, options, render or default_renderer(), progress)
    started = time.monotonic()
    todo = ledger.sendable(options.states, options.uncertain_before)
    segments = [s.id for s in campaign.segments if todo.get(s.id)]
    if not segments:
        return run.report
    rendered = run.render.render_campaign(
        campaign, segments=segments, pages_url=settings.public_url
    )
    run.send(run.drafts(segments, rendered), backend)
    run.report.seconds = time.monotonic() - started
    return run.report


@dataclass
class _Flight:
    """The request in flight: its answer is recorded before the next claim."""

    future: Future[BatchResult]
    batch_db_id: int
    segment: str
    count: int


class _Run:
    """One call of ``run_send``: what it sends with, and what it has counted so far."""

    def __init__(
        self,
        campaign: Campaign,
        engine: Engine,
        ledger: Ledger,
        settings: Settings,
        options: SendOptions,
        render: Renderer,
        progress: Callable[[str, int], None] | None,
    ):
        self.campaign, self.engine, self.ledger = campaign, engine, ledger
        self.settings, self.options, self.render = settings, options, render
        self.progress = progress
        self.secret = settings.require_link_secret()
        self.started_at = utcnow()  # rows that fail from now on wait for the next run
        self.report = SendReport()
        self.bad = 0  # batches that failed or got no answer (the error budget)
        self.paused = False  # the error budget ran out

    def drafts(
        self, segments: list[str], rendered: dict[str, RenderedSegment]
    ) -> Iterator[tuple[str, list[Row], Batch]]:
        """(segment, rows, batch without send id), built ahead of the claim."""
        size, states, left = self.options.request_size, self.options.states, self.options.limit
        values_fn = self.render.recipient_values
        for seg_id in segments:
            with self.engine.begin() as conn:
                seg = prepare_segment(
                    conn, self.campaign, rendered[seg_id], self.settings, self.secret, values_fn
                )
            last_id = 0
            while left is None or left > 0:
                n = size if left is None else min(size, left)
                rows = self.ledger.next_rows(
                    seg_id,
                    n,
                    states,
                    before=self.started_at,
                    after_id=last_id,
                    uncertain_before=self.options.uncertain_before,
                )
                if not rows:
                    break
                last_id = rows[-1].id
                if left is not None:
                    left -= len(rows)
                # Built (and checked) before claiming: a refusal here leaves nothing in flight.
                yield seg_id, rows, build_batch(seg, rows, self.campaign, values_fn)

    def send(self, drafts: Iterator[tuple[str, list[Row], Batch]], backend: Backend) -> None:
        """Claim and post each draft, at most ``requests_at_once`` in flight, recording each
        answer (oldest first) before claiming past it; building the next overlaps the posts."""
        depth = self.options.requests_at_once(backend)
        pool = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="equip-send")
        flights: deque[_Flight] = deque()
        # Batches are acyclic: the collector would only re-scan them (and the audience) again.
        with gc_paused():
            try:
                going = True
                for seg_id, _rows, draft in drafts:
                    while going and len(flights) >= depth:
                        going = self.settle_oldest(flights)
                    if not going:
                        break
                    claimed = self.claim(seg_id, draft, backend.name)
                    if claimed is None:
                        continue
                    batch_db_id, batch = claimed
                    future = pool.submit(backend.send_batch, batch)
                    flights.append(_Flight(future, batch_db_id, seg_id, len(batch.addressees)))
                while flights:  # requests already sent are always waited for and recorded
                    self.settle_oldest(flights)
                if self.paused:  # a batch recorded after the pause may have been uncertain
                    self.report.hint = resume_hint(self.campaign, self.report.uncertain > 0)
            except BaseException as exc:
                interrupt = getattr(backend, "interrupt", None)
                if isinstance(exc, KeyboardInterrupt) and interrupt is not None:
                    interrupt()  # a request waiting to retry ends now, not sent
                while flights:
                    self.abandon(flights.popleft(), exc)
                raise
            finally:
                pool.shutdown(wait=False)

    def settle_oldest(self, flights: deque[_Flight]) -> bool:
        """Wait for the oldest request's answer and record it; False when the run must
        stop. If waiting raises, the flight stays in ``flights`` for ``abandon``."""
        result = flights[0].future.result()
        return self.settle(flights.popleft(), result)

    def claim(self, seg_id: str, draft: Batch, backend: str) -> tuple[int, Batch] | None:
        """Claim the draft's rows and give it its send id. Rows that evidence settled since
        they were read (a webhook event for an uncertain recipient) leave the batch; None
        when none is left."""
        addressees = draft.addressees
        while addressees:
            try:
                batch_db_id, send_id = self.ledger.claim(
                    seg_id, [a.ledger_id for a in addressees], backend, self.options.states
                )
            except SettledMeanwhile as exc:
                addressees = [a for a in addressees if a.ledger_id not in exc.ids]
                continue
            batch = Batch(
                campaign_id=draft.campaign_id,
                send_id=send_id,
                content=draft.content,
                addressees=addressees,
            )
            return batch_db_id, batch
        return None

    def settle(self, flight: _Flight, result: BatchResult) -> bool:
        """Record a batch's answer; False when the run must stop."""
        _finish(
            self.ledger,
            flight.batch_db_id,
            result.state,
            status=result.status,
            message_id=result.message_id,
            error=result.error,
            attempts=result.attempts,
        )
        report, count = self.report, flight.count
        report.batches += 1
        if result.state == "sent":
            report.sent += count
            report.by_segment[flight.segment] += count
            if self.progress:
                self.progress(flight.segment, count)
        else:
            self.bad += 1
            if result.state == "failed":
                report.failed += count
            else:
                report.uncertain += count
        if report.stopped is not None:
            return False  # a batch still in flight when the run was already ending
        if result.stop:
            report.stopped, report.hint = result.error, result.hint
            return False
        if self.bad >= self.options.max_bad_batches:
            report.stopped = (
                f"paused after {self.bad} batches that failed or got no answer "
                f"(last: {result.error})"
            )
            report.hint = resume_hint(self.campaign, report.uncertain > 0)
            self.paused = True
            return False
        return True

    def abandon(self, flight: _Flight, exc: BaseException) -> None:
        """The run is ending on an exception with a request in flight. The request goes on
        regardless: wait for its real answer and record it (after Ctrl+C, for a moment
        only), rather than calling a batch uncertain that may well come back 202."""
        future = flight.future
        # After Ctrl+C only a moment: a request that was waiting to retry answers at once
        # (the backend was interrupted); one on the wire is left uncertain.
        wait([future], timeout=STOP_GRACE if isinstance(exc, KeyboardInterrupt) else None)
        if future.done() and future.exception() is None:
            self.settle(flight, future.result())  # the answer came: record it
        else:
            why = (
                "interrupted (Ctrl+C) while this request was in flight"
                if isinstance(exc, KeyboardInterrupt)
                else f"the send stopped ({type(exc).__name__}) while this request was in flight"
            )
            _finish(self.ledger, flight.batch_db_id, "uncertain", error=why)


def _finish(ledger: Ledger, batch_db_id: int, state: BatchState, **kw: Any) -> None:
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


def resume_hint(campaign: Campaign, uncertain: bool) -> str:
    """How to carry on, with commands that run as shown (--allow-past when the campaign has
    sessions before today, or send refuses it)."""
    src = str(campaign.source) if campaign.source else campaign.id
    past = " --allow-past" if campaign.has_past_sessions() else ""
    text = (
        f"Run `equip-mailer send {src}{past}` again to carry on: nothing already sent goes twice."
    )
    if uncertain:
        text += (
            " Recipients of batches with no answer are left out (SendGrid may have accepted "
            f"them); see `equip-mailer status {src}`, and add --retry-uncertain only if you "
            "accept that some of them may get two copies."
        )
    return text
