"""The ``equip-mailer`` command: thin click commands over the library.

Every expected failure is an EquipError, printed as one plain sentence (plus a hint), never
a traceback. Real work lives in the modules named in each command.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from equip_mailer.config import load_settings
from equip_mailer.errors import EquipError

# emoji=False: "lists/x.csv:100:" must not print as an emoji
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


def _save_traceback() -> Path | None:
    """Keep the details of an unexpected failure in a file for whoever fixes it; the person
    running the command gets one sentence (details may name addresses: not for the screen)."""
    import tempfile
    import traceback

    try:
        fd, name = tempfile.mkstemp(prefix="equip-mailer-error-", suffix=".txt")
        with open(fd, "w", encoding="utf-8") as fh:
            fh.write(traceback.format_exc())
        return Path(name)
    except OSError:
        return None


def friendly_errors(fn):
    """Turn every failure into a plain message and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EquipError as exc:
            err_console.print(
                f"[bold red]Error:[/] {escape(str(exc))}", markup=True, soft_wrap=True
            )
            if exc.hint:
                err_console.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
            sys.exit(1)
        except PermissionError as exc:
            err_console.print(f"Error: permission denied: {exc.filename}", markup=False)
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("Stopped. Run the same command again to carry on.")
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            err_console.print(f"Error: {exc.strerror or exc}{where}.", markup=False, soft_wrap=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for a non-programmer
            saved = _save_traceback()
            err_console.print(
                f"Error: something unexpected went wrong ({type(exc).__name__}). "
                "Nothing was lost: run the same command again to carry on."
                + (f" Details for the developers are in {saved}." if saved else ""),
                markup=False,
                soft_wrap=True,
            )
            sys.exit(1)

    return wrapper


campaign_arg = click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
allow_past_opt = click.option(
    "--allow-past",
    is_flag=True,
    help="Accept sessions dated before today (needed for the 2019 demo).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="equip-mailer")
def main() -> None:
    """EQUIP course-menu newsletters: check, preview, send, track and report.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """


def settings():
    return load_settings()


# --- check ---


def _store_suppressions(database_url: str) -> tuple[set[str], str | None]:
    """The store's suppressed addresses, read without creating or migrating anything.

    Returns (keys, note): a check must not leave a database file behind, so a SQLite file
    that does not exist yet simply means "no suppressions recorded".
    """
    import sqlalchemy as sa

    from equip_mailer.store import make_engine, suppressed_keys

    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        return set(), "EQUIP_DATABASE_URL is not a database URL; store suppressions not read"
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:" or not Path(url.database).exists():
            return set(), None
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("suppressions"):
                return set(), None
            return suppressed_keys(conn), None
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return set(), f"could not read suppressions from the database ({reason})"
    finally:
        engine.dispose()


def _check_templates(campaign) -> tuple[dict, str | None]:
    """Render every segment once: ({segment id: rendered}, note when the renderer is missing)."""
    try:
        from equip_mailer.compose.render import render_campaign
    except ImportError:
        return {}, "templates not checked: the renderer (equip_mailer.render) is not available"
    return render_campaign(campaign), None  # RenderError names the template line


@main.command()
@campaign_arg
@allow_past_opt
@friendly_errors
def check(campaign: Path, allow_past: bool) -> None:
    """Check a campaign without sending anything: spec, mailing lists and templates.

    Prints each segment with its number of recipients, the totals, and then every rejected
    row as file:line: problem. Exits with status 1 when the campaign file has problems
    (all are listed, one per line), a list cannot be read, or a list has more bad rows than
    lists.max_reject_share allows.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """
    from rich.table import Table

    from equip_mailer.compose.audience import load_audience
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.errors import SpecError

    try:
        spec = load_campaign(campaign, allow_past=allow_past)
    except SpecError as exc:
        for problem in exc.problems:
            err_console.print(problem, markup=False, highlight=False, soft_wrap=True)
        count = len(exc.problems)
        err_console.print(
            f"{count} problem{'s' if count != 1 else ''} in {campaign}; nothing was checked further.",
            markup=False,
            soft_wrap=True,
        )
        if exc.hint:
            err_console.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
        sys.exit(1)

    keys, store_note = _store_suppressions(settings().database_url)
    audience = load_audience(spec, suppressed=keys)
    rendered, template_note = _check_templates(spec)

    table = Table(title=f"{spec.id}: {spec.title}", title_justify="left")
    table.add_column("Segment", no_wrap=True)
    table.add_column("Name")
    table.add_column("QI levels")
    table.add_column("Recipients", justify="right")
    table.add_column("Subject", overflow="fold")
    for segment in spec.segments:
        levels = ", ".join(segment.qi_levels)
        subject = (
            rendered[segment.id].subject
            if segment.id in rendered
            else (segment.subject or spec.subject)
        )
        table.add_row(
            segment.id, segment.name, levels, f"{len(audience.by_segment[segment.id]):,}", subject
        )
    total = len(audience.recipients)
    table.add_row("", "Total", "", f"{total:,}", "", end_section=True)
    console.print(table)
    console.print(
        f"Rows read {audience.rows_read:,} · rejected {len(audience.rejects):,} · "
        f"duplicates {audience.duplicates:,} · suppressed {audience.suppressed:,} "
        f"({len(keys):,} from the database) · recipients {total:,}",
        markup=False,
        soft_wrap=True,
    )
    for note in (store_note, template_note):
        if note:
            console.print(f"Note: {note}", markup=False, soft_wrap=True)
    if template_note is None:
        console.print("Templates: every segment renders.", markup=False)
    if audience.rejects:
        console.print(
            f"\nRejected rows ({len(audience.rejects):,}; they will not be mailed):", markup=False
        )
        for reject in audience.rejects:
            console.print(str(reject), markup=False, highlight=False, soft_wrap=True)
    if audience.duplicate_rows:
        console.print(
            f"\nDuplicate rows ({audience.duplicates:,}; the first row is kept):", markup=False
        )
        for note in audience.duplicate_rows:
            console.print(str(note), markup=False, highlight=False, soft_wrap=True)
    if total == 0:
        raise EquipError(
            "no one would get this newsletter: every list is empty after checks",
            hint="Check the files under 'lists:' in the campaign.",
        )


# --- serve ---


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (put a TLS proxy in front for the public URL).",
)
@click.option(
    "--port",
    default=8025,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@friendly_errors
def serve(host: str, port: int) -> None:
    """Run the tracking service: click redirects, unsubscribe, SendGrid's event webhook.

    Serves /c/<token> (tracked links), /u/<token> (unsubscribe), /webhooks/sendgrid and
    /healthz from EQUIP_DATABASE_URL, creating or migrating the store first. Set
    EQUIP_LINK_SECRET (the key the links were signed with) and SENDGRID_WEBHOOK_PUBLIC_KEY
    (without it the webhook refuses every post).

    \b
    Example:
      EQUIP_PUBLIC_URL=https://equip.example.org equip-mailer serve --port 8025
    """
    import logging

    import uvicorn

    from equip_mailer.track.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = settings()
    app = create_app(cfg)  # ConfigError/StoreError -> one plain sentence
    console.print(
        f"Tracking service on http://{host}:{port} (database "
        f"{_masked_db_url(cfg.database_url)}); Ctrl+C stops it.",
        markup=False,
    )
    # One worker: the app object is built here, and SQLite wants a single writer process.
    uvicorn.run(
        app, host=host, port=port, workers=1, log_level="info", access_log=False, proxy_headers=True
    )


def _masked_db_url(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(invalid URL)"


# --- send, status, cancel ---


def _send_setup(campaign_path: Path, allow_past: bool):
    """Spec, settings and store: what send, status and cancel all start from."""
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.store import open_store

    spec = load_campaign(campaign_path, allow_past=allow_past)
    cfg = settings()
    return spec, cfg, open_store(cfg.database_url)


def _make_backend(name: str, spec, cfg, outbox: Path, mail):
    from equip_mailer.send.backends.outbox import OutboxBackend
    from equip_mailer.send.backends.sendgrid import SendGridBackend

    if name == "sendgrid":
        if not cfg.sendgrid_api_key:
            raise EquipError(
                "--backend sendgrid needs SENDGRID_API_KEY",
                hint="Set SENDGRID_API_KEY, or leave --backend out to use the outbox.",
            )
        return SendGridBackend(
            cfg.sendgrid_api_key, mail, host=cfg.sendgrid_api_host, timeout=cfg.sendgrid_timeout
        )
    return OutboxBackend(outbox, mail)


def _segment_table(spec, counts: dict[str, int], title: str):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("Segment", no_wrap=True)
    table.add_column("Name")
    table.add_column("Recipients", justify="right")
    for s in spec.segments:
        table.add_row(s.id, s.name, f"{counts.get(s.id, 0):,}")
    table.add_row("", "Total", f"{sum(counts.values()):,}", end_section=True)
    return table


def _progress(total: int):
    """A rich progress bar (sent, rate, ETA) on a terminal; nothing when output is piped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("Sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8} /s"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


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
    help="Also send to recipients of batches that got no answer (they may get two copies).",
)
@click.option(
    "--outbox",
    "outbox_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("outbox"),
    show_default=True,
    help="Folder for the outbox backend.",
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
    outbox_dir: Path,
) -> None:
    """Send a campaign: each recipient gets exactly one copy, however often this is run.

    Shows the recipients per segment and asks before sending (unless --yes). A re-run sends
    only to those not yet sent: people added to a list since, or a run that stopped half way.
    Suppressed addresses are never sent. Without SENDGRID_API_KEY mail goes to the outbox
    folder as one .eml file per recipient. A batch that gets no answer is marked uncertain
    and not sent again unless --retry-uncertain; after 3 such (or failed) batches the run
    pauses (EQUIP_MAX_BAD_BATCHES). EQUIP_BATCH_SIZE (at most 1000) sets recipients per request.

    \b
    Example:
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past --test-to me@example.org
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past --dry-run
      equip-mailer send campaigns/2019-04-equip-training.yaml --allow-past
    """
    import time

    from equip_mailer.compose.audience import load_audience
    from equip_mailer.config import mask_email
    from equip_mailer.send.campaign_mail import campaign_mail
    from equip_mailer.send.dispatch import SendOptions, run_send
    from equip_mailer.send.ledger import Ledger
    from equip_mailer.send.prepare import register_campaign
    from equip_mailer.send.schedule import ensure_schedule
    from equip_mailer.send.trial_runs import dry_run as do_dry_run
    from equip_mailer.send.trial_runs import send_test
    from equip_mailer.store import suppressed_keys

    spec, cfg, engine = _send_setup(campaign, allow_past)
    backend_name = backend or ("sendgrid" if cfg.sendgrid_api_key else "outbox")
    options = SendOptions.from_env(limit=limit, retry_uncertain=retry_uncertain)
    mail = campaign_mail(spec)
    transport = None if dry_run else _make_backend(backend_name, spec, cfg, outbox_dir, mail)
    register_campaign(engine, spec)

    if test_to:
        from email_validator import EmailNotValidError, validate_email

        try:
            address = validate_email(test_to, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise EquipError(f"--test-to {test_to!r} is not a valid address ({exc})") from None
        if dry_run:
            raise EquipError(
                "--test-to and --dry-run do not go together", hint="Use one or the other."
            )
        results = send_test(spec, engine, transport, cfg, address)
        for segment_id, result in results:
            if result.state != "sent":
                raise EquipError(
                    f"test copy of segment {segment_id}: {result.error}", hint=result.hint
                )
        where = (
            f" (files under {outbox_dir / spec.id / 'test'})" if backend_name == "outbox" else ""
        )
        console.print(
            f"Sent {len(results)} test cop{'y' if len(results) == 1 else 'ies'} "
            f"({', '.join(s for s, _ in results)}) to {mask_email(address)} through "
            f"{backend_name}{where}; not recorded in the ledger.",
            markup=False,
            soft_wrap=True,
        )
        return

    with engine.connect() as conn:
        keys = suppressed_keys(conn)
    audience = load_audience(spec, suppressed=keys)

    if dry_run:
        summary = do_dry_run(spec, engine, audience.by_segment, keys, cfg, mail, options)
        console.print(_segment_table(spec, summary.counts, f"{spec.id}: would send (dry run)"))
        if not summary.counts:
            console.print(
                "Nothing to send: everyone on the lists already has this campaign.", markup=False
            )
            return
        import json

        console.print(
            f"Backend {backend_name}; {summary.requests} request(s) of at most "
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
        console.print("Dry run: nothing was sent and the ledger is unchanged.", markup=False)
        return

    ledger = Ledger(engine, spec.id)
    with ledger.lock():
        mail = ensure_schedule(ledger, transport, mail)
        recovered = ledger.recover()
        if recovered:
            console.print(
                f"{recovered} batch(es) were in flight when an earlier run stopped; "
                "they are marked uncertain and not re-sent"
                + (" (--retry-uncertain: sending them again)." if retry_uncertain else "."),
                markup=False,
                soft_wrap=True,
            )
        synced = ledger.sync(audience.by_segment, keys)
        from equip_mailer.send.ledger_rows import SENDABLE

        states = SENDABLE + (("uncertain",) if retry_uncertain else ())
        counts = ledger.sendable(states)
        total = sum(counts.values())
        if options.limit is not None:
            total = min(total, options.limit)
        if total == 0:
            done = ledger.counts().get("sent", 0)
            console.print(
                f"Nothing to send: {done:,} recipient(s) already have campaign {spec.id}.",
                markup=False,
            )
            _print_status(spec, ledger)
            return
        console.print(_segment_table(spec, counts, f"{spec.id}: to send through {backend_name}"))
        if synced.added or synced.suppressed:
            console.print(
                f"New on the lists since the last run: {synced.added:,}; newly "
                f"suppressed: {synced.suppressed:,}.",
                markup=False,
            )
        if not yes:
            if not sys.stdin.isatty():
                raise EquipError(
                    "not sending without confirmation: there is no terminal to ask on",
                    hint="Add --yes to send without asking.",
                )
            if not click.confirm(f"Send to {total:,} recipient(s) now?", default=False):
                console.print("Nothing sent.", markup=False)
                return
            ledger.refresh()  # the prompt may have waited long: still ours? (heartbeat)
        bar = _progress(total)
        task = bar.add_task("send", total=total, rate="") if bar else None
        started = time.monotonic()
        done_n = [0]

        def progress(_segment: str, n: int) -> None:
            done_n[0] += n
            if bar is not None:
                elapsed = max(1e-6, time.monotonic() - started)
                bar.update(task, advance=n, rate=f"{done_n[0] / elapsed:,.0f}")

        if bar is not None:
            with bar:
                report = run_send(spec, engine, ledger, transport, cfg, options, progress=progress)
        else:
            report = run_send(spec, engine, ledger, transport, cfg, options, progress=progress)

    where = f" to {outbox_dir / spec.id}" if backend_name == "outbox" else " through SendGrid"
    console.print(
        f"Sent {report.sent:,} in {report.batches:,} batch(es){where} in "
        f"{report.seconds:.1f} s; failed {report.failed:,}, uncertain {report.uncertain:,}.",
        markup=False,
        soft_wrap=True,
    )
    if report.stopped:
        raise EquipError(
            f"sending stopped: {report.stopped}",
            hint=report.hint or f"Run `equip-mailer send {campaign}` again to carry on.",
        )


def _print_status(spec, ledger) -> None:
    from rich.table import Table

    from equip_mailer.store import LEDGER_STATES

    counts = ledger.counts()
    console.print(f"Ledger of campaign {spec.id}:", markup=False)
    table = Table()
    table.add_column("State")
    table.add_column("Recipients", justify="right")
    for state in LEDGER_STATES:
        if counts.get(state):
            table.add_row(state, f"{counts[state]:,}")
    table.add_row("total", f"{sum(counts.values()):,}", end_section=True)
    console.print(table)
    row = ledger.campaign_row()
    if row is not None and row.send_at is not None:
        console.print(
            f"Scheduled with SendGrid for {row.send_at:%Y-%m-%d %H:%M} UTC"
            + (f"; cancelled {row.cancelled_at:%Y-%m-%d %H:%M} UTC" if row.cancelled_at else ""),
            markup=False,
        )
    for b in ledger.problem_batches():
        if not b.still:
            continue
        console.print(
            f"Batch {b.send_id} ({b.segment}, {b.still:,} of {b.size:,} recipients "
            f"still {b.state}, {b.created_at:%Y-%m-%d %H:%M} UTC): {b.error or 'no detail'}",
            markup=False,
            soft_wrap=True,
        )
    source = spec.source or spec.id
    if counts.get("pending") or counts.get("failed"):
        console.print(
            f"To send the pending and failed ones: equip-mailer send {source}",
            markup=False,
            soft_wrap=True,
        )
    if counts.get("uncertain"):
        console.print(
            "Uncertain recipients got no answer from SendGrid and may already have the "
            "email; check SendGrid's activity feed, then add --retry-uncertain to send "
            "them again if you accept that some may get two copies.",
            markup=False,
            soft_wrap=True,
        )


@main.command()
@campaign_arg
@allow_past_opt
@friendly_errors
def status(campaign: Path, allow_past: bool) -> None:
    """Show how many recipients are in each ledger state, and any batches that failed or got
    no answer (with SendGrid's error).

    \b
    Example:
      equip-mailer status campaigns/2019-04-equip-training.yaml
    """
    from equip_mailer.send.ledger import Ledger

    spec, _cfg, engine = _send_setup(campaign, True)  # reading the ledger: dates don't matter
    ledger = Ledger(engine, spec.id)
    if ledger.campaign_row() is None:
        console.print(f"Campaign {spec.id} has not been sent yet (no ledger rows).", markup=False)
        return
    _print_status(spec, ledger)


@main.command()
@campaign_arg
@allow_past_opt
@click.option("--yes", "-y", is_flag=True, help="Do not ask before cancelling.")
@friendly_errors
def cancel(campaign: Path, allow_past: bool, yes: bool) -> None:
    """Cancel a campaign's scheduled SendGrid send (one with sendgrid.send_at) before it goes.

    \b
    Example:
      equip-mailer cancel campaigns/2019-04-equip-training.yaml
    """
    from equip_mailer.send.backends.sendgrid import SendGridBackend
    from equip_mailer.send.ledger import Ledger

    spec, cfg, engine = _send_setup(campaign, True)
    ledger = Ledger(engine, spec.id)
    row = ledger.campaign_row()
    if row is None or not row.sg_batch_id:
        console.print(
            f"Nothing to cancel: campaign {spec.id} has no scheduled SendGrid send "
            "(mail sent to the outbox or sent straight away cannot be recalled).",
            markup=False,
            soft_wrap=True,
        )
        return
    if row.cancelled_at is not None:
        console.print(
            f"Campaign {spec.id}'s scheduled send was already cancelled on "
            f"{row.cancelled_at:%Y-%m-%d %H:%M} UTC.",
            markup=False,
        )
        return
    import datetime as dt

    from equip_mailer.store import utcnow

    # SendGrid accepts a cancel only up to 10 minutes before send_at.
    if row.send_at is not None and row.send_at - dt.timedelta(minutes=10) <= utcnow():
        raise EquipError(
            f"too late to cancel: campaign {spec.id} is scheduled for "
            f"{row.send_at:%Y-%m-%d %H:%M} UTC, and SendGrid takes cancellations "
            "only until 10 minutes before"
        )
    if not cfg.sendgrid_api_key:
        raise EquipError("cancelling a scheduled send needs SENDGRID_API_KEY")
    if not yes:
        if not sys.stdin.isatty():
            raise EquipError(
                "not cancelling without confirmation: there is no terminal to ask on",
                hint="Add --yes to cancel without asking.",
            )
        if not click.confirm(f"Cancel the scheduled send of {spec.id}?", default=False):
            console.print("Nothing cancelled.", markup=False)
            return
    backend = SendGridBackend(
        cfg.sendgrid_api_key,
        _unscheduled_mail(spec),
        host=cfg.sendgrid_api_host,
        timeout=cfg.sendgrid_timeout,
    )
    with ledger.lock():
        backend.cancel_scheduled(row.sg_batch_id)
        n = ledger.mark_cancelled()
    console.print(
        f"Cancelled the scheduled send of {spec.id} at SendGrid; {n:,} recipient(s) "
        "marked cancelled.",
        markup=False,
    )


def _unscheduled_mail(spec):
    """Request settings without the send_at check (cancel runs when send_at may be near)."""
    from equip_mailer.send.campaign_mail import CampaignMail

    return CampaignMail(campaign_id=spec.id, sender_email=spec.sender.email)


# --- preview ---


def _sample_recipients(spec) -> tuple[dict, str | None]:
    """First recipient of each segment from the lists: (segment id -> Recipient, note).

    Previews are about how the email looks, so an unreadable or unfinished audience module
    falls back to a clearly fake reader instead of stopping; the note says why.
    """
    try:
        from equip_mailer.compose.audience import load_audience

        audience = load_audience(spec)
    except (ImportError, NotImplementedError) as exc:
        return {}, f"mailing lists not read ({exc}); using a sample reader"
    except EquipError as exc:
        return {}, f"mailing lists not read ({exc}); using a sample reader"
    return {sid: people[0] for sid, people in audience.by_segment.items() if people}, None


def _fake_reader(segment):
    from equip_mailer.compose.audience import Recipient
    from equip_mailer.compose.menu import reader_level

    return Recipient(
        email="sam.example@example.org",
        first_name="Sam",
        last_name="Example",
        practice="Example Practice",
        role="Practice manager",
        qi_level=reader_level(segment),
        source="sample reader",
    )


@main.command()
@campaign_arg
@allow_past_opt
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("preview"),
    show_default=True,
    help="Folder to write the previews to.",
)
@click.option(
    "--segment",
    "segment_ids",
    multiple=True,
    metavar="SEGMENT",
    help="Only this segment (repeat for more). Default: every segment.",
)
@friendly_errors
def preview(campaign: Path, allow_past: bool, out_dir: Path, segment_ids: tuple[str, ...]) -> None:
    """Write each segment's email as it will look, to open in a browser or text editor.

    Writes OUT/<segment>.html and OUT/<segment>.txt, personalised for the first reader of
    that segment on the lists (or a sample reader, Sam Example, when a segment is empty).
    Links go straight to their pages, without tracking; nothing is sent or recorded.

    \b
    Example:
      equip-mailer preview campaigns/2019-04-equip-training.yaml --allow-past
      equip-mailer preview campaigns/2019-04-equip-training.yaml --allow-past --segment project-leads
    """
    from equip_mailer.compose.render import personalise, recipient_values, render_campaign
    from equip_mailer.compose.spec import load_campaign

    spec = load_campaign(campaign, allow_past=allow_past)
    rendered = render_campaign(spec, list(segment_ids) or None)
    readers, note = _sample_recipients(spec)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise EquipError(
            f"{out_dir} is a file, not a folder", hint="Choose another --out."
        ) from None
    used_sample = []
    for segment_id, segment_mail in rendered.items():
        reader = readers.get(segment_id)
        if reader is None:
            reader = _fake_reader(spec.segment(segment_id))
            used_sample.append(segment_id)
        values = recipient_values(
            segment_mail,
            reader,
            {link.key: link.url for link in segment_mail.links},
            "#unsubscribe-preview",
        )
        html, text = personalise(segment_mail, values)
        html_path, text_path = out_dir / f"{segment_id}.html", out_dir / f"{segment_id}.txt"
        html_path.write_text(html, encoding="utf-8")
        text_path.write_text(text, encoding="utf-8")
        console.print(str(html_path), markup=False, soft_wrap=True)
        console.print(str(text_path), markup=False, soft_wrap=True)
    if note:
        console.print(f"Note: {note}.", markup=False, soft_wrap=True)
    elif used_sample:
        console.print(
            f"Note: no one on the lists in {', '.join(used_sample)}; shown for a sample "
            "reader, Sam Example.",
            markup=False,
            soft_wrap=True,
        )
    console.print(
        "Links go straight to their pages (no tracking) and the unsubscribe link is a "
        "placeholder. Nothing was sent.",
        markup=False,
        soft_wrap=True,
    )


# --- report ---


def _refresh_machine_flags(engine, campaign_id: str) -> None:
    """A delivered event can arrive after the scanner click it explains; one full pass
    before counting makes the human/machine split as good as the store allows."""
    import sqlalchemy as sa

    from equip_mailer.store import campaigns
    from equip_mailer.track.machines import reclassify_campaign

    with engine.begin() as conn:
        if conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first():
            reclassify_campaign(conn, campaign_id)


def _report_input(arg: str, engine):
    """Frames and display names for one CAMPAIGN argument: a spec file or a campaign id.

    A spec gives the names (and a 'not sent yet' report when the store has never seen the
    campaign); a bare id is read from the store alone, borrowing names from the spec the
    send recorded when that file is still there.
    """
    import sqlalchemy as sa

    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.errors import SpecError
    from equip_mailer.report import compute as reporting
    from equip_mailer.store import campaigns as campaigns_table

    path = Path(arg)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        spec = load_campaign(path, allow_past=True)  # reports look back: past dates are fine
        names = reporting.names_from_spec(spec)
        try:
            if engine is None:
                raise reporting.ReportError("no database yet")
            _refresh_machine_flags(engine, spec.id)
            return reporting.load_frames(engine, spec.id), names
        except reporting.ReportError:
            return reporting.empty_frames(spec.id, spec.subject), names
    if engine is None:
        raise reporting.ReportError(
            f"there is no campaign {arg!r} in the database",
            hint="There is no database yet, so nothing has been sent. "
            "Give the campaign spec (campaigns/....yaml) for a "
            "'not sent yet' report.",
        )
    _refresh_machine_flags(engine, arg)
    frames = reporting.load_frames(engine, arg)
    names = None
    with engine.connect() as conn:
        spec_path = conn.execute(
            sa.select(campaigns_table.c.spec_path).where(campaigns_table.c.id == arg)
        ).scalar()
    if spec_path and Path(spec_path).is_file():
        try:
            spec = load_campaign(spec_path, allow_past=True)
            if spec.id == arg:
                names = reporting.names_from_spec(spec)
        except SpecError:
            names = None  # names are a nicety; ids will do
    return frames, names


def _report_engine(url: str):
    """The store, or None when its SQLite file does not exist: a report only reads, so it
    must not leave an empty database behind."""
    import sqlalchemy as sa

    from equip_mailer.store import open_store

    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return open_store(url)  # raises the plain StoreError
    database = sa_url.database
    if (
        sa_url.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not Path(database).exists()
    ):
        return None
    return open_store(url)


def _files_written(paths: list[Path]) -> None:
    html = [p for p in paths if p.suffix == ".html"]
    others = [p for p in paths if p.suffix != ".html"]
    for p in html:
        console.print(f"Report: {p}", markup=False, soft_wrap=True)
    if others:
        console.print(
            f"Also: {', '.join(p.name for p in others)} in {others[0].parent}",
            markup=False,
            soft_wrap=True,
        )


@main.command()
@click.argument("campaigns", nargs=-1, required=True, metavar="CAMPAIGN...")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files [default: report/<campaign id>/, or report/compare/].",
)
@click.option(
    "--human-only/--all",
    "human_only",
    default=True,
    help="Headline figures from human clicks only (the default), or from every click "
    "including mail scanners. Machine and raw figures are always shown beside.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Set two or more campaigns side by side, per segment and per course.",
)
@friendly_errors
def report(
    campaigns: tuple[str, ...], out_dir: Path | None, human_only: bool, compare: bool
) -> None:
    """Click-through report for a campaign: report.html (self-contained, prints on A4),
    report.xlsx and a CSV per table, plus a summary here.

    CAMPAIGN is the campaign spec (campaigns/....yaml) or a campaign id from the database.
    A campaign that was never sent still gets a report that says so.

    \b
    Example:
      equip-mailer report campaigns/2019-04-equip-training.yaml
      equip-mailer report 2019-04-equip-training --all --out board-paper/
      equip-mailer report --compare 2019-01-equip-training 2019-04-equip-training
    """
    from equip_mailer.report import compute as reporting
    from equip_mailer.report import output as report_output

    if compare and len(campaigns) < 2:
        raise EquipError(
            "--compare needs two or more campaigns",
            hint="e.g. equip-mailer report --compare 2019-01-equip 2019-04-equip",
        )
    if len(set(campaigns)) < len(campaigns):
        raise EquipError("a campaign is named twice; name each campaign once")
    if not compare and len(campaigns) > 1:
        raise EquipError(
            f"give one campaign, not {len(campaigns)}",
            hint="Use --compare to set several campaigns side by side.",
        )
    engine = _report_engine(settings().database_url)
    built = []
    for arg in campaigns:
        frames, names = _report_input(arg, engine)
        built.append(reporting.build_report(frames, names, human_only=human_only))
    try:
        if compare:
            tables = reporting.compare(built)
            target = out_dir or Path("report") / "compare"
            paths = report_output.write_comparison(built, tables, target)
            report_output.print_comparison(built, tables, console)
        else:
            rep = built[0]
            target = out_dir or Path("report") / rep.campaign_id
            paths = report_output.write_report(rep, target)
            if not rep.sent:
                console.print(
                    f"Campaign {rep.campaign_id} has not been sent yet, so there is "
                    "nothing to count; the report says so.",
                    markup=False,
                    soft_wrap=True,
                )
            else:
                report_output.print_summary(rep, console)
    except (FileExistsError, NotADirectoryError):
        raise EquipError(
            f"{target} is a file, not a folder", hint="Choose another --out."
        ) from None
    _files_written(paths)
