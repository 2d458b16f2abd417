"""Where single notices leave: one ``.eml`` file per notice (the default, as for campaigns),
or one SendGrid Mail Send request per notice.

Both answer with the campaign backends' ``BatchResult``, so the notice ledger records the
same three outcomes (sent, failed, uncertain). ``notice_transport`` picks the way out as
``send`` does: SendGrid when an API key is configured, else the outbox.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.policy
import os
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from equip_mailer.config import Settings

from .backends.sendgrid import client, post_mail
from .batch import BatchResult
from .notices import NoticeTransport, Outgoing


def message_bytes(outgoing: Outgoing) -> bytes:
    """The notice as an RFC 5322 message: text, then HTML when there is one, then the
    attachments (a calendar invite goes as ``text/calendar`` so mail clients offer to add it)."""
    n = outgoing.notice
    msg = EmailMessage()
    msg["Subject"] = n.subject
    msg["From"] = Address(n.from_name or "", addr_spec=n.from_email)
    msg["To"] = Address(n.to_name or "", addr_spec=n.to_email)
    if n.reply_to:
        name, addr = parseaddr(n.reply_to)
        msg["Reply-To"] = Address(name, addr_spec=addr)
    msg["Date"] = format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = make_msgid(
        idstring=f"notice.{outgoing.id}", domain=n.from_email.rpartition("@")[2]
    )
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to it
    msg["X-Equip-Notice"] = f"{outgoing.id} {n.kind}"
    msg.set_content(n.text, subtype="plain", charset="utf-8")
    if n.html:
        msg.add_alternative(n.html, subtype="html", charset="utf-8")
    for a in n.attachments:
        maintype, _, rest = a.content_type.partition("/")
        subtype, *extra = [p.strip() for p in rest.split(";")]
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in extra)}
        params.pop("charset", None)
        if maintype == "text":  # e.g. text/calendar; method=PUBLISH: kept readable, UTF-8
            msg.add_attachment(
                a.data.decode("utf-8"), subtype=subtype, filename=a.filename, params=params
            )
        else:
            msg.add_attachment(
                a.data, maintype=maintype, subtype=subtype, filename=a.filename, params=params
            )
    try:
        return msg.as_bytes(policy=email.policy.SMTP)
    except (UnicodeEncodeError, ValueError):
        return msg.as_bytes(policy=email.policy.SMTPUTF8)


def notice_file(outbox: Path, notice_id: int, kind: str) -> Path:
    """Where the outbox keeps a single email: ``forget`` and ``purge`` delete it by this
    name, so it is made in this one place."""
    return Path(outbox) / "notices" / f"{notice_id:06d}-{kind}.eml"


class OutboxNotices:
    """Writes each notice to ``<outbox>/notices/<id>-<kind>.eml`` (temporary name, then
    renamed), so a file on disk means the notice was handed over, and nothing else does."""

    name = "outbox"

    def __init__(self, outbox: Path):
        self.outbox = Path(outbox)
        self.folder = self.outbox / "notices"

    def path_for(self, outgoing: Outgoing) -> Path:
        return notice_file(self.outbox, outgoing.id, outgoing.notice.kind)

    def send_notice(self, outgoing: Outgoing) -> BatchResult:
        path = self.path_for(outgoing)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(message_bytes(outgoing))
            os.replace(tmp, path)
        except OSError as exc:
            return BatchResult(
                "failed", error=f"cannot write to the outbox {self.folder} ({exc.strerror or exc})"
            )
        return BatchResult("sent")

    def delivered(self, outgoing: Outgoing) -> bool | None:
        return self.path_for(outgoing).exists()


def request_body(outgoing: Outgoing) -> dict[str, Any]:
    """The Mail Send body for one notice: no tracking (a confirmation is not a campaign), the
    notice id in custom_args so webhook events join back to it."""
    n = outgoing.notice
    to = {"email": n.to_email, **({"name": n.to_name} if n.to_name else {})}
    custom_args = {"notice_id": str(outgoing.id), "kind": n.kind}
    if n.campaign_id:
        custom_args["campaign_id"] = n.campaign_id
    content = [{"type": "text/plain", "value": n.text}]
    if n.html:
        content.append({"type": "text/html", "value": n.html})
    body: dict[str, Any] = {
        "personalizations": [{"to": [to], "custom_args": custom_args}],
        "from": {"email": n.from_email, **({"name": n.from_name} if n.from_name else {})},
        "subject": n.subject,
        "content": content,
        "categories": ["equip-notice", n.kind],
        "headers": {"Auto-Submitted": "auto-generated"},
        "tracking_settings": {
            "click_tracking": {"enable": False, "enable_text": False},
            "open_tracking": {"enable": False},
            "subscription_tracking": {"enable": False},
        },
    }
    if n.reply_to:
        name, addr = parseaddr(n.reply_to)
        body["reply_to"] = {"email": addr, **({"name": name} if name else {})}
    if n.attachments:
        body["attachments"] = [
            {
                "content": base64.b64encode(a.data).decode("ascii"),
                "type": a.content_type.split(";")[0].strip(),
                "filename": a.filename,
                "disposition": "attachment",
            }
            for a in n.attachments
        ]
    return body


class SendGridNotices:
    """Posts each notice as its own Mail Send request, with the campaign sends' retries and
    answer classification (``backends.sendgrid.post_mail``)."""

    name = "sendgrid"

    def __init__(self, api_key: str, *, host: str, timeout: float = 30.0):
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.sg = client(api_key, self.host, self.timeout)

    def send_notice(self, outgoing: Outgoing) -> BatchResult:
        what = f"notice {outgoing.id} ({outgoing.notice.kind})"
        return post_mail(
            self.sg, request_body(outgoing), what, host=self.host, timeout=self.timeout
        )

    def delivered(self, outgoing: Outgoing) -> bool | None:
        return None  # only SendGrid's events can tell


def notice_transport(settings: Settings, outbox: Path) -> NoticeTransport:
    """SendGrid when ``SENDGRID_API_KEY`` is set, else the outbox folder, as for ``send``."""
    if settings.sendgrid_api_key:
        return SendGridNotices(
            settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout,
        )
    return OutboxNotices(outbox)
