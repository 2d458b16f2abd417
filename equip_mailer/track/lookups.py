"""What a click token points at: the link's URL and the recipient's campaign, segment and
send, looked up once and then kept briefly in memory.

A click is answered in the event loop, so its lookup must be cheap: a small cache answers
almost every click, and a miss is one indexed SELECT. Entries expire after a few seconds
because a later send may update a link's URL in place (``links.register_links``), and the
tracker must follow it. Nothing is cached for a token that matches no registered link.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from equip_mailer.people.records import ERASED_PREFIX
from equip_mailer.send.links import TEST_RECIPIENT
from equip_mailer.store import batches, ledger, links, signup_courses

# The click's lookup, built once (building a statement costs more than running it): the link,
# and the recipient's ledger row and batch, in one indexed query. No ledger row (a test
# recipient, or a recipient id that does not exist) leaves the recipient's columns NULL.
# A sign-up link of a course taken here (sign_up: equip) also names its sign-up course row,
# so the click can lead to that reader's own sign-up page.
_LOOKUP = (
    sa.select(
        links.c.campaign_id,
        links.c.url,
        signup_courses.c.id.label("signup_course"),
        ledger.c.id.label("ledger_id"),
        ledger.c.campaign_id.label("ledger_campaign_id"),
        ledger.c.segment,
        batches.c.send_id,
        # a row forget erased (its address is a keyed hash): its clicks are counts only
        ledger.c.email_key.startswith(ERASED_PREFIX).label("erased"),
    )
    .select_from(
        links.outerjoin(ledger, ledger.c.id == sa.bindparam("ledger_id"))
        .outerjoin(batches, ledger.c.batch_id == batches.c.id)
        .outerjoin(
            signup_courses,
            sa.and_(
                signup_courses.c.campaign_id == links.c.campaign_id,
                signup_courses.c.course_id == links.c.course_id,
                signup_courses.c.hosted.is_(True),
                links.c.session.is_(None),
            ),
        )
    )
    .where(links.c.id == sa.bindparam("link_id"))
)


@dataclass(frozen=True, slots=True)
class Link:
    campaign_id: str
    url: str
    location: str  # the Location header: the URL as Starlette's RedirectResponse quotes it
    signup_course: int | None = None  # a hosted course's sign-up link: its signup_courses row


@dataclass(frozen=True, slots=True)
class Reader:
    campaign_id: str
    segment: str
    send_id: str | None
    erased: bool = False  # forget erased them: no user agent or IP hash is kept


def _safe_target(url: str | None) -> bool:
    """Defence in depth: the registry only ever holds http(s) URLs with a host."""
    return bool(url) and re.match(r"^https?://[^/\s\\]+", url or "", re.IGNORECASE) is not None


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _TTLCache(Generic[K, V]):
    """A small LRU whose entries also expire: a link's URL can be updated in place by a later
    send (``links.register_links``), and the tracker must follow within ``ttl`` seconds.
    Used from the event loop only (no lock)."""

    def __init__(self, size: int, ttl: float):
        self.size, self.ttl = size, ttl
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K, now: float) -> V | None:
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key: K, value: V, now: float) -> None:
        self._data[key] = (now + self.ttl, value)
        self._data.move_to_end(key)
        if len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()


class Lookups:
    """link id -> Link and ledger id -> Reader, cached briefly; on a miss, one query."""

    LINK_TTL = 5.0  # seconds: how long a changed link URL may still send clicks to the old one
    READER_TTL = 5.0
    LINKS = 4096
    READERS = 20_000

    def __init__(self) -> None:
        self.links: _TTLCache[int, Link] = _TTLCache(self.LINKS, self.LINK_TTL)
        self.readers: _TTLCache[int, Reader] = _TTLCache(self.READERS, self.READER_TTL)

    def cached(self, link_id: int, ledger_id: int) -> tuple[Link | None, Reader | None, bool]:
        """(link, reader, complete): complete is False when the database must be asked."""
        now = time.monotonic()
        link = self.links.get(link_id, now)
        if link is None:
            return None, None, False
        if ledger_id == TEST_RECIPIENT:
            return link, None, True
        reader = self.readers.get(ledger_id, now)
        return link, reader, reader is not None

    def fetch(self, conn: Connection, link_id: int, ledger_id: int) -> Row | None:
        """The lookup's row (no caching: this may run in a worker thread)."""
        return conn.execute(_LOOKUP, {"link_id": link_id, "ledger_id": ledger_id}).first()

    def store(
        self, row: Row | None, link_id: int, ledger_id: int
    ) -> tuple[Link | None, Reader | None]:
        if row is None or not _safe_target(row.url):
            return None, None  # not cached: tokens are minted only for registered links
        now = time.monotonic()
        link = Link(
            row.campaign_id,
            row.url,
            quote(row.url, safe=":/%#?=@[]!$&'()*+,;"),
            row.signup_course,
        )
        self.links.put(link_id, link, now)
        reader = None
        if row.ledger_id is not None:
            reader = Reader(row.ledger_campaign_id, row.segment, row.send_id, bool(row.erased))
            self.readers.put(ledger_id, reader, now)
        return link, reader
