"""Which clicks were probably made by a machine: mail scanners, link previewers, scripts.

Corporate mail gateways (Microsoft Safe Links/Defender, Mimecast, Proofpoint, ...) fetch
every link of an incoming message before a person sees it, and chat apps fetch links to draw
a preview. Counted as clicks they inflate click-through by 20-40 % (listmonk#2400), so every
click is *flagged*, never deleted: reports can then show human and raw figures side by side,
and a wrong guess here costs a footnote, not data.

Signals, each giving the ``machine_reason`` stored with the event:

* ``ua:<name>`` - the user agent matches the table below (or is empty: ``ua:empty``);
* ``head`` - a HEAD request: browsers never send one for a link a person clicked;
* ``after-delivery`` - the click came within ``DELIVERY_WINDOW`` seconds of the message's
  delivered event (or, without one, of its send time): gateways scan on arrival;
* ``burst`` - one recipient "clicked" ``BURST_LINKS`` or more distinct links of the same
  email within ``BURST_SECONDS``: people don't, scanners following every link do.

The first two need only the request; the last two need the recipient's other events, which
:func:`flag_clicks` takes as plain lists. ``reclassify`` runs them against the store: the
tracker calls it for the clicking recipient right after each insert, the webhook for every
recipient with a click in the batch, and a report may call it for a whole campaign before
counting (a delivered event can arrive after the scanner's click, so a late pass sees
more). Flags are only ever added, never removed.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import batches, events, ledger

DELIVERY_WINDOW = 10.0  # seconds after delivery in which a "click" is a gateway scan
BURST_LINKS = 3  # distinct links ...
BURST_SECONDS = 2.0  # ... within this many seconds is a scanner following every link

# (name, pattern) - matched case-insensitively anywhere in the User-Agent; first match wins,
# so specific products come before the generic words at the end.
USER_AGENT_PATTERNS: tuple[tuple[str, str], ...] = (
    # Microsoft: Safe Links / Defender detonation, Office link pre-fetch, Teams/Skype previews
    ("microsoft-safelinks", r"safelinks|safe links|microsoft-urlanalyzer|defender"),
    (
        "microsoft-office",
        r"microsoft office|ms-office|msoffice|microsoft outlook|"
        r"microsoft-webdav|microsoft url control",
    ),
    ("microsoft-preview", r"skypeuripreview|microsoftpreview|teams.*preview|bingpreview"),
    ("mimecast", r"mimecast"),
    ("proofpoint", r"proofpoint|pfpt|urldefense"),
    ("barracuda", r"barracuda"),
    ("cisco-ironport", r"ironport|cisco"),
    ("symantec", r"symantec|messagelabs|broadcom"),
    ("forcepoint", r"forcepoint|websense"),
    ("sophos", r"sophos"),
    ("trend-micro", r"trend ?micro|tmufe"),
    ("fortinet", r"fortinet|fortimail|fortiguard"),
    ("mcafee", r"mcafee|trellix|fireeye"),
    ("checkpoint", r"check ?point"),
    (
        "google-preview",
        r"google-safety|googleimageproxy|google web preview|google-pagerenderer|"
        r"googlebot|google-read-aloud|feedfetcher-google|google-inspectiontool",
    ),
    ("slack-preview", r"slackbot|slack-imgproxy"),
    (
        "chat-preview",
        r"facebookexternalhit|twitterbot|linkedinbot|whatsapp|telegrambot|"
        r"discordbot|skypebot|yahoo! slurp",
    ),
    (
        "http-client",
        r"^curl/|\bwget\b|python-requests|python-httpx|python-urllib|aiohttp|"
        r"go-http-client|^java/|okhttp|libwww-perl|apache-httpclient|node-fetch|"
        r"axios/|postmanruntime|headlesschrome|phantomjs|^python/",
    ),
    ("bot", r"bot\b|crawler|spider|scanner|preview|urlscan|link ?checker"),
)
_COMPILED = tuple(
    (name, re.compile(pattern, re.IGNORECASE)) for name, pattern in USER_AGENT_PATTERNS
)


@functools.lru_cache(maxsize=4096)  # the same few user agents repeat in every batch
def user_agent_reason(user_agent: str | None) -> str | None:
    """``ua:<name>`` when the user agent looks like a scanner, previewer or script, else None."""
    ua = (user_agent or "").strip()
    if not ua:
        return "ua:empty"
    for name, pattern in _COMPILED:
        if pattern.search(ua):
            return f"ua:{name}"
    return None


def request_reason(method: str | None, user_agent: str | None) -> str | None:
    """What the request alone tells: a HEAD, or a machine's user agent."""
    if (method or "").upper() == "HEAD":
        return "head"
    return user_agent_reason(user_agent)


@dataclass(frozen=True)
class Click:
    """One click of one recipient, as far as the timing signals need it."""

    id: int
    at: dt.datetime
    link: str | int | None  # link id (tracker) or URL (SendGrid click tracking)
    machine: bool = False


def delivery_reason(
    click_at: dt.datetime, delivered_at: dt.datetime | None, window: float = DELIVERY_WINDOW
) -> str | None:
    """``after-delivery`` if the click came less than ``window`` seconds after delivery.

    A click stamped *before* delivery counts too: the gateway fetched the link while the
    message was still in its hands, before the delivered event was written.
    """
    if delivered_at is None:
        return None
    return "after-delivery" if (click_at - delivered_at).total_seconds() < window else None


def burst_ids(
    clicks: Sequence[Click], links: int = BURST_LINKS, seconds: float = BURST_SECONDS
) -> set[int]:
    """Ids of clicks in any window of ``seconds`` that covers ``links`` or more distinct links."""
    ordered = sorted(clicks, key=lambda c: (c.at, c.id))
    flagged: set[int] = set()
    start = 0
    for end in range(len(ordered)):
        while (ordered[end].at - ordered[start].at).total_seconds() > seconds:
            start += 1
        window = ordered[start : end + 1]
        if len({c.link for c in window}) >= links:
            flagged.update(c.id for c in window)
    return flagged


def flag_clicks(
    clicks: Sequence[Click],
    delivered_at: dt.datetime | None,
    window: float = DELIVERY_WINDOW,
    links: int = BURST_LINKS,
    seconds: float = BURST_SECONDS,
) -> dict[int, str]:
    """click id -> reason for clicks (of one recipient and email) the timing signals catch.

    Clicks already flagged keep their first reason and are not returned.
    """
    bursts = burst_ids(clicks, links, seconds)
    found: dict[int, str] = {}
    for click in clicks:
        if click.machine:
            continue
        reason = delivery_reason(click.at, delivered_at, window)
        if reason is None and click.id in bursts:
            reason = "burst"
        if reason:
            found[click.id] = reason
    return found


# --- against the store -----------------------------------------------------------------------


def _delivered_at(conn: Connection, campaign_id: str, ledger_id: int) -> dt.datetime | None:
    """The message's delivered time: SendGrid's delivered event, else the ledger's sent time,
    else its batch's finish time."""
    return _delivered_times(conn, campaign_id, [ledger_id]).get(ledger_id)


# Built once: constructing a statement costs several times more than SQLite running it, and
# the tracker runs these on every click.
_CLICKS_OF = sa.select(
    events.c.ledger_id,
    events.c.id,
    events.c.at,
    events.c.source,
    events.c.link_id,
    events.c.url,
    events.c.machine,
).where(
    events.c.campaign_id == sa.bindparam("campaign_id"),
    events.c.ledger_id.in_(sa.bindparam("ledger_ids", expanding=True)),
    events.c.event == "click",
)
# The same, only clicks at or after ``since`` (the tracker's pass for fresh clicks).
_CLICKS_SINCE = _CLICKS_OF.where(events.c.at >= sa.bindparam("since"))
_DELIVERED_OF = (
    sa.select(events.c.ledger_id, sa.func.min(events.c.at))
    .where(
        events.c.campaign_id == sa.bindparam("campaign_id"),
        events.c.ledger_id.in_(sa.bindparam("ledger_ids", expanding=True)),
        events.c.event == "delivered",
    )
    .group_by(events.c.ledger_id)
)
_SENT_OF = (
    sa.select(ledger.c.id, ledger.c.sent_at, batches.c.finished_at)
    .select_from(ledger.outerjoin(batches, ledger.c.batch_id == batches.c.id))
    .where(ledger.c.id.in_(sa.bindparam("ledger_ids", expanding=True)))
)
_FLAG = (
    events.update()
    .where(events.c.id == sa.bindparam("b_click_id"), events.c.machine == sa.false())
    .values(machine=True, machine_reason=sa.bindparam("b_reason"))
)


def _delivered_times(
    conn: Connection, campaign_id: str, ledger_ids: list[int]
) -> dict[int, dt.datetime]:
    """``_delivered_at`` for many recipients of one campaign, in two queries."""
    found = {
        lid: at
        for lid, at in conn.execute(
            _DELIVERED_OF, {"campaign_id": campaign_id, "ledger_ids": ledger_ids}
        )
        if at is not None
    }
    missing = [lid for lid in ledger_ids if lid not in found]
    if missing:
        for row in conn.execute(_SENT_OF, {"ledger_ids": missing}):
            if row.sent_at or row.finished_at:
                found[row.id] = row.sent_at or row.finished_at
    return found


_CHUNK = 500  # recipients per query (IN lists stay far below every driver's limit)


def reclassify(
    conn: Connection,
    pairs: Iterable[tuple[str, int]],
    window: float = DELIVERY_WINDOW,
    links: int = BURST_LINKS,
    seconds: float = BURST_SECONDS,
    *,
    new_since: dt.datetime | None = None,
) -> int:
    """Flag the timing-caught clicks of each (campaign_id, ledger_id); returns clicks newly flagged.

    A few queries per chunk of recipients (their clicks, their delivery times), not per
    recipient, so it is cheap enough to run on every insert and on every webhook batch;
    pass every recipient of a campaign for a full pass.

    ``new_since``: the caller just inserted clicks, none earlier than this, and every older
    click was classified when it came in. Then only clicks from ``seconds`` before it can
    change (a burst window that holds a new click spans at most ``seconds``; the delivery
    signal of an older click does not depend on newer ones), so only those are read:
    the tracker's pass stays cheap however many clicks a recipient has made before.
    """
    by_campaign: dict[str, set[int]] = {}
    for campaign_id, ledger_id in pairs:
        if campaign_id and ledger_id:
            by_campaign.setdefault(campaign_id, set()).add(ledger_id)
    flagged = 0
    for campaign_id in sorted(by_campaign):
        ids = sorted(by_campaign[campaign_id])
        for start in range(0, len(ids), _CHUNK):
            found = _timing_flags(
                conn, campaign_id, ids[start : start + _CHUNK], window, links, seconds, new_since
            )
            flagged += _store_flags(conn, found)
    return flagged


def _timing_flags(
    conn: Connection,
    campaign_id: str,
    ledger_ids: list[int],
    window: float,
    links: int,
    seconds: float,
    new_since: dt.datetime | None,
) -> dict[int, str]:
    """Click id -> reason for the timing-caught clicks of some recipients of one campaign."""
    clicks_of: dict[int, list] = {}
    params: dict[str, object] = {"campaign_id": campaign_id, "ledger_ids": ledger_ids}
    if new_since is not None:
        params["since"] = new_since - dt.timedelta(seconds=seconds)
    for r in conn.execute(_CLICKS_OF if new_since is None else _CLICKS_SINCE, params):
        clicks_of.setdefault(r.ledger_id, []).append(r)
    if not clicks_of:
        return {}
    delivered_at = _delivered_times(conn, campaign_id, sorted(clicks_of))
    found: dict[int, str] = {}
    for ledger_id, rows in sorted(clicks_of.items()):
        delivered = delivered_at.get(ledger_id)
        # One source at a time: our click and SendGrid's record of the same click name
        # the link differently (id vs URL) and must not add up to a "burst".
        for source in sorted({r.source for r in rows}):
            clicks = [
                Click(r.id, r.at, r.link_id if r.link_id is not None else r.url, bool(r.machine))
                for r in rows
                if r.source == source
            ]
            found.update(flag_clicks(clicks, delivered, window, links, seconds))
    return found


def _store_flags(conn: Connection, found: dict[int, str]) -> int:
    """Flag those clicks (never unflag one); returns how many were not flagged before."""
    if len(found) > 1 and conn.dialect.name == "sqlite":  # sqlite3 sums executemany's rowcount
        params = [
            {"b_click_id": click_id, "b_reason": reason} for click_id, reason in found.items()
        ]
        return conn.execute(_FLAG, params).rowcount or 0
    flagged = 0
    for click_id, reason in found.items():
        flagged += conn.execute(_FLAG, {"b_click_id": click_id, "b_reason": reason}).rowcount or 0
    return flagged


def reclassify_campaign(conn: Connection, campaign_id: str) -> int:
    """A full pass over one campaign's clicks, for reports to call before counting."""
    ids = (
        conn.execute(
            sa.select(events.c.ledger_id)
            .distinct()
            .where(
                events.c.campaign_id == campaign_id,
                events.c.event == "click",
                events.c.ledger_id.is_not(None),
            )
        )
        .scalars()
        .all()
    )
    return reclassify(conn, ((campaign_id, lid) for lid in ids))
