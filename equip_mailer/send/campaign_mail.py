"""What every request of one campaign shares, read from its spec: sender, reply-to,
categories, tracking switches and the schedule.

Kept apart from the per-batch types because it is computed once per run, and because
``send_at`` is checked here: a schedule more than 72 hours ahead (SendGrid's limit) or in
the past is an error before anything is claimed, not a surprise from SendGrid later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from equip_mailer.errors import DeliveryError

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign

MAX_SEND_AT_AHEAD = dt.timedelta(hours=72)
LOCAL_TIME = "Europe/London"  # a manager in Tower Hamlets writing 09:00 means this


@dataclass(frozen=True)
class CampaignMail:
    """Everything about the campaign's requests that does not change per batch."""

    campaign_id: str
    sender_email: str
    sender_name: str | None = None
    reply_to_email: str | None = None
    reply_to_name: str | None = None
    categories: tuple[str, ...] = ()
    asm_group_id: int | None = None
    # SendGrid's click tracking (only when tracking.clicks == "sendgrid")
    click_tracking: bool = False
    open_tracking: bool = False
    sandbox: bool = False
    send_at: int | None = None  # unix time; the request then needs ``sg_batch_id``
    sg_batch_id: str | None = None
    # The newsletter's RFC 2919 list label, the same for every campaign so readers' filters
    # and mailbox providers recognise the list: "newsletter" gives List-Id
    # '"EQUIP Tower Hamlets" <newsletter.example.org>' (the sender's name and domain).
    list_label: str | None = None

    def list_headers(self, segment: str) -> dict[str, str]:
        """The headers that say this is list mail, for one segment's batch: ``List-Id`` and
        Gmail's ``Feedback-ID`` (campaign:segment:list:sender domain), against which Postmaster
        Tools reports spam complaints, so a segment that annoys its readers shows up."""
        if not self.list_label:
            return {}
        domain = self.sender_email.rpartition("@")[2].lower()
        name = (self.sender_name or "").replace("\\", "").replace('"', "").strip()
        list_id = f"<{self.list_label}.{domain}>"
        if name.isascii() and name:
            name = f'"{name}"'  # a quoted phrase; other names are encoded words, never quoted
        return {
            "List-Id": f"{name} {list_id}" if name else list_id,
            "Feedback-ID": ":".join(
                [_feedback_part(self.campaign_id), _feedback_part(segment), self.list_label, domain]
            ),
        }


def _feedback_part(value: str) -> str:
    """One Feedback-ID field: colons separate the fields, so none inside one (nor spaces)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in value) or "-"


def campaign_mail(
    campaign: Campaign, *, now: dt.datetime | None = None, sg_batch_id: str | None = None
) -> CampaignMail:
    """The per-campaign request settings from a spec, with ``send_at`` checked."""
    sg = campaign.sendgrid
    categories = tuple(dict.fromkeys([campaign.id, *sg.categories]))[:10]
    return CampaignMail(
        campaign_id=campaign.id,
        sender_email=campaign.sender.email,
        sender_name=campaign.sender.name,
        reply_to_email=campaign.reply_to.email if campaign.reply_to else None,
        reply_to_name=campaign.reply_to.name if campaign.reply_to else None,
        categories=categories,
        asm_group_id=sg.asm_group_id,
        click_tracking=campaign.tracking.clicks == "sendgrid",
        open_tracking=bool(campaign.tracking.opens),
        sandbox=bool(sg.sandbox),
        send_at=checked_send_at(campaign, now),
        sg_batch_id=sg_batch_id,
        list_label=campaign.list_id,
    )


def checked_send_at(campaign: Campaign, now: dt.datetime | None = None) -> int | None:
    """``sendgrid.send_at`` as unix time, refused if past or beyond SendGrid's 72 hours."""
    written = campaign.sendgrid.send_at
    if written is None:
        return None
    when = written if written.tzinfo is not None else written.replace(tzinfo=ZoneInfo(LOCAL_TIME))
    now = now or dt.datetime.now(dt.UTC)
    if when <= now:
        raise DeliveryError(
            f"sendgrid.send_at {written.isoformat()} is in the past",
            where=str(campaign.source or campaign.id),
            hint="Remove send_at to send now, or give a time in the next 72 hours.",
        )
    if when - now > MAX_SEND_AT_AHEAD:
        raise DeliveryError(
            f"sendgrid.send_at {written.isoformat()} is more than 72 hours "
            "ahead; SendGrid cannot schedule that far",
            where=str(campaign.source or campaign.id),
            hint="Send it later, or choose a time within 72 hours.",
        )
    return int(when.timestamp())
