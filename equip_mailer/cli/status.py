"""``equip-mailer status`` and ``cancel``: what a send left in the ledger (states, failed or
unanswered batches, the SendGrid schedule) and the one way to stop a scheduled send."""

from __future__ import annotations

import datetime as dt
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
    open_campaign_if_sent,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.config import Settings
    from equip_mailer.send.ledger import Ledger


@main.command()
@campaign_arg
@allow_past_opt
@click.option(
    "--check-sendgrid",
    is_flag=True,
    help="First ask SendGrid's Email Activity API (a paid add-on; the outbox's files for an "
    "outbox send) which uncertain recipients it accepted, and settle those.",
)
@click.option(
    "--outbox",
    "outbox_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the outbox backend, for --check-sendgrid of an outbox send [default: "
    "EQUIP_OUTBOX, else outbox/ in the project folder, as for send].",
)
@friendly_errors
def status(campaign: Path, allow_past: bool, check_sendgrid: bool, outbox_dir: Path | None) -> None:
    """Show how many recipients are in each ledger state, any batches that failed or got no
    answer (with SendGrid's error and, for each batch with no answer, how many recipients
    SendGrid's evidence has settled since), and what to run next.

    \b
    Example:
      equip-mailer status campaigns/2019-04-equip-training.yaml
      equip-mailer status campaigns/2019-04-equip-training.yaml --check-sendgrid
    """
    from equip_mailer.send.ledger import Ledger

    spec, cfg, engine = open_campaign_if_sent(campaign, True)  # dates don't matter here
    ledger = Ledger(engine, spec.id) if engine is not None else None
    if ledger is None or ledger.campaign_row() is None:
        console.print(f"Campaign {spec.id} has not been sent yet (no ledger rows).", markup=False)
        return
    _recover_a_stopped_send(ledger)
    ledger.settle()  # events that came while nobody was looking (clicks, a late webhook)
    if check_sendgrid:
        ask_about_uncertain(spec, cfg, outbox_dir or cfg.outbox, ledger)
    print_status(spec, ledger)


def _recover_a_stopped_send(ledger: Ledger) -> None:
    """Batches a killed send left in flight become uncertain now, as the next send would
    make them, so that status counts them, advises on them and --check-sendgrid asks
    about them. Not while a send runs: its batches are really in flight."""
    from equip_mailer.errors import DeliveryError

    if not ledger.counts().get("in_flight") or _running_send(ledger):
        return
    known = {b.id for b in ledger.uncertain_batches()}
    try:
        with ledger.lock():
            ledger.recover()
    except DeliveryError:  # a send started meanwhile
        return
    new = [b for b in ledger.uncertain_batches() if b.id not in known]
    if new:
        people = sum(b.size for b in new)
        proved = sum(b.size - b.still for b in new)
        console.print(
            f"{people:,} recipient{'s' if people != 1 else ''} in {len(new)} batch(es) were "
            "in flight when a send stopped: they are uncertain now (SendGrid may or may not "
            f"have accepted them); {proved:,} proved accepted by SendGrid's events already.",
            markup=False,
            soft_wrap=True,
        )


def ask_about_uncertain(spec: Campaign, cfg: Settings, outbox_dir: Path, ledger: Ledger) -> None:
    """Ask SendGrid's Email Activity API (or the outbox's files) about the uncertain batches
    and settle what it proves; a missing add-on is one line, never a failure."""
    from equip_mailer.send.activity import activity_sources, check_uncertain

    if not any(b.still for b in ledger.uncertain_batches()):
        return
    check = check_uncertain(ledger, activity_sources(cfg, outbox_dir / spec.id))
    for note in check.notes:
        console.print(f"Note: {note}.", markup=False, soft_wrap=True)
    if check.asked:
        n = sum(check.settled.values())
        console.print(
            f"Asked about {check.asked} uncertain batch(es): {n:,} recipient(s) proved accepted.",
            markup=False,
        )


def print_status(spec: Campaign, ledger: Ledger) -> None:
    """Recipients per ledger state, the schedule, problem batches and what to run next."""
    from rich.table import Table

    from equip_mailer.store.schema import LEDGER_STATES

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
    evidence = {b.id: b for b in ledger.uncertain_batches()}
    for b in ledger.problem_batches():
        proved = evidence.get(b.id)
        if not b.still and not (proved and proved.size > proved.still):
            continue
        settled = ""
        if proved:
            # the rest were re-sent (--retry-uncertain: their rows are in a newer batch),
            # suppressed or taken off the lists since
            gone = proved.size - proved.by_events - proved.by_asking - proved.still
            settled = (
                f"; settled since by SendGrid's events {proved.by_events:,}, by asking "
                f"{proved.by_asking:,}"
                + (f" ({proved.dropped:,} dropped by SendGrid)" if proved.dropped else "")
                + (f"; re-sent or left out since: {gone:,}" if gone > 0 else "")
            )
        console.print(
            f"Batch {b.send_id} ({b.segment}, {b.created_at:%Y-%m-%d %H:%M} UTC, "
            f"{b.size:,} recipients): {b.error or 'no detail'}{settled}; "
            f"still {b.state}: {b.still:,}.",
            markup=False,
            soft_wrap=True,
        )
    running = _running_send(ledger)
    print_totals(spec, ledger, counts, advise=running is None)
    if running:
        console.print(
            f"A send of this campaign is running now ({running}): the counts are still "
            "moving; run status again when it has finished.",
            markup=False,
            soft_wrap=True,
        )


def _command_spec(spec: Campaign) -> str:
    """The spec as the next command names it, with --allow-past when send would need it."""
    return str(spec.source or spec.id) + (" --allow-past" if spec.has_past_sessions() else "")


def _running_send(ledger: Ledger) -> str | None:
    """Which live process holds the campaign's send lock ("process 4242 on host, since
    ..."), or None: while one runs, "To send the pending ones: equip-mailer send" would
    only be refused by its lock."""
    from equip_mailer.send.lock_owner import owner_alive

    row = ledger.campaign_row()
    if row is None or not row.lock_owner or not owner_alive(row.lock_owner, row.lock_at):
        return None
    host, _, rest = row.lock_owner.partition(":")
    since = f", since {row.lock_at:%Y-%m-%d %H:%M} UTC" if row.lock_at else ""
    return f"process {rest.split(':')[0]} on {host}{since}"


def print_totals(
    spec: Campaign, ledger: Ledger, counts: dict[str, int] | None = None, *, advise: bool = True
) -> None:
    """The whole campaign in people (not this run's, not batches), and what to run next
    (unless ``advise`` is off: a send is running): ``send`` ends with this, so it never says
    "uncertain 0" while anyone is uncertain."""
    from equip_mailer.send.ledger_advice import next_steps

    counts = ledger.counts() if counts is None else counts
    total = sum(counts.values())
    uncertain = counts.get("uncertain", 0)
    batches = sum(1 for b in ledger.uncertain_batches() if b.still)
    proved = ledger.settled_by_evidence()
    parts = [
        f"sent {counts.get('sent', 0):,} of {total:,} recipients"
        + (
            f" ({proved:,} of them proved by SendGrid's evidence after no answer)" if proved else ""
        ),
        f"uncertain {uncertain:,}" + (f" in {batches} batch(es)" if uncertain else ""),
        f"failed {counts.get('failed', 0):,}",
    ]
    for state, label in (
        ("pending", "pending"),
        ("in_flight", "in flight"),
        ("dropped", "dropped by SendGrid"),
        ("suppressed", "suppressed"),
        ("cancelled", "cancelled or off the lists"),
    ):
        if counts.get(state):
            parts.append(f"{label} {counts[state]:,}")
    console.print(f"Campaign {spec.id}: " + "; ".join(parts) + ".", markup=False, soft_wrap=True)
    past = spec.has_past_sessions()
    steps = next_steps(str(spec.source or spec.id), counts, allow_past=past) if advise else []
    for step in steps:
        console.print(step.text, markup=False, soft_wrap=True)
        if step.command:
            console.print(f"  {step.command}", markup=False, soft_wrap=True)


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
    from equip_mailer.send.campaign_mail import CampaignMail
    from equip_mailer.send.ledger import Ledger

    spec, cfg, engine = open_campaign_if_sent(campaign, True)
    ledger = Ledger(engine, spec.id) if engine is not None else None
    sg_batch_id = _scheduled_batch(spec, ledger)
    if sg_batch_id is None or ledger is None:
        return
    if not cfg.sendgrid_api_key:
        raise EquipError("cancelling a scheduled send needs SENDGRID_API_KEY")
    if not yes and not confirmed(
        f"Cancel the scheduled send of {spec.id}?",
        refusal="not cancelling without confirmation: there is no terminal to ask on",
        hint="Add --yes to cancel without asking.",
    ):
        console.print("Nothing cancelled.", markup=False)
        return
    # Request settings without the send_at check: cancel runs when send_at may be near.
    mail = CampaignMail(campaign_id=spec.id, sender_email=spec.sender.email)
    backend = SendGridBackend(
        cfg.sendgrid_api_key, mail, host=cfg.sendgrid_api_host, timeout=cfg.sendgrid_timeout
    )
    with ledger.lock():
        backend.cancel_scheduled(sg_batch_id)
        n = ledger.mark_cancelled()
    console.print(
        f"Cancelled the scheduled send of {spec.id} at SendGrid; {n:,} recipient(s) "
        "marked cancelled.",
        markup=False,
    )


def _scheduled_batch(spec: Campaign, ledger: Ledger | None) -> str | None:
    """The SendGrid batch id of the scheduled send to cancel, or None (said on screen) when
    there is none left; refused plainly once SendGrid no longer takes cancellations."""
    from equip_mailer.store.rows import utcnow

    row = ledger.campaign_row() if ledger is not None else None
    if row is None:
        console.print(f"Nothing to cancel: campaign {spec.id} has not been sent yet.", markup=False)
        return None
    if not row.sg_batch_id:
        console.print(
            f"Nothing to cancel: campaign {spec.id} has no scheduled SendGrid send "
            "(mail sent to the outbox or sent straight away cannot be recalled).",
            markup=False,
            soft_wrap=True,
        )
        running = _running_send(ledger) if ledger is not None else None
        if running:  # what the manager wants then is to stop it: say how
            console.print(
                f"A send of this campaign is running now ({running}): to stop it, press "
                f"Ctrl+C in the window where it runs (or stop that process). Nobody gets "
                f"two copies: `equip-mailer send {_command_spec(spec)}` later sends the "
                "rest.",
                markup=False,
                soft_wrap=True,
            )
        return None
    if row.cancelled_at is not None:
        console.print(
            f"Campaign {spec.id}'s scheduled send was already cancelled on "
            f"{row.cancelled_at:%Y-%m-%d %H:%M} UTC.",
            markup=False,
        )
        return None
    # SendGrid accepts a cancel only up to 10 minutes before send_at.
    if row.send_at is not None and row.send_at - dt.timedelta(minutes=10) <= utcnow():
        raise EquipError(
            f"too late to cancel: campaign {spec.id} is scheduled for "
            f"{row.send_at:%Y-%m-%d %H:%M} UTC, and SendGrid takes cancellations "
            "only until 10 minutes before"
        )
    return row.sg_batch_id
