"""Transports: one small interface, one class per backend (outbox, SendGrid).

The send loop (dispatch.py) hands a backend one ``Batch`` at a time: up to 1,000 recipients
of ONE segment, sharing that segment's rendered content, each with their own substitution
values. The backend answers with a ``BatchResult`` whose ``state`` the ledger records:

* ``sent``      - accepted (SendGrid 202, or the .eml files are on disk);
* ``failed``    - definitely not accepted (4xx refusal, 429/5xx after every retry, server
                  unreachable), so a later run may send these recipients again;
* ``uncertain`` - we cannot know (timeout, connection reset after the request went out):
                  SendGrid may have accepted it, so it is never re-sent blindly.

``stop`` on a result means the run must end now (bad key, refused payload): retrying the
next batch would fail the same way.

Shape borrowed from django-anymail: the request is built once by a pure function
(``build_request``), posted, and the answer classified in one place.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import http.client
import json
import logging
import os
import random
import re
import socket
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from equip_mailer.config import mask_email
from equip_mailer.errors import DeliveryError

MAX_PER_REQUEST = 1000  # SendGrid: personalizations (and recipients) per request
MAX_SUBSTITUTION_BYTES = 10_000  # SendGrid: per personalization
MAX_SEND_AT_AHEAD = dt.timedelta(hours=72)
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"


# ---------------------------------------------------------------------------------------
# What a backend is given


@dataclass(frozen=True)
class Content:
    """One segment's rendered mail, shared by every recipient of a batch. The strings carry
    substitution tokens that each recipient's ``values`` fill in."""

    segment: str
    subject: str
    html: str
    text: str


class Addressee(NamedTuple):
    """One recipient of a batch (a tuple: one is made per recipient per send)."""

    ledger_id: int  # opaque recipient id: goes out in custom_args, never the address
    email: str
    name: str
    values: dict[str, str]  # token -> value: SendGrid's ``substitutions``
    unsubscribe_url: str  # for the List-Unsubscribe header


@dataclass(frozen=True)
class Batch:
    campaign_id: str
    send_id: str  # unique per request; joins webhook events back to the batch
    content: Content
    addressees: list[Addressee]
    test: bool = False  # --test-to: outside the ledger, sent immediately

    def describe(self) -> str:
        return f"batch {self.send_id} (segment {self.content.segment}, {len(self.addressees)} recipients)"


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
    click_tracking: bool = (
        False  # SendGrid's click tracking (only when tracking.clicks == "sendgrid")
    )
    open_tracking: bool = False
    sandbox: bool = False
    send_at: int | None = None  # unix time; the request then needs ``sg_batch_id``
    sg_batch_id: str | None = None


@dataclass(frozen=True)
class BatchResult:
    state: str  # "sent" | "failed" | "uncertain"
    status: int | None = None  # last HTTP status, when there was one
    message_id: str | None = None  # SendGrid's X-Message-Id
    error: str | None = None  # one plain sentence, addresses masked
    attempts: int = 1
    stop: bool = False  # end the run now (no point trying the next batch)
    hint: str | None = None


class Backend(Protocol):
    name: str

    def send_batch(self, batch: Batch) -> BatchResult: ...


def campaign_mail(
    campaign: Any, *, now: dt.datetime | None = None, sg_batch_id: str | None = None
) -> CampaignMail:
    """The per-campaign request settings from a spec, with ``send_at`` checked: a schedule
    more than 72 hours ahead (SendGrid's limit) or in the past is an error, not a surprise."""
    sg = campaign.sendgrid
    send_at = None
    if sg.send_at is not None:
        when = sg.send_at
        if when.tzinfo is None:
            # A manager in Tower Hamlets writing 09:00 means London time.
            from zoneinfo import ZoneInfo

            when = when.replace(tzinfo=ZoneInfo("Europe/London"))
        now = now or dt.datetime.now(dt.UTC)
        if when <= now:
            raise DeliveryError(
                f"sendgrid.send_at {sg.send_at.isoformat()} is in the past",
                where=str(campaign.source or campaign.id),
                hint="Remove send_at to send now, or give a time in the next 72 hours.",
            )
        if when - now > MAX_SEND_AT_AHEAD:
            raise DeliveryError(
                f"sendgrid.send_at {sg.send_at.isoformat()} is more than 72 hours "
                "ahead; SendGrid cannot schedule that far",
                where=str(campaign.source or campaign.id),
                hint="Send it later, or choose a time within 72 hours.",
            )
        send_at = int(when.timestamp())
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
        send_at=send_at,
        sg_batch_id=sg_batch_id,
    )


_NAME_UNSAFE = re.compile(r'[,;"<>\r\n]+')
_EMAIL_RE = re.compile(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+")


def display_name(first: str | None, last: str | None) -> str:
    """SendGrid refuses names containing ``,`` or ``;``; drop those (and quotes, brackets)."""
    name = f"{first or ''} {last or ''}".strip()
    if _NAME_UNSAFE.search(name) or "  " in name:
        return " ".join(_NAME_UNSAFE.sub(" ", name).split())
    return name


def mask_addresses(text: str) -> str:
    """Provider messages may echo an address; keep logs and the ledger free of them."""
    return _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)


def substitution_bytes(values: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in values.items())


def check_addressee(batch: Batch, a: Addressee) -> None:
    """Refuse, before anything is claimed or sent, a recipient SendGrid would refuse."""
    size = substitution_bytes(a.values)
    if size > MAX_SUBSTITUTION_BYTES:
        raise DeliveryError(
            f"the personal values for recipient {a.ledger_id} ({mask_email(a.email)}) in segment "
            f"{batch.content.segment} take {size:,} bytes; SendGrid allows {MAX_SUBSTITUTION_BYTES:,}",
            hint="Shorten that recipient's name or practice in the list, or the campaign's links.",
        )


# ---------------------------------------------------------------------------------------
# SendGrid


def build_request(mail: CampaignMail, batch: Batch) -> dict:
    """The Mail Send body for one batch, as plain dicts (the helper classes cost too much per
    recipient). Content is shared; each personalization carries its substitutions, its
    custom_args (ids only, all strings) and its own List-Unsubscribe header: SendGrid only
    substitutes in subject, reply-to and content, not in headers."""
    if len(batch.addressees) > MAX_PER_REQUEST:
        raise DeliveryError(f"{batch.describe()} has more than {MAX_PER_REQUEST} recipients")
    c = batch.content
    base_args = {"campaign_id": mail.campaign_id, "segment": c.segment, "send_id": batch.send_id}
    personalizations = []
    seen: set[str] = set()
    for a in batch.addressees:
        key = a.email.lower()
        if key in seen:  # the ledger is unique per address; this guards the invariant
            raise DeliveryError(f"{batch.describe()} lists recipient {a.ledger_id} twice")
        seen.add(key)
        to = {"email": a.email, "name": a.name} if a.name else {"email": a.email}
        personalizations.append(
            {
                "to": [to],
                "substitutions": a.values,
                "custom_args": {**base_args, "recipient": str(a.ledger_id)},
                "headers": {"List-Unsubscribe": f"<{a.unsubscribe_url}>"},
            }
        )
    body: dict = {
        "personalizations": personalizations,
        "from": (
            {"email": mail.sender_email, "name": mail.sender_name}
            if mail.sender_name
            else {"email": mail.sender_email}
        ),
        "subject": ("[TEST] " + c.subject) if batch.test else c.subject,
        "content": [
            {"type": "text/plain", "value": c.text},
            {"type": "text/html", "value": c.html},
        ],
        "categories": list(mail.categories),
        "headers": {"List-Unsubscribe-Post": LIST_UNSUBSCRIBE_POST},
        "tracking_settings": {
            "click_tracking": {"enable": mail.click_tracking, "enable_text": mail.click_tracking},
            "open_tracking": {"enable": mail.open_tracking},
            "subscription_tracking": {"enable": False},  # our own /u/ link does this
        },
        "mail_settings": {"sandbox_mode": {"enable": mail.sandbox}},
    }
    if mail.reply_to_email:
        body["reply_to"] = (
            {"email": mail.reply_to_email, "name": mail.reply_to_name}
            if mail.reply_to_name
            else {"email": mail.reply_to_email}
        )
    if mail.asm_group_id is not None:
        body["asm"] = {"group_id": int(mail.asm_group_id)}
    if mail.send_at is not None and not batch.test:
        if not mail.sg_batch_id:
            raise DeliveryError("a scheduled send needs a SendGrid batch id (internal error)")
        body["send_at"] = mail.send_at
        body["batch_id"] = mail.sg_batch_id
    return body


@dataclass(frozen=True)
class RetryPolicy:
    """429 and 5xx are retried: exponential backoff with full jitter, but never sooner than
    SendGrid's Retry-After / X-RateLimit-Reset says."""

    attempts: int = 6  # total tries per batch
    base: float = 0.5  # seconds
    cap: float = 30.0
    max_wait: float = 120.0  # a single wait longer than this ends the batch as failed

    def delay(self, attempt: int, headers: Any) -> float:
        backoff = random.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        told = _told_wait(headers)
        return max(backoff, told) if told is not None else backoff


def _told_wait(headers: Any) -> float | None:
    if headers is None:
        return None
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(retry_after).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            pass
    return None


def sendgrid_errors(body: bytes | str | None) -> str:
    """SendGrid's ``errors[].message`` (with the field), joined; the raw text otherwise."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        data = json.loads(text)
        parts = []
        for e in data.get("errors", []):
            msg = str(e.get("message") or "").strip()
            if e.get("field"):
                msg += f" (field {e['field']})"
            parts.append(msg)
        if parts:
            return mask_addresses("; ".join(parts))
    except (ValueError, AttributeError, TypeError):
        pass
    return mask_addresses(text.strip()[:300])


_REFUSALS = {
    400: (
        "SendGrid refused {what}: {detail}",
        "Fix the campaign or list, then run the same "
        "command again; recipients of this batch were not sent and will be retried.",
    ),
    401: (
        "SendGrid rejected the API key while sending {what}: {detail}",
        "Check SENDGRID_API_KEY (a Mail Send key), then run the same command again.",
    ),
    403: (
        "SendGrid refused access while sending {what}: {detail}",
        "The API key lacks the Mail Send permission, or the sender is not verified.",
    ),
    413: (
        "SendGrid said {what} is too large: {detail}",
        "Lower EQUIP_BATCH_SIZE or shorten the content, then run the same command again.",
    ),
}


class SendGridBackend:
    """Posts each batch with the official client and classifies the answer.

    The client sets no timeout of its own, so one is set explicitly: a stalled socket would
    otherwise hang the send for ever.
    """

    name = "sendgrid"

    def __init__(
        self,
        api_key: str,
        mail: CampaignMail,
        *,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ):
        import sendgrid

        # The HTTP client logs full payloads and the Authorization header at DEBUG level;
        # never let that reach a log, whatever the root logger is set to.
        logging.getLogger("python_http_client").setLevel(logging.WARNING)
        if not api_key:
            raise DeliveryError(
                "SENDGRID_API_KEY is not set", hint="Set it, or use --backend outbox."
            )
        self.mail = mail
        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.retry = retry
        self.sleep = sleep
        self.sg = sendgrid.SendGridAPIClient(api_key, host=self.host)
        self.sg.client.timeout = self.timeout

    # -- scheduling --------------------------------------------------------------------
    def create_batch_id(self) -> str:
        """POST /v3/mail/batch: the id under which a scheduled send can be cancelled."""
        resp = self._call(
            lambda: self.sg.client.mail.batch.post(timeout=self.timeout),
            "creating a SendGrid batch id for the scheduled send",
        )
        try:
            return json.loads(resp.body)["batch_id"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(
                "SendGrid answered the batch id request without a batch_id"
            ) from None

    def cancel_scheduled(self, sg_batch_id: str) -> None:
        """POST /v3/user/scheduled_sends {batch_id, status: cancel}."""
        self._call(
            lambda: self.sg.client.user.scheduled_sends.post(
                request_body={"batch_id": sg_batch_id, "status": "cancel"}, timeout=self.timeout
            ),
            "cancelling the scheduled send",
        )

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        from python_http_client.exceptions import HTTPError

        try:
            return fn()
        except HTTPError as exc:
            raise DeliveryError(
                f"SendGrid answered HTTP {exc.status_code} while {what}: "
                f"{sendgrid_errors(exc.body)}",
                status=exc.status_code,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(
                f"no answer from SendGrid at {self.host} while {what} ({_network_reason(exc)})"
            ) from None

    # -- sending -----------------------------------------------------------------------
    def send_batch(self, batch: Batch) -> BatchResult:
        from python_http_client.exceptions import HTTPError

        body = build_request(self.mail, batch)
        what = batch.describe()
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self.sg.client.mail.send.post(request_body=body, timeout=self.timeout)
            except HTTPError as exc:
                status = int(exc.status_code)
                detail = sendgrid_errors(exc.body)
                if status == 429 or 500 <= status < 600:
                    wait = self.retry.delay(attempt, exc.headers)
                    if attempt < self.retry.attempts and wait <= self.retry.max_wait:
                        self.sleep(wait)
                        continue
                    return BatchResult(
                        "failed",
                        status=status,
                        attempts=attempt,
                        error=f"SendGrid answered HTTP {status} to {what} {attempt} times "
                        f"(last: {detail or 'no detail'}); it was not accepted",
                    )
                template, hint = _REFUSALS.get(
                    status, (f"SendGrid refused {{what}} with HTTP {status}: " + "{detail}", None)
                )
                return BatchResult(
                    "failed",
                    status=status,
                    attempts=attempt,
                    stop=True,
                    error=template.format(what=what, detail=detail or "no detail"),
                    hint=hint,
                )
            except (OSError, http.client.HTTPException) as exc:
                if _unreachable(exc):
                    return BatchResult(
                        "failed",
                        attempts=attempt,
                        stop=True,
                        error=f"cannot reach SendGrid at {self.host} ({_network_reason(exc)}); "
                        f"{what} was not sent",
                        hint="Check SENDGRID_API_HOST and the network, then run the same command again.",
                    )
                return BatchResult(
                    "uncertain",
                    attempts=attempt,
                    error=f"no answer from SendGrid for {what} ({_network_reason(exc)}); "
                    "it may or may not have been accepted",
                )
            if resp.status_code == 202 or 200 <= resp.status_code < 300:
                headers = resp.headers
                mid = headers.get("X-Message-Id") if headers is not None else None
                return BatchResult(
                    "sent", status=resp.status_code, message_id=mid, attempts=attempt
                )
            return BatchResult(
                "uncertain",
                status=resp.status_code,
                attempts=attempt,
                error=f"SendGrid answered {what} with unexpected HTTP {resp.status_code}",
            )


def _unreachable(exc: BaseException) -> bool:
    """Connection refused or an unknown host: the request never left, so it was not sent."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _network_reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "unknown host"
    if isinstance(reason, ConnectionResetError | http.client.RemoteDisconnected):
        return "connection reset"
    return type(reason).__name__ if not str(reason) else str(reason)


# ---------------------------------------------------------------------------------------
# Outbox


def substitute(text: str, values: dict[str, str], pattern: re.Pattern | None = None) -> str:
    """Replace tokens exactly as SendGrid's substitutions would (longest token first)."""
    if not values:
        return text
    pattern = pattern or token_pattern(values)
    return pattern.sub(lambda m: values.get(m.group(0), m.group(0)), text)


def token_pattern(values: dict[str, str]) -> re.Pattern:
    return re.compile("|".join(re.escape(k) for k in sorted(values, key=len, reverse=True)))


class OutboxBackend:
    """Writes one RFC 5322 ``.eml`` per recipient under ``<dir>/<campaign-id>/``.

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
        msg["X-Equip-Campaign"] = self.mail.campaign_id
        msg["X-Equip-Segment"] = c.segment
        msg["X-Equip-Recipient"] = str(a.ledger_id)
        msg.set_content(substitute(c.text, values, pattern), subtype="plain", charset="utf-8")
        msg.add_alternative(substitute(c.html, values, pattern), subtype="html", charset="utf-8")
        try:
            return msg.as_bytes(policy=email.policy.SMTP)
        except (UnicodeEncodeError, ValueError):
            return msg.as_bytes(policy=email.policy.SMTPUTF8)


@dataclass
class MemoryBackend:
    """Keeps batches in a list: for library users' own tests (anymail's ``test`` backend)."""

    name: str = "memory"
    batches: list[Batch] = field(default_factory=list)

    def send_batch(self, batch: Batch) -> BatchResult:
        self.batches.append(batch)
        return BatchResult("sent")
