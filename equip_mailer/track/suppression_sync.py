"""SendGrid's own suppression lists, copied into ours: suppressions that do not depend on the
webhook being up.

The Event Webhook suppresses a reader the moment SendGrid reports a bounce, a spam report or
an unsubscribe, but only while the service is up and reachable: a reader who bounced while
it was down would be mailed again by the next campaign. SendGrid keeps the same facts in
its Suppressions API (``tsg_suppressions_v3.json``), so ``equip-mailer suppressions sync``,
and every real send first, pulls what was added since the last sync.

One small interface, one class per backend: ``SendGridSuppressions`` pages through a list
(``GET /v3/suppression/<list>?start_time=&limit=&offset=``). The outbox has no such lists.

What suppresses whom follows the webhook's rules (track/webhook.py): bounces, invalid
addresses, spam reports and global unsubscribes suppress the address for good. *Blocks* are
fetched and counted but suppress nobody: a block is the receiving server refusing our IP or
content that time (SendGrid does not suppress them either), and one block at nhs.net must
not remove every NHS address.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from equip_mailer.errors import DeliveryError
from equip_mailer.people.records import erased_among
from equip_mailer.store import add_suppression, meta, utcnow

if TYPE_CHECKING:
    from equip_mailer.send.backends.sendgrid import RetryPolicy

# SendGrid's list -> our suppression reason (None: counted, never suppressed); in this order
LISTS: dict[str, str | None] = {
    "bounces": "bounce",
    "invalid_emails": "invalid",
    "spam_reports": "spamreport",
    "unsubscribes": "unsubscribe",
    "blocks": None,
}
LABELS = {
    "bounces": "bounces",
    "invalid_emails": "invalid addresses",
    "spam_reports": "spam reports",
    "unsubscribes": "unsubscribes",
    "blocks": "blocks",
}
PAGE = 500  # entries per request (the API's largest page)
OVERLAP = 300  # seconds before the last sync to ask from again: clocks and late writes
SYNCED_KEY = "suppressions_synced_at"  # meta: unix seconds of the last complete sync


class Suppressions(Protocol):
    """Where suppressions come from: entries of one list created at or after ``since``."""

    def entries(self, kind: str, since: int | None) -> Iterator[dict[str, Any]]: ...


class SendGridSuppressions:
    """The Suppressions API through the official client (same host, key and timeout as
    sending). A key without the Suppressions read permission answers 403; a rate limit
    (429) or a passing server error is waited out as for Mail Send (``retry``), since
    these lists are rate-limited per minute and a long one takes many pages."""

    def __init__(
        self,
        api_key: str,
        *,
        host: str = "https://api.sendgrid.com",
        timeout=30.0,
        retry: RetryPolicy | None = None,
    ):
        from equip_mailer.send.backends.sendgrid import RetryPolicy, client

        self.host = host.rstrip("/")
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.sg = client(api_key, self.host, self.timeout)

    def entries(self, kind: str, since: int | None) -> Iterator[dict[str, Any]]:
        from equip_mailer.send.backends.sendgrid import call, json_answer

        what = f"being asked for its {LABELS[kind]}"
        offset = 0
        while True:
            params: dict[str, Any] = {"limit": PAGE, "offset": offset}
            if since is not None:
                params["start_time"] = since
            try:
                get = functools.partial(
                    self.sg.client.suppression._(kind).get,
                    query_params=params,
                    request_headers={"Accept": "application/json"},
                    timeout=self.timeout,
                )
                resp = call(get, what, self.host, retry=self.retry)
            except DeliveryError as exc:
                if exc.status == 401:  # the key itself is unknown or revoked
                    exc.hint = "Check SENDGRID_API_KEY, then run the same command again."
                elif exc.status == 403:
                    exc.hint = "Give the API key read access to Suppressions in SendGrid."
                raise
            page = json_answer(resp, what)
            if not isinstance(page, list):
                raise DeliveryError(f"SendGrid's {LABELS[kind]} list was not a list")
            yield from (e for e in page if isinstance(e, dict))
            if len(page) < PAGE:
                return
            offset += PAGE


@dataclass
class SyncReport:
    since: dt.datetime | None  # None: the first sync (everything SendGrid holds)
    fetched: dict[str, int] = field(default_factory=dict)  # per list
    new: dict[str, int] = field(default_factory=dict)  # addresses newly suppressed, per list

    @property
    def newly_suppressed(self) -> int:
        return sum(self.new.values())

    def summary(self) -> str:
        when = f"since {self.since:%Y-%m-%d %H:%M} UTC" if self.since else "all (first sync)"
        parts = []
        for kind, reason in LISTS.items():
            n = self.fetched.get(kind, 0)
            if reason is None:
                parts.append(f"{LABELS[kind]} {n:,} (never suppress: a block is about one send)")
            else:
                parts.append(f"{LABELS[kind]} {n:,} ({self.new.get(kind, 0):,} new)")
        return (
            f"SendGrid's suppression lists, {when}: " + "; ".join(parts) + f". "
            f"{self.newly_suppressed:,} address(es) newly suppressed."
        )


def last_synced(engine: Engine) -> int | None:
    with engine.connect() as conn:
        value = conn.execute(sa.select(meta.c.value).where(meta.c.key == SYNCED_KEY)).scalar()
    return int(value) if value else None


def sync_suppressions(
    engine: Engine, source: Suppressions, secret: bytes | None = None
) -> SyncReport:
    """Copy every list's entries since the last complete sync into our suppressions (one
    transaction per list; the sync time is recorded only when every list was read).

    With the link ``secret``, an address ``forget`` erased is left out: it is suppressed
    already as its keyed hash, and SendGrid's lists still name it until SendGrid's own
    erasure job has run."""
    started = int(utcnow().replace(tzinfo=dt.UTC).timestamp())
    last = last_synced(engine)
    since = None if last is None else max(0, last - OVERLAP)
    report = SyncReport(since=None if since is None else dt.datetime.fromtimestamp(since, dt.UTC))
    for kind, reason in LISTS.items():
        entries = list(source.entries(kind, since))
        report.fetched[kind] = len(entries)
        if reason is None:
            continue
        new = 0
        with engine.begin() as conn:
            emails = [str(e.get("email") or "").strip() for e in entries]
            erased = erased_among(conn, secret, emails) if secret else set()
            for email in emails:
                if email.lower() in erased:
                    continue
                if "@" in email and len(email) <= 320:
                    new += add_suppression(conn, email, reason, source=f"sendgrid-api:{kind}")
        report.new[kind] = new
    with engine.begin() as conn:
        done = conn.execute(
            meta.update().where(meta.c.key == SYNCED_KEY).values(value=str(started))
        ).rowcount
        if not done:
            conn.execute(meta.insert().values(key=SYNCED_KEY, value=str(started)))
    return report
