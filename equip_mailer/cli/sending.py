"""``equip-mailer send``: a campaign sent from the manager's side, after showing who gets it
and asking, with a progress bar. The exactly-once bookkeeping lives in equip_mailer.send
(dispatch, ledger and their helpers), so this command only chooses, asks and prints.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from equip_mailer.cli.common import (
    allow_past_opt,
    campaign_arg,
    confirmed,
    console,
    friendly_errors,
    main,
    open_campaign,
    open_campaign_if_sent,
    progress_bar,
)
from equip_mailer.cli.send_checks import (
    SendRun,
    check_link_identity,
    check_live_service,
    close_backend,
    make_backend,
    remember_link_identity,
    sync_signups,
    sync_suppressions,
    warn_of_an_earlier_id,
)
from equip_mailer.cli.send_retry import (
    count_people,
    exit_for_uncertain,
    settle_before_retry,
    settled_cutoff,
)
from equip_mailer.cli.status import print_totals
from equip_mailer.errors import EquipError

LONG_WAIT = 2.0  # seconds: a wait for SendGrid at least this long is said on screen

if TYPE_CHECKING:
    from rich.table import Table
    from sqlalchemy.engine import Engine

    from equip_mailer.compose.audience import Audience
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.config import Settings
    from equip_mailer.send.batch import Backend
    from equip_mailer.send.dispatch import SendReport
    from equip_mailer.send.ledger import Ledger
    from equip_mailer.send.ledger_sync import SyncResult

# Ledger states a re-run leaves alone for good: with only these, everyone has the campaign.
_SETTLED = frozenset({"sent", "suppressed", "cancelled", "dropped"})


@main.command()
@campaign_arg
@allow_past_opt
@click.option(
    "--dry-run",
    is_flag=True,
    help="Build everything and print what would go; send nothing, record nothing.",
)
@click.option(
    "--test-to",
    "test_to",
    metavar="ADDRESS",
    help="Send one copy of each segment's email to ADDRESS, subject starting [TEST]; "
    "not recorded in the ledger or the reports.",
)
@click.option(
    "--backend",
    type=click.Choice(["outbox", "sendgrid"]),
    help="Where mail goes. Default: sendgrid when SENDGRID_API_KEY is set, else outbox.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    metavar="N",
    help="Send to at most N recipients in this run (the rest stay pending).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before sending.")
@click.option(
    "--retry-uncertain",
    is_flag=True,
    help="Also send to recipients of batches that got no answer and for whom SendGrid has "
    "given no evidence since (its events, its Email Activity API); those few may get a "
    "second copy. Only batches older than the settling period "
    "(EQUIP_UNCERTAIN_SETTLE_MINUTES, default 15).",
)
@click.option(
    "--now",
    "now",
    is_flag=True,
    help="With --retry-uncertain: do not wait for the settling period (more of them may get "
    "a second copy, since SendGrid's events for young batches may still be on the way).",
)
@click.option(
    "--outbox",
    "outbox_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the outbox backend [default: EQUIP_OUTBOX, else outbox/ in the project "
    "folder].",
)
@click.option(
    "--no-service-check",
    "no_service_check",
    is_flag=True,
    help="Do not ask the service at EQUIP_PUBLIC_URL/healthz whether it can answer this "
    "mail's links before a real send (a warning is printed instead).",
)
@friendly_errors
def send(
    campaign: Path,
    allow_past: bool,
    dry_run: bool,
    test_to: str | None,
    backend: str | None,
    limit: int | None,
    yes: bool,
    retry_uncertain: bool,
    now: bool,
    outbox_dir: Path | None,
    no_service_check: bool,
) -> None:
    """Send a campaign: each recipient gets exactly one copy, however often this is run.

    Shows the recipients per segment and asks before sending (unless --yes). A re-run sends
    only to those not yet sent: people added to a list since, or a run that stopped half way.
    Suppressed addresses are never sent. Without SENDGRID_API_KEY mail goes to the outbox
    folder as one .eml file per recipient. A real send through SendGrid is refused before
    any request unless EQUIP_PUBLIC_URL is a public https:// address, the sender domain is
    named, the webhook key is set when the campaign counts on SendGrid's events, and the
    service at EQUIP_PUBLIC_URL answers with the same link secret and store. A batch that
    gets no answer is marked uncertain and not sent again unless --retry-uncertain; after 3
    such (or failed) batches the run pauses (EQUIP_MAX_BAD_BATCHES). EQUIP_BATCH_SIZE (at
    most 1000) sets recipients per request. SendGrid's webhook events settle uncertain
    recipients as they arrive (they were accepted); --retry-uncertain also asks SendGrid's
    Email Activity API, then re-sends only the rest.

    Every run ends with the campaign's totals. Exit status: 0 when nobody is left uncertain,
    3 when the run finished but recipients are still uncertain (the next command is shown),
    1 on an error or a run that stopped early.
    Courses taken here (sign_up: equip) are copied to the store for the sign-up pages on
    every run but a dry run, so a changed date or number of places reaches them; places that
    grew go to the people waiting, who are emailed.

    \b
    Example:
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past --test-to me@example.org
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past --dry-run
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past
    """
    from equip_mailer.send.campaign_mail import campaign_mail
    from equip_mailer.send.dispatch import SendOptions
    from equip_mailer.send.preflight import refuse_unsafe
    from equip_mailer.send.prepare import register_campaign
    from equip_mailer.signup.catalogue import register_new_courses

    if now and not retry_uncertain:
        raise EquipError("--now goes with --retry-uncertain", hint="Add --retry-uncertain.")
    scratch: tempfile.TemporaryDirectory[str] | None = None
    if dry_run:
        spec, cfg, found = open_campaign_if_sent(campaign, allow_past)
        if found is None:  # never sent: an empty store of the run's own, not a new file here
            found, scratch = _scratch_store()
        engine = found
    else:
        spec, cfg, engine = open_campaign(campaign, allow_past)
    run = SendRun(
        spec,
        cfg,
        engine,
        backend_name=backend or ("sendgrid" if cfg.sendgrid_api_key else "outbox"),
        options=SendOptions.from_env(limit=limit, retry_uncertain=retry_uncertain),
        mail=campaign_mail(spec),
        outbox_dir=outbox_dir or cfg.outbox,
        now=now,
    )
    real = run.backend_name == "sendgrid" and not dry_run and not test_to
    check_link_identity(run)
    if real:
        refuse_unsafe(spec, cfg)  # before any request, whatever SENDGRID_API_HOST is
    transport = None if dry_run else make_backend(run)
    try:
        if transport is not None:  # a dry run writes nothing (it rolls its own rows back)
            register_campaign(engine, spec)
        if real:
            check_live_service(run, skip=no_service_check)
        if transport is not None:
            remember_link_identity(run)
            if test_to:  # a rehearsal tells nobody signed up of an edit: the real send does
                with engine.begin() as conn:
                    register_new_courses(conn, spec)
            else:
                sync_signups(run.spec, run.cfg, run.engine, run.outbox_dir)

        if test_to:
            address = _valid_address(test_to)
            if transport is None:
                raise EquipError(
                    "--test-to and --dry-run do not go together", hint="Use one or the other."
                )
            _send_test_copies(run, transport, address)
            return

        warn_of_an_earlier_id(run)
        if transport is not None and run.backend_name == "sendgrid":
            sync_suppressions(run)
        keys, audience = _audience(spec, engine, cfg)
        if transport is None:
            _refuse_what_the_send_would(run)
            if run.options.retry_uncertain and not run.now:  # as the send would: settled ones
                run = replace(
                    run, options=replace(run.options, uncertain_before=settled_cutoff(run))
                )
            _print_dry_run(run, audience, keys)
            return
        report = _send_to_lists(run, transport, audience, keys, yes)
        if report is not None:
            _print_sent(run, report, campaign)
        if report is None or not report.stopped:
            exit_for_uncertain(run)
    finally:
        close_backend(transport)  # the outbox's writer threads
        if scratch is not None:
            engine.dispose()
            scratch.cleanup()


def _scratch_store() -> tuple[Engine, tempfile.TemporaryDirectory[str]]:
    """A store in a temporary folder for a dry run before the first send: the dry run reads
    an empty store (and rolls back what it writes) just as it would read a new file, and
    leaves no database behind. The folder goes when the run ends (or the process does)."""
    from equip_mailer.store.engine import open_store

    folder = tempfile.TemporaryDirectory(prefix="equip-mailer-dry-run-")
    return open_store(f"sqlite:///{Path(folder.name) / 'dry-run.db'}"), folder


def _valid_address(test_to: str) -> str:
    """The --test-to address, normalised; a plain error when it is not an address."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(test_to, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise EquipError(f"--test-to {test_to!r} is not a valid address ({exc})") from None


def _send_test_copies(run: SendRun, transport: Backend, address: str) -> None:
    """One [TEST] copy of each segment's email to one address, outside the ledger."""
    from equip_mailer.config import mask_email
    from equip_mailer.send.trial_runs import send_test

    results = send_test(run.spec, run.engine, transport, run.cfg, address)
    for segment_id, result in results:
        if result.state != "sent":
            raise EquipError(f"test copy of segment {segment_id}: {result.error}", hint=result.hint)
    where = (
        f" (files under {run.outbox_dir / run.spec.id / 'test'})"
        if run.backend_name == "outbox"
        else ""
    )
    console.print(
        f"Sent {len(results)} test cop{'y' if len(results) == 1 else 'ies'} "
        f"({', '.join(s for s, _ in results)}) to {mask_email(address)} through "
        f"{run.backend_name}{where}; not recorded in the ledger.",
        markup=False,
        soft_wrap=True,
    )


def _audience(spec: Campaign, engine: Engine, cfg: Settings) -> tuple[set[str], Audience]:
    """The store's suppressed addresses, and the lists read without them (and without erased
    people), each person at the higher of their list's and their recorded QI level."""
    from equip_mailer.compose.audience import load_audience
    from equip_mailer.people import records
    from equip_mailer.store.rows import suppressed_keys

    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
    with engine.connect() as conn:
        keys = suppressed_keys(conn)
        people = records.load(conn, secret)
    return keys, load_audience(spec, suppressed=keys, people=people)


def _refuse_what_the_send_would(run: SendRun) -> None:
    """A dry run stops where the send would: a cancelled (or moved) schedule is refused
    with the same words, rather than read as "everyone already has this campaign"."""
    from equip_mailer.send.ledger import Ledger
    from equip_mailer.send.schedule import refuse_stale_schedule

    row = Ledger(run.engine, run.spec.id).campaign_row()
    refuse_stale_schedule(row, run.mail, scheduling=run.backend_name == "sendgrid")


def _print_dry_run(run: SendRun, audience: Audience, keys: set[str]) -> None:
    """What a run would send, per segment, and the size of its first request."""
    import json

    from equip_mailer.send.trial_runs import dry_run

    spec, options = run.spec, run.options
    summary = dry_run(
        spec,
        run.engine,
        audience.by_segment,
        keys,
        run.cfg,
        run.mail,
        options,
        in_file=audience.file_suppressed,
    )
    console.print(_segment_table(spec, summary.counts, f"{spec.id}: would send (dry run)"))
    if not summary.counts:
        console.print(
            "Nothing to send: everyone on the lists already has this campaign.", markup=False
        )
        return
    if run.backend_name == "outbox":  # the manager's rehearsal: files, not API requests
        total = sum(summary.counts.values())
        to = summary.example.get("to") or [{}]
        console.print(
            f"A real run would write {total:,} email file{'s' if total != 1 else ''} (.eml) "
            f"into {run.cfg.outbox / spec.id}, {options.batch_size:,} at most at a time; the "
            f"first, to {to[0].get('email', '?')}, gets the {summary.first_segment} version "
            "with their own name, links and unsubscribe link.",
            markup=False,
            soft_wrap=True,
        )
    else:
        console.print(
            f"Backend {run.backend_name}; {summary.requests} request(s) of at most "
            f"{options.batch_size} recipients. First request: segment "
            f"{summary.first_segment}, {summary.first_personalizations} personalizations, "
            f"{summary.first_request_bytes / 1024:,.1f} KiB JSON (shared content "
            f"{summary.content_bytes / 1024:,.1f} KiB).",
            markup=False,
            soft_wrap=True,
        )
        console.print(
            "Example personalization: " + json.dumps(summary.example, ensure_ascii=False),
            markup=False,
            soft_wrap=True,
        )
    if when := _scheduled_for(run):
        console.print(
            f"A real run would schedule them with SendGrid to go at {when}.", markup=False
        )
    console.print("Dry run: nothing was sent and the ledger is unchanged.", markup=False)


def _send_to_lists(
    run: SendRun, transport: Backend, audience: Audience, keys: set[str], yes: bool
) -> SendReport | None:
    """Under the ledger's lock: bring the ledger up to date with the lists, show what will
    go, ask, then send with a progress bar. None when nothing was sent."""
    from equip_mailer.send.ledger import Ledger
    from equip_mailer.send.schedule import ensure_schedule

    spec = run.spec
    ledger = Ledger(run.engine, spec.id)
    with ledger.lock():
        ensure_schedule(ledger, transport, run.mail)  # a scheduled send gets its batch id
        synced = _recover_and_sync(ledger, audience, keys, run.options.retry_uncertain)
        if run.options.retry_uncertain:
            run = replace(run, options=settle_before_retry(run, ledger))
        options = run.options
        counts = ledger.sendable(options.states, options.uncertain_before)
        total = sum(counts.values())
        if options.limit is not None:
            total = min(total, options.limit)
        if total == 0:
            done = ledger.counts()
            if done.get("sent") and set(done) <= _SETTLED:  # none uncertain or in flight
                console.print(
                    "Nothing to send: everyone on the lists already has this campaign "
                    "(the ledger records each send), so nobody was mailed again.",
                    markup=False,
                )
            else:
                console.print(f"Nothing to send in this run for campaign {spec.id}.", markup=False)
            print_totals(spec, ledger)
            return None
        title = f"{spec.id}: to send through {run.backend_name}"
        console.print(_segment_table(spec, counts, title))
        if synced.added or synced.suppressed:
            console.print(
                f"New on the lists since the last run: {synced.added:,}; newly "
                f"suppressed: {synced.suppressed:,}.",
                markup=False,
            )
        when = _scheduled_for(run)
        if not yes:
            if not confirmed(
                f"Schedule {total:,} recipient(s) with SendGrid to go at {when}?"
                if when
                else f"Send to {total:,} recipient(s) now?",
                refusal="not sending without confirmation: there is no terminal to ask on",
                hint="Add --yes to send without asking.",
            ):
                console.print("Nothing sent.", markup=False)
                return None
            ledger.refresh()  # the prompt may have waited long: still ours? (heartbeat)
        return _run_with_progress(run, ledger, transport, total)


def _recover_and_sync(
    ledger: Ledger, audience: Audience, keys: set[str], retry_uncertain: bool
) -> SyncResult:
    """Batches a stopped run left in flight become uncertain, and are settled at once from
    the events already here (said on screen, in people); then the ledger takes in who is on
    the lists now."""
    known = {b.id for b in ledger.uncertain_batches()}
    if ledger.recover():
        new = [b for b in ledger.uncertain_batches() if b.id not in known]
        people = sum(b.size for b in new)
        proved = sum(b.size - b.still for b in new)
        still = sum(b.still for b in new)
        if not still:
            fate = f"all {proved:,} are proved accepted by SendGrid's events already."
        else:
            fate = (
                f"{proved:,} are proved accepted by SendGrid's events already; "
                f"{count_people(still)} uncertain (SendGrid may or may not have their email), "
                + (
                    "considered for re-sending below (--retry-uncertain)."
                    if retry_uncertain
                    else "not re-sent by this run."
                )
            )
        console.print(
            f"{count_people(people)} in {len(new)} batch(es) were in flight when an earlier run "
            f"stopped: {fate}",
            markup=False,
            soft_wrap=True,
        )
    return ledger.sync(audience.by_segment, keys, audience.file_suppressed)


def _run_with_progress(run: SendRun, ledger: Ledger, transport: Backend, total: int) -> SendReport:
    """Send, with a progress bar (sent, rate, ETA) when there is a terminal to show it."""
    import time

    from equip_mailer.send.backends.sendgrid import describe_wait
    from equip_mailer.send.dispatch import run_send

    bar = progress_bar("Sending")
    task = bar.add_task("send", total=total, rate="") if bar else None
    started = time.monotonic()
    done_n = [0]

    def progress(_segment: str, n: int) -> None:
        done_n[0] += n
        if bar is not None and task is not None:
            elapsed = max(1e-6, time.monotonic() - started)
            bar.update(task, advance=n, rate=f"{done_n[0] / elapsed:,.0f}")

    def waiting(seconds: float, status: int, what: str) -> None:
        if seconds >= LONG_WAIT:  # shorter ones pass before anyone wonders
            (bar.console if bar is not None else console).print(
                describe_wait(seconds, status, what), markup=False, soft_wrap=True
            )

    if hasattr(transport, "waiting"):
        transport.waiting = waiting

    def go() -> SendReport:
        return run_send(
            run.spec, run.engine, ledger, transport, run.cfg, run.options, progress=progress
        )

    if bar is None:
        return go()
    with bar:
        return go()


def _scheduled_for(run: SendRun) -> str | None:
    """When SendGrid will deliver a scheduled send (``sendgrid.send_at``), as status shows
    it; None when mail goes as soon as it is handed over (the outbox ignores send_at)."""
    import datetime as dt

    if run.backend_name != "sendgrid" or run.mail.send_at is None:
        return None
    return f"{dt.datetime.fromtimestamp(run.mail.send_at, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _print_sent(run: SendRun, report: SendReport, campaign: Path) -> None:
    """What this run did, then the whole campaign's totals; a run that stopped early is an
    error saying how to carry on. A scheduled send is said to be scheduled, not sent, with
    the way to stop it."""
    where = (
        f" to {run.outbox_dir / run.spec.id}"
        if run.backend_name == "outbox"
        else " through SendGrid"
    )
    when = _scheduled_for(run)
    done = (
        f"Scheduled {report.sent:,} in {report.batches:,} batch(es) with SendGrid to go at "
        f"{when} (until 10 minutes before, `equip-mailer cancel {campaign}` stops them)"
        if when
        else f"Sent {report.sent:,} in {report.batches:,} batch(es){where}"
    )
    console.print(
        f"{done} in {report.seconds:.1f} s (this run; failed {report.failed:,}, no answer "
        f"for {report.uncertain:,}).",
        markup=False,
        soft_wrap=True,
    )
    from equip_mailer.send.dispatch import resume_hint
    from equip_mailer.send.ledger import Ledger

    print_totals(run.spec, Ledger(run.engine, run.spec.id))
    if report.stopped:
        raise EquipError(
            f"sending stopped: {report.stopped}",
            hint=report.hint or resume_hint(run.spec, report.uncertain > 0),
        )


def _segment_table(spec: Campaign, counts: dict[str, int], title: str) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left")
    table.add_column("Segment", no_wrap=True)
    table.add_column("Name")
    table.add_column("Recipients", justify="right")
    for s in spec.segments:
        table.add_row(s.id, Text(s.name), f"{counts.get(s.id, 0):,}")  # never markup
    table.add_row("", "Total", f"{sum(counts.values()):,}", end_section=True)
    return table
