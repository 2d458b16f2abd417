"""The outbox backend: one RFC 5322 ``.eml`` file per recipient, the default way out.

Needs no credentials and no server (``make demo`` sends here), and each file is the mail as
the reader would get it: tokens substituted exactly as SendGrid's substitutions would be.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import os
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from equip_mailer.send.batch import LIST_UNSUBSCRIBE_POST, Addressee, Batch, BatchResult
from equip_mailer.send.campaign_mail import CampaignMail


def substitute(text: str, values: dict[str, str], pattern: re.Pattern | None = None) -> str:
    """Replace tokens exactly as SendGrid's substitutions would (longest token first)."""
    if not values:
        return text
    pattern = pattern or token_pattern(values)
    return pattern.sub(lambda m: values.get(m.group(0), m.group(0)), text)


def token_pattern(values: dict[str, str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)))


class OutboxBackend:
    """Writes one ``.eml`` per recipient under ``<dir>/<campaign-id>/``.

    The file is named from the ledger id and written to a temporary name then renamed, so a
    crash leaves no half file and a re-run (even of an uncertain batch) overwrites the same
    file instead of creating a second copy. Test sends go to ``test/<segment>.eml``.
    """

    name = "outbox"

    def __init__(self, directory: Path, mail: CampaignMail):
        self.mail = mail
        self.folder = Path(directory) / mail.campaign_id

    def path_for(self, batch: Batch, a: Addressee) -> Path:
        if batch.test:
            return self.folder / "test" / f"{batch.content.segment}.eml"
        return self.folder / f"{a.ledger_id:06d}.eml"

    def send_batch(self, batch: Batch) -> BatchResult:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if batch.test:
                (self.folder / "test").mkdir(exist_ok=True)
            pattern = (
                token_pattern(batch.addressees[0].values)
                if batch.addressees and batch.addressees[0].values
                else None
            )
            for a in batch.addressees:
                data = self.message(batch, a, pattern)
                path = self.path_for(batch, a)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
        except OSError as exc:
            return BatchResult(
                "failed",
                stop=True,
                error=f"cannot write to the outbox {self.folder} ({exc.strerror or exc})",
                hint="Check the folder exists and is writable (--outbox DIR).",
            )
        return BatchResult("sent", message_id=None)

    def message(self, batch: Batch, a: Addressee, pattern: re.Pattern | None = None) -> bytes:
        """The mail this recipient would get: text part first, then HTML."""
        c = batch.content
        values = a.values
        if values and pattern is None:
            pattern = token_pattern(values)
        subject = substitute(c.subject, values, pattern)
        msg = EmailMessage()
        msg["Subject"] = ("[TEST] " + subject) if batch.test else subject
        msg["From"] = Address(self.mail.sender_name or "", addr_spec=self.mail.sender_email)
        msg["To"] = Address(a.name or "", addr_spec=a.email)
        if self.mail.reply_to_email:
            msg["Reply-To"] = Address(
                self.mail.reply_to_name or "", addr_spec=self.mail.reply_to_email
            )
        msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        msg["Message-ID"] = make_msgid(
            idstring=f"{batch.send_id}.{a.ledger_id}",
            domain=self.mail.sender_email.rpartition("@")[2],
        )
        msg["List-Unsubscribe"] = f"<{a.unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = LIST_UNSUBSCRIBE_POST
        for name, value in self.mail.list_headers(c.segment).items():
            msg[name] = value
        msg["X-Equip-Campaign"] = self.mail.campaign_id
        msg["X-Equip-Segment"] = c.segment
        msg["X-Equip-Recipient"] = str(a.ledger_id)
        msg.set_content(substitute(c.text, values, pattern), subtype="plain", charset="utf-8")
        msg.add_alternative(substitute(c.html, values, pattern), subtype="html", charset="utf-8")
        try:
            return msg.as_bytes(policy=email.policy.SMTP)
        except (UnicodeEncodeError, ValueError):
            return msg.as_bytes(policy=email.policy.SMTPUTF8)
