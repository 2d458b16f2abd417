"""Uncertain recipients, as ``send`` tells them: evidence gathered before a retry (events,
then SendGrid's Email Activity API), only the unproven re-sent once the settling period has
passed, and an exit status that a scheduled job notices while anyone is still uncertain.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from equip_mailer.cli.common import (
    console,
)
from equip_mailer.cli.status import ask_about_uncertain

if TYPE_CHECKING:
    from equip_mailer.send.dispatch import SendOptions
    from equip_mailer.send.ledger import Ledger

from equip_mailer.cli.send_checks import SendRun

EXIT_UNCERTAIN = 3  # the run finished, but some recipients are still uncertain


def count_people(n: int) -> str:
    return f"{n:,} recipient" + ("" if n == 1 else "s")


def settled_cutoff(run: SendRun) -> dt.datetime:
    """Batches that left before this have had their settling period."""
    from equip_mailer.store import utcnow

    return utcnow() - dt.timedelta(minutes=max(0, run.cfg.uncertain_settle_minutes))


def settle_before_retry(run: SendRun, ledger: Ledger) -> SendOptions:
    """--retry-uncertain: gather the evidence, say what it settled and what will be re-sent
    (and that those few may get a second copy), and hold back batches younger than the
    settling period unless --now. Returns the run's options with that cutoff."""
    ask_about_uncertain(run.spec, run.cfg, run.outbox_dir, ledger)
    found = ledger.uncertain_batches()
    by_events = sum(b.by_events for b in found)
    by_asking = sum(b.by_asking for b in found)
    minutes = run.cfg.uncertain_settle_minutes
    cutoff = settled_cutoff(run)
    young = [b for b in found if b.still and b.created_at >= cutoff]
    ripe_people = sum(b.still for b in found if b.still and b.created_at < cutoff)
    young_people = sum(b.still for b in young)
    everyone = by_events + by_asking + ripe_people + young_people
    console.print(
        f"Recipients of batches that got no answer: {count_people(everyone)} in {len(found)} "
        f"batch(es). Settled by SendGrid's events: {by_events:,}; by asking "
        f"(Email Activity API / outbox files): {by_asking:,}; still without evidence: "
        f"{ripe_people + young_people:,}.",
        markup=False,
        soft_wrap=True,
    )
    if run.now:
        resend = ripe_people + young_people
        if not resend:
            console.print(
                "--now: nobody is left to re-send; SendGrid's evidence settled them all.",
                markup=False,
            )
            return replace(run.options, uncertain_before=None)
        why = (
            f" including {young_people:,} in batches younger than the settling period "
            f"({minutes} min), whose events may still be on the way"
            if young_people
            else ""
        )
        console.print(
            f"--now: re-sending {count_people(resend)} without evidence{why}; if SendGrid did "
            "accept them, they get a second copy.",
            markup=False,
            soft_wrap=True,
        )
        return replace(run.options, uncertain_before=None)
    if ripe_people:
        console.print(
            f"Re-sending {count_people(ripe_people)} without evidence (batches older than "
            f"{minutes} min); if SendGrid did accept them without saying so, they get a "
            "second copy.",
            markup=False,
            soft_wrap=True,
        )
    if young_people:
        ready = max(b.created_at for b in young) + dt.timedelta(minutes=minutes)
        console.print(
            f"Waiting: {count_people(young_people)} in {len(young)} batch(es) younger than the "
            f"settling period ({minutes} min): SendGrid's events for them may still come. "
            f"Run the same command after {ready:%H:%M} UTC, or add --now to re-send them now.",
            markup=False,
            soft_wrap=True,
        )
    return replace(run.options, uncertain_before=cutoff)


def exit_for_uncertain(run: SendRun) -> None:
    """A scheduled job must notice recipients left uncertain: exit 3, not 0."""
    from equip_mailer.send.ledger import Ledger

    if Ledger(run.engine, run.spec.id).counts().get("uncertain"):
        sys.exit(EXIT_UNCERTAIN)
