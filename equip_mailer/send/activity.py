"""Asking the way out what it accepted: evidence on request for uncertain batches.

Webhook events settle most uncertain recipients on their own (ledger_evidence.py), but a
manager about to ``--retry-uncertain`` can also ask directly. One small interface,
``Activity``, with one class per backend:

* ``SendGridActivity`` - the Email Activity API (``GET /v3/messages``, filtered by our
  ``send_id`` custom arg). It is a paid add-on: without it SendGrid answers 403 (or 404),
  which is ``ActivityUnavailable`` - the caller says so in one line and goes on with the
  evidence it has. Its answer names the recipient's address, not our ledger id, so it is
  matched against the batch's own rows.
* ``OutboxActivity`` - the outbox's ``.eml`` files: a whole file (it ends with its closing
  MIME boundary) whose Message-ID carries the batch's send id and the recipient's id was
  written by that batch.

``check_uncertain`` runs the right one for each uncertain batch and settles what it finds.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from equip_mailer.config import Settings
from equip_mailer.errors import DeliveryError
from equip_mailer.store import utcnow

from .ledger import Ledger
from .ledger_evidence import Proof
from .ledger_rows import Row

if TYPE_CHECKING:
    from .backends.sendgrid import RetryPolicy

MAX_MESSAGES = 1000  # the API's largest page, and our largest batch


class ActivityUnavailable(DeliveryError):
    """The account has no Email Activity API (403/404): not a failure, just less evidence."""


class Activity(Protocol):
    """What a backend can say about one batch it was given: which of its rows it accepted."""

    name: str  # the evidence source written to the ledger ("activity", "outbox")

    def evidence(self, send_id: str, rows: Sequence[Row]) -> list[Proof]: ...


# The API's status -> was it delivered? "not_delivered" (bounced or dropped) was still
# accepted: settled as dropped, never re-sent.
DELIVERY_STATUSES = {"processed": False, "delivered": False, "not_delivered": True}


class SendGridActivity:
    """The Email Activity API through the official client (same host, key and timeout as
    sending)."""

    name = "activity"

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        timeout=30.0,
        retry: RetryPolicy | None = None,
    ):
        from .backends.sendgrid import RetryPolicy, client

        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        # The API allows a few requests a minute: a 429 is waited out (its reset time is
        # under a minute away), or every batch after it would go unasked and be re-sent.
        self.retry = retry if retry is not None else RetryPolicy()
        self.sg = client(api_key, self.host, self.timeout)

    def messages(self, send_id: str) -> list[dict[str, Any]]:
        """GET /v3/messages?query=unique_args['send_id']="<id>"&limit=1000."""
        from .backends.sendgrid import call, json_answer

        what = "asking its Email Activity API"
        query = {"query": f"unique_args['send_id']=\"{send_id}\"", "limit": MAX_MESSAGES}
        try:
            resp = call(
                lambda: self.sg.client.messages.get(query_params=query, timeout=self.timeout),
                what,
                self.host,
                retry=self.retry,
            )
        except DeliveryError as exc:
            if exc.status in (403, 404):
                raise ActivityUnavailable(
                    f"SendGrid's Email Activity API is not available to this account or key "
                    f"(HTTP {exc.status}); it is a paid add-on, so only webhook events settle "
                    "uncertain recipients",
                    status=exc.status,
                ) from None
            raise
        found = json_answer(resp, what)
        messages = found.get("messages") if isinstance(found, dict) else None
        return [m for m in messages or [] if isinstance(m, dict)]

    def evidence(self, send_id: str, rows: Sequence[Row]) -> list[Proof]:
        by_address = {r.key: r.id for r in rows}
        proofs = []
        for m in self.messages(send_id):
            ledger_id = by_address.get(str(m.get("to_email") or "").strip().lower())
            status = str(m.get("status") or "")
            if ledger_id is None or status not in DELIVERY_STATUSES:
                continue
            proofs.append(
                Proof(
                    ledger_id,
                    f"{self.name}:{status}",
                    _iso_time(m.get("last_event_time")),
                    dropped=DELIVERY_STATUSES[status],
                )
            )
        return proofs


def _iso_time(value: object) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return utcnow()
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


class OutboxActivity:
    """The outbox's files: ``<folder>/<ledger id, 6 digits>.eml`` (backends/outbox.py), whose
    Message-ID ends ``.<send id>.<ledger id>@<domain>`` for the batch that wrote it.

    A file counts only if whole: a crash while it was written can leave it cut short under
    its own name (backends/outbox_files.py), and every outbox message is multipart, so a
    whole one ends with its closing boundary. One that does not is written again, whole,
    under the same name: for the outbox, doubt costs nothing but the rewrite."""

    name = "outbox"

    def __init__(self, folder: Path):
        self.folder = Path(folder)  # the campaign's outbox folder
        self.parser = email.parser.BytesHeaderParser(policy=email.policy.default)

    def evidence(self, send_id: str, rows: Sequence[Row]) -> list[Proof]:
        proofs = []
        for r in rows:
            path = self.folder / f"{r.id:06d}.eml"
            try:
                with path.open("rb") as fh:
                    headers = self.parser.parse(fh)
                    whole = _ends_whole(fh, headers.get_boundary())
                written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
            except OSError:
                continue
            if whole and f".{send_id}.{r.id}@" in str(headers.get("Message-ID", "")):
                proofs.append(Proof(r.id, f"{self.name}:written", written.replace(tzinfo=None)))
        return proofs


def _ends_whole(fh: BinaryIO, boundary: str | None) -> bool:
    """Whether the file ends with the closing delimiter of its multipart body."""
    if not boundary:
        return False
    closing = f"--{boundary}--".encode("ascii", "replace")
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - len(closing) - 4))
    return fh.read().rstrip(b"\r\n").endswith(closing)


def activity_sources(settings: Settings, outbox_folder: Path) -> dict[str, Activity]:
    """Who to ask about an uncertain batch, by the backend that sent it (batches.backend):
    the campaign's outbox folder always, SendGrid when there is a key."""
    sources: dict[str, Activity] = {"outbox": OutboxActivity(outbox_folder)}
    if settings.sendgrid_api_key:
        sources["sendgrid"] = SendGridActivity(
            settings.sendgrid_api_key,
            host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout,
        )
    return sources


@dataclass
class Check:
    """What asking found: recipients settled per source, batches asked, one-line notes."""

    settled: Counter[str] = field(default_factory=Counter)
    asked: int = 0
    notes: list[str] = field(default_factory=list)


def check_uncertain(ledger: Ledger, sources: Mapping[str, Activity]) -> Check:
    """Ask each uncertain batch's backend (``sources`` by backend name) what it accepted, and
    settle that. An unavailable API is one note and no more asking of it; any other error
    is a note too: the retry goes on with the evidence it has."""
    out = Check()
    unavailable: set[str] = set()
    proofs: list[Proof] = []
    for b in ledger.uncertain_batches():
        source = sources.get(b.backend)
        if not b.still or source is None or b.backend in unavailable:
            continue
        try:
            proofs += source.evidence(b.send_id, ledger.batch_rows(b.id))
            out.asked += 1
        except ActivityUnavailable as exc:
            unavailable.add(b.backend)
            out.notes.append(exc.message)
        except DeliveryError as exc:
            unavailable.add(b.backend)
            out.notes.append(f"{exc.message}; going on with the evidence already here")
    if proofs:
        out.settled = ledger.settle(proofs)
    return out
