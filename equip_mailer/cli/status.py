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
    open_campaign,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.send.ledger import Ledger


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

    spec, _cfg, engine = open_campaign(campaign, True)  # reading the ledger: dates don't matter
    ledger = Ledger(engine, spec.id)
    if ledger.campaign_row() is None:
        console.print(f"Campaign {spec.id} has not been sent yet (no ledger rows).", markup=False)
        return
    print_status(spec, ledger)


def print_status(spec: Campaign, ledger: Ledger) -> None:
    """Recipients per ledger state, the schedule, problem batches and what to run next."""
    from rich.table import Table

    from equip_mailer.send.ledger_advice import next_steps
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
    for b in ledger.problem_batches():
        if not b.still:
            continue
        console.print(
            f"Batch {b.send_id} ({b.segment}, {b.still:,} of {b.size:,} recipients "
            f"still {b.state}, {b.created_at:%Y-%m-%d %H:%M} UTC): {b.error or 'no detail'}",
            markup=False,
            soft_wrap=True,
        )
    for step in next_steps(str(spec.source or spec.id), counts):  # the team pages say the same
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

    spec, cfg, engine = open_campaign(campaign, True)
    ledger = Ledger(engine, spec.id)
    sg_batch_id = _scheduled_batch(spec, ledger)
    if sg_batch_id is None:
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


def _scheduled_batch(spec: Campaign, ledger: Ledger) -> str | None:
    """The SendGrid batch id of the scheduled send to cancel, or None (said on screen) when
    there is none left; refused plainly once SendGrid no longer takes cancellations."""
    from equip_mailer.store.rows import utcnow

    row = ledger.campaign_row()
    if row is None or not row.sg_batch_id:
        console.print(
            f"Nothing to cancel: campaign {spec.id} has no scheduled SendGrid send "
            "(mail sent to the outbox or sent straight away cannot be recalled).",
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
