"""Scheduled sends: one SendGrid batch id and one ``send_at`` per campaign.

A scheduled send needs a SendGrid batch id for the whole campaign so that ``cancel`` can
stop it; it is created once and kept in the campaigns row. Later runs (people added to a
list, a run that paused) reuse it, and a changed time or a cancelled schedule is refused
plainly rather than half-applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import sqlalchemy as sa

from equip_mailer.errors import DeliveryError

from .backends.sendgrid import SendGridBackend
from .batch import Backend
from .campaign_mail import CampaignMail
from .ledger import Ledger


def refuse_stale_schedule(row: sa.Row | None, mail: CampaignMail, *, scheduling: bool) -> None:
    """Refuse a campaign whose scheduled send was cancelled, or (``scheduling``: through
    SendGrid) whose ``send_at`` changed since it was scheduled. A dry run asks the same, so
    it never reports "nothing to send" for a campaign the real run would refuse."""
    if row is not None and row.cancelled_at is not None:
        raise DeliveryError(
            f"the scheduled send of campaign {mail.campaign_id} was cancelled on "
            f"{row.cancelled_at:%Y-%m-%d %H:%M} UTC",
            hint="Give the campaign a new id to schedule it again.",
        )
    if not scheduling or mail.send_at is None or row is None:
        return
    wanted = dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
    if row.sg_batch_id and row.send_at is not None and row.send_at != wanted:
        # Later batches would go at the new time under the old batch id, and `cancel` would
        # judge "too late" by the old one: one campaign, one schedule.
        raise DeliveryError(
            f"campaign {mail.campaign_id} is already scheduled for "
            f"{row.send_at:%Y-%m-%d %H:%M} UTC; the spec now says "
            f"{wanted:%Y-%m-%d %H:%M} UTC",
            hint="Put sendgrid.send_at back, or cancel (equip-mailer cancel) and "
            "schedule again under a new campaign id.",
        )


def ensure_schedule(ledger: Ledger, backend: Backend, mail: CampaignMail) -> CampaignMail:
    """Refuse to send a campaign whose scheduled send was cancelled or moved; give a
    scheduled send (through SendGrid) its campaign's SendGrid batch id, created on the
    first run."""
    row = ledger.campaign_row()
    scheduling = mail.send_at is not None and isinstance(backend, SendGridBackend)
    refuse_stale_schedule(row, mail, scheduling=scheduling)
    if not isinstance(backend, SendGridBackend) or mail.send_at is None:
        return mail
    sg_batch_id = row.sg_batch_id if row is not None else None
    if not sg_batch_id:
        sg_batch_id = backend.create_batch_id()
        wanted = dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
        ledger.set_sg_batch(sg_batch_id, wanted)
    mail = replace(mail, sg_batch_id=sg_batch_id)
    backend.mail = mail
    return mail
