"""What a backend is given and what it answers: the one interface every way out shares.

The send loop (dispatch.py) hands a backend one ``Batch`` at a time: up to 1,000 recipients
of ONE segment, sharing that segment's rendered content, each with their own substitution
values. The backend answers with a ``BatchResult`` whose ``state`` the ledger records:

* ``sent``      - accepted (SendGrid 202, or the .eml files are on disk);
* ``failed``    - definitely not accepted (4xx refusal, 429/5xx after every retry, server
                  unreachable), so a later run may send these recipients again;
* ``uncertain`` - we cannot know (timeout, connection reset after the request went out):
                  SendGrid may have accepted it, so it is never re-sent blindly.

``stop`` on a result means the run must end now (bad key, refused payload): retrying the
next batch would fail the same way. The backends themselves live in ``send/backends/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from equip_mailer.config import mask_email
from equip_mailer.errors import DeliveryError

MAX_PER_REQUEST = 1000  # SendGrid: personalizations (and recipients) per request
MAX_SUBSTITUTION_BYTES = 10_000  # SendGrid: per personalization
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"

BatchState = Literal["sent", "failed", "uncertain"]


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
        return (
            f"batch {self.send_id} (segment {self.content.segment}, "
            f"{len(self.addressees)} recipients)"
        )


@dataclass(frozen=True)
class BatchResult:
    state: BatchState
    status: int | None = None  # last HTTP status, when there was one
    message_id: str | None = None  # SendGrid's X-Message-Id
    error: str | None = None  # one plain sentence, addresses masked
    attempts: int = 1
    stop: bool = False  # end the run now (no point trying the next batch)
    hint: str | None = None


class Backend(Protocol):
    """A way for mail to leave: one class per backend, each answering every batch. A
    backend whose ``send_batch`` may run in several threads at once says how many with a
    ``max_in_flight`` attribute (send/dispatch.py; without it, one at a time)."""

    name: str

    def send_batch(self, batch: Batch) -> BatchResult: ...


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
            f"the personal values for recipient {a.ledger_id} ({mask_email(a.email)}) in "
            f"segment {batch.content.segment} take {size:,} bytes; "
            f"SendGrid allows {MAX_SUBSTITUTION_BYTES:,}",
            hint="Shorten that recipient's name or practice in the list, or the campaign's links.",
        )
