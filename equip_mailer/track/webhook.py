"""SendGrid's events, once a post is verified: normalise, deduplicate, store.

``webhook_verify`` decides whether a post is SendGrid's; ``webhook_route`` is the HTTP
route. Everything here is a plain function over a connection, so a test or a replay tool
can store events without a server:

* :func:`normalise` - one SendGrid event -> one row of the ``events`` table, in the shared
  vocabulary (unknown event names become ``unknown``; the raw JSON is always kept). Our
  custom_args (``campaign_id``, ``segment``, ``recipient`` = ledger id, ``send_id``) arrive
  flattened into the event and join it to our send, so SendGrid's ids are never trusted
  for that.
* :func:`dedupe_key` - SendGrid delivers at least once and retries whole batches, and
  ``sg_event_id`` is not stable across retries (sendgrid-nodejs#1435), so the key is built
  from what the event *is*: message, recipient, event type, timestamp and URL.
* :func:`store_events` - one transaction: insert-or-ignore on that key, then suppressions
  for bounces, drops, spam reports and unsubscribes (:func:`suppression_reason` says which
  exactly; an event about someone ``forget`` erased is kept only as a count and writes their
  address nowhere), then the machine-click pass, then uncertain recipients the events name are
  settled (send/ledger_evidence.py: an event proves SendGrid accepted them).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.people.records import erased_among, erased_event_key, erasure_key
from equip_mailer.send.ledger_evidence import settle_recipients
from equip_mailer.store import add_suppression, events, insert_ignore, links, utcnow

from . import machines
from .privacy import ip_hash
from .webhook_verify import SendGridEvent

# SendGrid event name -> our vocabulary (store.EVENT_TYPES); anything else is "unknown".
EVENT_NAMES = {
    "processed": "processed",
    "delivered": "delivered",
    "deferred": "deferred",
    "bounce": "bounce",  # type "bounce" and type "blocked" alike; the type goes to reason
    "blocked": "bounce",  # older/alternative spelling of a blocked bounce
    "dropped": "dropped",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
    "group_resubscribe": "group_resubscribe",
    "open": "open",
    "click": "click",
}
# Our event -> suppression reason. Every later send excludes these addresses, for good, so
# only events that say something about the *address* qualify (see suppression_reason).
SUPPRESS = {
    "bounce": "bounce",
    "dropped": "dropped",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
# SendGrid's drop reasons that are about the address. Others ("Recipient List over Package
# Quota", "Invalid SMTPAPI header", ...) are about our account or request and would
# otherwise suppress a whole send's worth of people.
ADDRESS_DROP_REASONS = ("bounced address", "unsubscribed address", "spam reporting address")
ADDRESS_DROP_EXACT = ("invalid",)  # "Invalid" alone is the address; "Invalid SMTPAPI header" is not
MAX_LEDGER_ID = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL

EventRow = dict[str, Any]  # one row of store.events, every column present


RAW_DROPPED = ("ip", "email")  # never stored in events.raw


def message_stem(sg_message_id: str | None) -> str:
    """``14c5d75ce93.dfd.64b469.filter0001.16648...`` -> ``14c5d75ce93.dfd.64b469``.

    The part before ``.filter`` is the X-Message-Id of the send request; the suffix differs
    between events of the same message (processed vs delivered), so it can't be in the key.
    """
    stem = (sg_message_id or "").split(".filter", 1)[0]
    return stem.split(".recvd-", 1)[0]


def _text(value: object) -> str:
    # NUL is refused by PostgreSQL text columns: one odd event must not fail its whole batch
    return "" if value is None else str(value).replace("\x00", "")


def dedupe_key(event: SendGridEvent) -> str:
    """sha256 over message, recipient, event type, timestamp and URL (never sg_event_id)."""
    return _key(event, _text(event.get("event")).lower(), _text(event.get("url")))


def _key(event: SendGridEvent, name: str, url: str) -> str:
    """``dedupe_key`` with the event's name (lower-cased) and URL already read as text."""
    parts = [
        message_stem(_text(event.get("sg_message_id")) or _text(event.get("smtp-id"))),
        _text(event.get("recipient")),
        _text(event.get("email")).strip().lower(),
        name,
        _text(event.get("type")) if name == "bounce" else "",  # blocked vs bounce
        _text(event.get("timestamp")),
        url,
    ]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def raw_json(event: SendGridEvent) -> str:
    """The raw event as stored: keys sorted, compact, UTF-8 as is, minus the reader's IP
    (only its keyed hash is kept, ip_hash) and address (the ledger row has it; erasure and
    retention then have one place to look). orjson writes it in a fraction of the time
    ``json`` takes (this ran once per event, 50,000 in a benchmark's run); what orjson
    refuses (an integer past 64 bits) the standard module writes in the same layout."""
    kept = {k: v for k, v in event.items() if k not in RAW_DROPPED}
    try:
        return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    except orjson.JSONEncodeError:
        return json.dumps(kept, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _event_time(value: Any, fallback: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(int(value), dt.UTC).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return fallback


def _ledger_id(value: object) -> int | None:
    text = _text(value).strip()
    # another app's custom_args may carry any number: only our ledger's range joins
    return int(text) if text.isdigit() and len(text) < 18 and int(text) <= MAX_LEDGER_ID else None


def _reason(name: str, event: SendGridEvent) -> str | None:
    if name == "bounce":
        kind = _text(event.get("type")) or (
            "blocked" if _text(event.get("event")) == "blocked" else "bounce"
        )
        detail = " ".join(x for x in (_text(event.get("status")), _text(event.get("reason"))) if x)
        return f"{kind}: {detail}"[:2000] if detail else kind
    if name == "dropped":
        return _text(event.get("reason"))[:2000] or None
    if name == "deferred":
        return _text(event.get("response") or event.get("reason"))[:2000] or None
    if name in ("group_unsubscribe", "group_resubscribe"):
        return (
            f"asm_group_id={_text(event.get('asm_group_id'))}"
            if event.get("asm_group_id")
            else None
        )
    return None


def normalise(
    event: SendGridEvent, *, ip_key: bytes, received_at: dt.datetime | None = None
) -> EventRow:
    """One SendGrid event -> one ``events`` row (all columns present, so rows insert together)."""
    received_at = received_at or utcnow()
    raw_name = _text(event.get("event")).lower()
    name = EVENT_NAMES.get(raw_name, "unknown")
    user_agent = _text(event.get("useragent"))[:1000] or None
    reason = machines.user_agent_reason(user_agent) if name == "click" else None
    url_text = _text(event.get("url"))
    url = url_text[:4000] or None
    return {
        "dedupe_key": _key(event, raw_name, url_text),
        "event": name,
        "at": _event_time(event.get("timestamp"), received_at),
        "source": "webhook",
        "campaign_id": _text(event.get("campaign_id"))[:100] or None,
        "ledger_id": _ledger_id(event.get("recipient")),
        "send_id": _text(event.get("send_id"))[:64] or None,
        "segment": _text(event.get("segment"))[:100] or None,
        "link_id": None,
        "url": url,
        "user_agent": user_agent,
        "ip_hash": ip_hash(ip_key, _text(event.get("ip")) or None),
        "method": None,
        "machine": reason is not None,
        "machine_reason": reason,
        "reason": _reason(name, event),
        "sg_message_id": _text(event.get("sg_message_id"))[:200] or None,
        "sg_event_id": _text(event.get("sg_event_id"))[:200] or None,
        "raw": raw_json(event),
        "received_at": received_at,
    }


def suppression_reason(event: SendGridEvent, name: str) -> str | None:
    """The suppression an event causes, or None.

    A *blocked* bounce is stored as a bounce but suppresses no one: it means the receiving
    server refused our IP or content this time (SendGrid keeps it on its separate Blocks
    list and does not suppress it either); one blocked send to nhs.net must not remove every
    NHS address for good.
    """
    reason = SUPPRESS.get(name)
    if name == "bounce" and (
        _text(event.get("type")).lower() == "blocked"
        or _text(event.get("event")).lower() == "blocked"
    ):
        return None
    if name == "dropped":
        drop = _text(event.get("reason")).strip().lower()
        if not (drop.startswith(ADDRESS_DROP_REASONS) or drop in ADDRESS_DROP_EXACT):
            return None
    return reason


def _link_sendgrid_clicks(conn: Connection, keys: list[str]) -> None:
    """With SendGrid's click tracking the event names the URL, not our link: find it in the
    campaign's registry so these clicks count per course and session like our own.
    (An UPDATE after the insert, so the transaction still writes before it reads.)"""
    if not keys:
        return
    match = (
        sa.select(links.c.id)
        .where(links.c.campaign_id == events.c.campaign_id, links.c.url == events.c.url)
        .limit(1)
        .scalar_subquery()
    )
    for start in range(0, len(keys), 500):
        conn.execute(
            events.update()
            .where(
                events.c.dedupe_key.in_(keys[start : start + 500]),
                events.c.link_id.is_(None),
                events.c.url.is_not(None),
            )
            .values(link_id=match)
        )


def _scrub_erased(
    conn: Connection,
    items: list[SendGridEvent],
    rows: list[EventRow],
    erased: set[str],
    secret: bytes,
) -> int:
    """Events about someone ``forget`` erased (SendGrid retries a post for hours, and a spam
    complaint can come days later) are kept as counts, as forget leaves their earlier ones:
    no raw payload, user agent or IP hash, the address cut out of a bounce's reason, and
    the keyed dedupe key (``erased_event_key``), under which a retry of an event stored
    before is found and removed again. Returns how many such retries were removed.
    UPDATEs after the insert, so the transaction still writes before it reads."""
    derived = erasure_key(secret)
    repeats = 0
    done: set[str] = set()
    for event, row in zip(items, rows, strict=True):
        address = _text(event.get("email")).strip().lower()
        if address not in erased or row["dedupe_key"] in done:
            continue
        done.add(row["dedupe_key"])
        keyed = erased_event_key(secret, row["dedupe_key"], key=derived)
        if conn.execute(sa.select(events.c.id).where(events.c.dedupe_key == keyed)).first():
            repeats += conn.execute(
                events.delete().where(events.c.dedupe_key == row["dedupe_key"])
            ).rowcount
            continue
        reason = row["reason"]
        if reason:
            reason = re.sub(re.escape(address), "(erased)", reason, flags=re.IGNORECASE)
        conn.execute(
            events.update()
            .where(events.c.dedupe_key == row["dedupe_key"])
            .values(dedupe_key=keyed, raw=None, user_agent=None, ip_hash=None, reason=reason)
        )
    return repeats


@dataclass(frozen=True)
class StoreResult:
    received: int
    stored: int
    duplicates: int
    suppressed: int  # addresses newly suppressed
    machine: int  # clicks newly flagged by the timing pass
    settled: int = 0  # uncertain recipients these events proved accepted

    def as_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "machine": self.machine,
            "settled": self.settled,
        }


def store_events(
    conn: Connection,
    items: list[SendGridEvent],
    *,
    ip_key: bytes,
    received_at: dt.datetime | None = None,
) -> StoreResult:
    """Insert the batch once, however often it is posted; run inside one transaction.

    The insert comes first so that on SQLite the transaction takes the write lock before
    it reads anything (a read-then-write transaction can fail with SQLITE_BUSY instead
    of waiting). A batch repeating an event is fine: the key makes it one row.
    """
    received_at = received_at or utcnow()
    rows = [normalise(e, ip_key=ip_key, received_at=received_at) for e in items]
    unique = list({r["dedupe_key"]: r for r in rows}.values())
    stored = insert_ignore(conn, events, unique, ["dedupe_key"])
    if stored:
        _link_sendgrid_clicks(conn, [r["dedupe_key"] for r in unique if r["event"] == "click"])
    erased = erased_among(conn, ip_key, (_text(e.get("email")) for e in items))
    if erased:
        stored -= _scrub_erased(conn, items, rows, erased, ip_key)
    suppressed = 0
    for event, row in zip(items, rows, strict=True):
        reason = suppression_reason(event, row["event"])
        email = _text(event.get("email")).strip()
        if email.lower() in erased:
            continue  # suppressed already, as the keyed hash forget left
        if reason and "@" in email and len(email) <= 320:
            suppressed += add_suppression(
                conn,
                email,
                reason,
                source=f"sendgrid:{_text(event.get('event'))}",
                campaign_id=row["campaign_id"],
            )
    # a late delivered event can reveal that an earlier click was a gateway scan
    clicked = {
        (r["campaign_id"], r["ledger_id"]) for r in rows if r["event"] in ("click", "delivered")
    }
    flagged = machines.reclassify(conn, clicked) if clicked else 0
    named = [r["ledger_id"] for r in rows if r["send_id"] and r["ledger_id"] is not None]
    settled = settle_recipients(conn, named) if stored and named else {}
    return StoreResult(
        received=len(items),
        stored=stored,
        duplicates=len(items) - stored,
        suppressed=suppressed,
        machine=flagged,
        settled=sum(settled.values()),
    )
