"""The SendGrid Mail Send request body for one batch, built by a pure function.

Shape borrowed from django-anymail: the body is built once, from the campaign's shared
settings and one batch, then posted (backends/sendgrid.py) or only measured (the dry run).
Plain dicts, not the ``sendgrid`` helper classes: those cost too much per recipient.
"""

from __future__ import annotations

from typing import Any

from equip_mailer.errors import DeliveryError

from .batch import LIST_UNSUBSCRIBE_POST, MAX_PER_REQUEST, Batch
from .campaign_mail import CampaignMail


def build_request(mail: CampaignMail, batch: Batch) -> dict[str, Any]:
    """The Mail Send body for one batch. Content is shared; each personalization carries
    its own substitutions, custom_args and List-Unsubscribe header (see ``personalizations``)."""
    if len(batch.addressees) > MAX_PER_REQUEST:
        raise DeliveryError(f"{batch.describe()} has more than {MAX_PER_REQUEST} recipients")
    c = batch.content
    body: dict[str, Any] = {
        "personalizations": personalizations(mail, batch),
        "from": _address(mail.sender_email, mail.sender_name),
        "subject": ("[TEST] " + c.subject) if batch.test else c.subject,
        "content": [
            {"type": "text/plain", "value": c.text},
            {"type": "text/html", "value": c.html},
        ],
        "categories": list(mail.categories),
        "headers": {
            "List-Unsubscribe-Post": LIST_UNSUBSCRIBE_POST,
            **mail.list_headers(c.segment),
        },
        "tracking_settings": {
            "click_tracking": {"enable": mail.click_tracking, "enable_text": mail.click_tracking},
            "open_tracking": {"enable": mail.open_tracking},
            "subscription_tracking": {"enable": False},  # our own /u/ link does this
        },
        "mail_settings": {"sandbox_mode": {"enable": mail.sandbox}},
    }
    if mail.reply_to_email:
        body["reply_to"] = _address(mail.reply_to_email, mail.reply_to_name)
    if mail.asm_group_id is not None:
        body["asm"] = {"group_id": int(mail.asm_group_id)}
    if mail.send_at is not None and not batch.test:
        if not mail.sg_batch_id:
            raise DeliveryError("a scheduled send needs a SendGrid batch id (internal error)")
        body["send_at"] = mail.send_at
        body["batch_id"] = mail.sg_batch_id
    return body


def personalizations(mail: CampaignMail, batch: Batch) -> list[dict[str, Any]]:
    """One per recipient: substitutions, custom_args (ids only, all strings) and its own
    List-Unsubscribe header, since SendGrid only substitutes in subject, reply-to and
    content, not in headers."""
    base_args = {
        "campaign_id": mail.campaign_id,
        "segment": batch.content.segment,
        "send_id": batch.send_id,
    }
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a in batch.addressees:
        key = a.email.lower()
        if key in seen:  # the ledger is unique per address; this guards the invariant
            raise DeliveryError(f"{batch.describe()} lists recipient {a.ledger_id} twice")
        seen.add(key)
        to = {"email": a.email, "name": a.name} if a.name else {"email": a.email}
        out.append(
            {
                "to": [to],
                "substitutions": a.values,
                "custom_args": {**base_args, "recipient": str(a.ledger_id)},
                "headers": {"List-Unsubscribe": f"<{a.unsubscribe_url}>"},
            }
        )
    return out


def _address(email: str, name: str | None) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}
