"""Scheduled sends: one SendGrid batch id and one ``send_at`` per campaign.

A scheduled send needs a SendGrid batch id for the whole campaign so that ``cancel`` can
stop it; it is created once and kept in the campaigns row. Later runs (people added to a
list, a run that paused) reuse it, and a changed time or a cancelled schedule is refused
plainly rather than half-applied.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from equip_mailer.errors import DeliveryError

from .backends.sendgrid import SendGridBackend
from .batch import Backend
from .campaign_mail import CampaignMail
from .ledger import Ledger


def ensure_schedule(ledger: Ledger, backend: Backend, mail: CampaignMail) -> CampaignMail:
    """Refuse to send a campaign whose scheduled send was cancelled; give a scheduled send
    (through SendGrid) its campaign's SendGrid batch id, created on the first run."""
    row = ledger.campaign_row()
    if row is not None and row.cancelled_at is not None:
        raise DeliveryError(
            f"the scheduled send of campaign {mail.campaign_id} was cancelled on "
            f"{row.cancelled_at:%Y-%m-%d %H:%M} UTC",
            hint="Give the campaign a new id to schedule it again.",
        )
    if mail.send_at is None or not isinstance(backend, SendGridBackend):
        return mail
    sg_batch_id = row.sg_batch_id if row is not None else None
    wanted = dt.datetime.fromtimestamp(mail.send_at, dt.UTC).replace(tzinfo=None)
    if sg_batch_id and row is not None and row.send_at is not None and row.send_at != wanted:
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
        ledger.set_sg_batch(sg_batch_id, wanted)
    mail = replace(mail, sg_batch_id=sg_batch_id)
    backend.mail = mail
    return mail
