"""Single transactional messages, each sent exactly once: the campaign ledger's rules for
mail that is not a newsletter.

A confirmation, a waiting-list promotion, a cancellation, a double opt-in link or a team
sign-in link is one message to one person, caused by a change in the store. ``enqueue``
writes it in the *same transaction* as that change (so a committed registration always has
its confirmation and a rolled-back one never does), under an idempotency key (so a
double-clicked form or a retried request enqueues one message, not two).

``NoticeSender`` then moves each row through the same states as a campaign batch:
``pending`` -> ``sending`` (claimed and committed *before* the request) -> ``sent`` /
``failed`` / ``uncertain``. A passing failure goes back to ``pending`` with a backoff; a
row left ``sending`` by a process that died is settled by ``recover``: the outbox can tell
(the ``.eml`` is on disk or it is not, since it is written under a temporary name and
renamed), SendGrid cannot, so such a row becomes ``uncertain`` and is not re-sent blindly.
The transports themselves are in ``notice_transports``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.config import mask_email
from equip_mailer.store import insert_ignore, notices, utcnow

from .batch import BatchResult
from .lock_owner import lock_owner_id, owner_alive

log = logging.getLogger("equip_mailer.send.notices")

MAX_ATTEMPTS = 5
RETRY_DELAYS = (  # after the 1st, 2nd, ... passing failure
    dt.timedelta(minutes=1),
    dt.timedelta(minutes=5),
    dt.timedelta(minutes=30),
    dt.timedelta(hours=2),
)
STALE_CLAIM = dt.timedelta(minutes=15)  # a claim older than this, whoever holds it, is dead


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar; method=PUBLISH; charset=utf-8"
    data: bytes


@dataclass(frozen=True)
class Notice:
    """One message to one person. ``key`` makes it idempotent: enqueuing the same key twice
    stores (and sends) one message. Choose keys that name the cause, e.g.
    ``signup-confirm:<registration id>`` or ``team-sign-in:<token id>``."""

    key: str
    kind: str  # "signup-confirmation", "team-sign-in", ...: a word for logs and reports
    to_email: str
    subject: str
    text: str
    from_email: str
    from_name: str | None = None
    to_name: str | None = None
    reply_to: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    campaign_id: str | None = None

    def __post_init__(self) -> None:
        for name in ("subject", "to_name", "from_name", "to_email", "from_email", "reply_to"):
            value = getattr(self, name)
            if value and ("\r" in value or "\n" in value):
                raise ValueError(f"notice {self.key}: {name} must be one line")
        if not self.key or len(self.key) > 200:
            raise ValueError("a notice key must be 1 to 200 characters")


@dataclass(frozen=True)
class Outgoing:
    """A stored notice as a transport gets it: the message and its row id (which goes out in
    SendGrid's custom_args and names the outbox file, never the address)."""

    id: int
    notice: Notice


class NoticeTransport(Protocol):
    """A way out for single messages: the outbox or SendGrid (``notice_transports``)."""

    name: str

    def send_notice(self, outgoing: Outgoing) -> BatchResult: ...

    def delivered(self, outgoing: Outgoing) -> bool | None:
        """Whether a message whose sender died was handed over: True, False, or None when
        this transport cannot know (then the row becomes uncertain)."""
        ...


_ID_BY_KEY = sa.select(notices.c.id).where(notices.c.key == sa.bindparam("key"))


def enqueue(conn: Connection, notice: Notice) -> int | None:
    """Store ``notice`` for sending, in the caller's transaction. Returns its row id, or
    None when a notice with the same key already exists (nothing is stored twice)."""
    now = utcnow()
    attachments = [
        {
            "filename": a.filename,
            "content_type": a.content_type,
            "data": base64.b64encode(a.data).decode("ascii"),
        }
        for a in notice.attachments
    ]
    inserted = insert_ignore(
        conn,
        notices,
        [
            {
                "key": notice.key,
                "kind": notice.kind,
                "campaign_id": notice.campaign_id,
                "email": notice.to_email,
                "email_key": notice.to_email.strip().lower(),
                "name": notice.to_name,
                "from_email": notice.from_email,
                "from_name": notice.from_name,
                "reply_to": notice.reply_to,
                "subject": notice.subject,
                "text": notice.text,
                "html": notice.html,
                "attachments": json.dumps(attachments) if attachments else None,
                "state": "pending",
                "attempts": 0,
                "created_at": now,
            }
        ],
        ["key"],
    )
    if not inserted:
        return None
    return conn.execute(_ID_BY_KEY, {"key": notice.key}).scalar_one()


def requeue(conn: Connection, ids: Iterable[int]) -> int:
    """Put uncertain or failed notices back to pending (an operator's decision: an uncertain
    one may then arrive twice). Returns how many were requeued."""
    ids = list(ids)
    if not ids:
        return 0
    result = conn.execute(
        notices.update()
        .where(
            notices.c.id.in_(ids),
            notices.c.state.in_(("uncertain", "failed")),
            notices.c.email != "",  # emptied by retention: nothing left to send
        )
        .values(state="pending", not_before=None, error=None)
    )
    return result.rowcount


def _from_row(row: sa.Row) -> Outgoing:
    attachments = tuple(
        Attachment(a["filename"], a["content_type"], base64.b64decode(a["data"]))
        for a in json.loads(row.attachments or "[]")
    )
    return Outgoing(
        id=row.id,
        notice=Notice(
            key=row.key,
            kind=row.kind,
            to_email=row.email,
            to_name=row.name,
            subject=row.subject,
            text=row.text,
            html=row.html,
            from_email=row.from_email,
            from_name=row.from_name,
            reply_to=row.reply_to,
            attachments=attachments,
            campaign_id=row.campaign_id,
        ),
    )


@dataclass
class NoticeCounts:
    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    uncertain: int = 0
    errors: list[str] = field(default_factory=list)  # one sentence each, addresses masked


class NoticeSender:
    """Sends pending notices through one transport, one at a time, recording each answer.

    Safe to run in several processes at once (the service's workers, a command): a row is
    claimed by a conditional UPDATE, so only one of them sends it.
    """

    def __init__(
        self,
        engine: Engine,
        transport: NoticeTransport,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
    ):
        self.engine = engine
        self.transport = transport
        self.clock = clock
        self.owner = lock_owner_id()

    def deliver_pending(self, limit: int | None = None) -> NoticeCounts:
        """Send every notice that is due (oldest first), at most ``limit``."""
        counts = NoticeCounts()
        done = 0
        while limit is None or done < limit:
            outgoing = self._claim_next()
            if outgoing is None:
                break
            done += 1
            result = self.transport.send_notice(outgoing)
            self._record(outgoing, result, counts)
        return counts

    def recover(self) -> int:
        """Settle rows left ``sending`` by a process that is gone; returns how many."""
        now = self.clock()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(notices).where(notices.c.state == "sending").order_by(notices.c.id)
            ).all()
        settled = 0
        for row in rows:
            stale = row.claimed_at is None or now - row.claimed_at > STALE_CLAIM
            if not stale and row.claimed_by and owner_alive(row.claimed_by, row.claimed_at):
                continue  # still being sent by a live process
            outgoing = _from_row(row)
            handed_over = self.transport.delivered(outgoing)
            if handed_over is True:
                values = {"state": "sent", "sent_at": now, "error": None}
            elif handed_over is False:
                values = {"state": "pending", "error": None}
            else:
                values = {
                    "state": "uncertain",
                    "error": "the sender stopped while this message was being sent; "
                    "it may or may not have been accepted",
                }
            with self.engine.begin() as conn:
                conn.execute(
                    notices.update()
                    .where(notices.c.id == row.id, notices.c.state == "sending")
                    .values(**values)
                )
            settled += 1
        return settled

    def _claim_next(self) -> Outgoing | None:
        now = self.clock()
        due = sa.or_(notices.c.not_before.is_(None), notices.c.not_before <= now)
        with self.engine.begin() as conn:
            candidates = conn.execute(
                sa.select(notices.c.id)
                .where(notices.c.state == "pending", due)
                .order_by(notices.c.id)
                .limit(20)
            ).scalars()
            for notice_id in list(candidates):
                claimed = conn.execute(
                    notices.update()
                    .where(notices.c.id == notice_id, notices.c.state == "pending")
                    .values(
                        state="sending",
                        attempts=notices.c.attempts + 1,
                        claimed_by=self.owner,
                        claimed_at=now,
                        backend=self.transport.name,
                    )
                ).rowcount
                if claimed:
                    row = conn.execute(sa.select(notices).where(notices.c.id == notice_id)).one()
                    return _from_row(row)
        return None

    def _record(self, outgoing: Outgoing, result: BatchResult, counts: NoticeCounts) -> None:
        now = self.clock()
        values: dict[str, object]
        if result.state == "sent":
            values = {"state": "sent", "sent_at": now, "message_id": result.message_id}
            values["error"] = None
            counts.sent += 1
        elif result.state == "uncertain":
            values = {"state": "uncertain", "error": result.error}
            counts.uncertain += 1
        else:
            with self.engine.connect() as conn:
                attempts = conn.execute(
                    sa.select(notices.c.attempts).where(notices.c.id == outgoing.id)
                ).scalar_one()
            final = attempts >= MAX_ATTEMPTS or result.status == 400
            if final:
                values = {"state": "failed", "error": result.error}
                counts.failed += 1
            else:
                delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
                values = {"state": "pending", "not_before": now + delay, "error": result.error}
                counts.retry_later += 1
        if result.state != "sent" and result.error:
            counts.errors.append(result.error)
            log.warning(
                "notice %s (%s to %s): %s",
                outgoing.id,
                outgoing.notice.kind,
                mask_email(outgoing.notice.to_email),
                result.error,
            )
        with self.engine.begin() as conn:
            conn.execute(
                notices.update()
                .where(notices.c.id == outgoing.id, notices.c.state == "sending")
                .values(**values)
            )
