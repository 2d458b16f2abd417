"""The tracking service: click redirects, one-click unsubscribe, SendGrid's event webhook.

``create_app(settings)`` returns a Starlette app that ``equip-mailer serve`` runs under
uvicorn. Routes:

* ``GET|HEAD /c/<token>`` - verify the signed token, look the link up in the campaign's
  registry, record one click event, redirect (302) to the registered URL (UTM already
  applied). The target never comes from the request, so a forged, altered or
  cross-campaign token, or a ``?url=`` added to a good one, leads only to a plain 404
  page. HEAD is recorded as a machine click and redirected. Ledger id 0 (test sends and
  previews) redirects without recording anything. Like listmonk, a click is one insert
  and a redirect; every click is its own event, and reports count unique clickers.
* ``GET /u/<token>`` - a plain page with one confirm button; changes nothing (mail
  scanners fetch every link, and must not unsubscribe anyone).
  ``POST /u/<token>`` - RFC 8058 one-click (``List-Unsubscribe=One-Click``) or the page's
  form: suppress the address and record an ``unsubscribe`` event, idempotently.
* ``POST /webhooks/sendgrid`` - see ``webhook.py``; the status codes are deliberate:
  400 malformed JSON, 403 bad/missing/stale signature or no key configured, 413 body too
  large (all "don't retry"), 500 when storing failed (SendGrid retries, and the dedupe key
  makes the retry harmless), 200 with counts.
* ``GET /healthz`` - 200 JSON when the database answers, else 503.

Clicks: answered first, written just after. The redirect is decided in the event loop (token
check, then the link and the recipient from a small cache, or one indexed SELECT on a miss;
see ``Lookups``), and the click event goes on an in-process queue that ONE writer thread
(``ClickWriter``) drains in batches: one transaction per batch, ``executemany`` for the
inserts, then the machine-click pass for the batch's recipients (their earlier clicks
included, so bursts are caught exactly as with one insert per click). The writer takes
whatever is queued as soon as it is free, waiting at most ``ClickWriter.GATHER`` (10 ms)
for more, so a click is visible to readers within milliseconds of its redirect under
normal load; ``app.state.clicks.flush()`` waits until everything queued so far is stored,
and the lifespan shutdown (SIGTERM/SIGINT to uvicorn) flushes and stops the writer.
This took the click off the threadpool: the hop to a worker thread and back cost more CPU
than the click's own SQLite work (benchmarks/README.md).

The trade-off, accepted for click analytics: a click that was redirected but not yet
written (normally a few ms' worth; more only if the database is stalled) is lost if the
process dies without a shutdown (kill -9, power loss), and a click whose batch the database
refuses (after one retry) is logged and dropped - the reader still got their page, as
before. At most ``ClickWriter.MAX_PENDING`` clicks wait; beyond that, new clicks are
redirected but not recorded (and logged), so a dead database cannot eat the memory.
Unsubscribes and SendGrid webhook posts stay synchronous: their answer means "stored".

Other database work runs in the threadpool so one slow transaction never stalls the event
loop. Nothing here logs an address, a token or an IP; IPs are stored only as a keyed hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import logging
import queue
import re
import threading
import time
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from equip_mailer.config import Settings, mask_email
from equip_mailer.send.links import TEST_RECIPIENT, read_token
from equip_mailer.store import (
    add_suppression,
    batches,
    events,
    insert_ignore,
    ledger,
    links,
    meta,
    open_store,
    suppressions,
    utcnow,
)

from . import machines, webhook

log = logging.getLogger("equip_mailer.track")

MAX_UNSUBSCRIBE_BODY = 16 * 1024  # a one-click body is 26 bytes
DRAIN_LIMIT = 64 * 1024 * 1024  # read (and drop) at most this much of an oversize body


@dataclass(frozen=True)
class Service:
    """What the routes need, built once in ``create_app``."""

    engine: Engine
    link_key: bytes
    public_key: object | None  # cryptography EC public key, or None: webhook refuses all
    replay_window: float
    max_body: int


# --- pages ---------------------------------------------------------------------------------

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} - EQUIP</title>
<style>
 body {{ font-family: Arial, Helvetica, sans-serif; font-size: 1.125rem; line-height: 1.5;
        color: #1d1d1b; background: #fff; margin: 0; }}
 main {{ max-width: 36rem; margin: 3rem auto; padding: 0 1.25rem; }}
 h1 {{ font-size: 1.6rem; color: #005eb8; }}
 button {{ font: inherit; font-weight: bold; color: #fff; background: #005eb8; border: 0;
          border-radius: 4px; padding: .75rem 1.5rem; cursor: pointer; }}
 button:focus {{ outline: 3px solid #ffb81c; outline-offset: 2px; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""

NOT_FOUND_BODY = (
    "<p>Sorry, this link is not valid. It may have been copied only in part, "
    "or changed on the way.</p>"
    "<p>Please try the link in the email again, or contact the EQUIP team and "
    "we will help you sign up.</p>"
)


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def not_found() -> HTMLResponse:
    return page("Link not found", NOT_FOUND_BODY, 404)


# --- clicks ----------------------------------------------------------------------------------


def _safe_target(url: str | None) -> bool:
    """Defence in depth: the registry only ever holds http(s) URLs with a host."""
    return bool(url) and re.match(r"^https?://[^/\s\\]+", url, re.IGNORECASE) is not None


# The click's lookup, built once (building a statement costs more than running it): the link,
# and the recipient's ledger row and batch, in one indexed query. No ledger row (a test
# recipient, or a recipient id that does not exist) leaves the recipient's columns NULL.
_LOOKUP = (
    sa.select(
        links.c.campaign_id,
        links.c.url,
        ledger.c.id.label("ledger_id"),
        ledger.c.campaign_id.label("ledger_campaign_id"),
        ledger.c.segment,
        batches.c.send_id,
    )
    .select_from(
        links.outerjoin(ledger, ledger.c.id == sa.bindparam("ledger_id")).outerjoin(
            batches, ledger.c.batch_id == batches.c.id
        )
    )
    .where(links.c.id == sa.bindparam("link_id"))
)
_CLICK = events.insert()


@dataclass(frozen=True, slots=True)
class Link:
    campaign_id: str
    url: str
    location: str  # the Location header: the URL as Starlette's RedirectResponse quotes it


@dataclass(frozen=True, slots=True)
class Reader:
    campaign_id: str
    segment: str
    send_id: str | None


class _TTLCache:
    """A small LRU whose entries also expire: a link's URL can be updated in place by a later
    send (``links.register_links``), and the tracker must follow within ``ttl`` seconds.
    Used from the event loop only (no lock)."""

    def __init__(self, size: int, ttl: float):
        self.size, self.ttl = size, ttl
        self._data: OrderedDict = OrderedDict()

    def get(self, key, now: float):
        hit = self._data.get(key)
        if hit is None:
            return None
        if hit[0] < now:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return hit[1]

    def put(self, key, value, now: float) -> None:
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

    def __init__(self):
        self.links = _TTLCache(self.LINKS, self.LINK_TTL)
        self.readers = _TTLCache(self.READERS, self.READER_TTL)

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

    def fetch(self, conn: Connection, link_id: int, ledger_id: int):
        """The lookup's row (no caching: this may run in a worker thread)."""
        return conn.execute(_LOOKUP, {"link_id": link_id, "ledger_id": ledger_id}).first()

    def store(self, row, link_id: int, ledger_id: int) -> tuple[Link | None, Reader | None]:
        if row is None or not _safe_target(row.url):
            return None, None  # not cached: tokens are minted only for registered links
        now = time.monotonic()
        link = Link(row.campaign_id, row.url, quote(row.url, safe=":/%#?=@[]!$&'()*+,;"))
        self.links.put(link_id, link, now)
        reader = None
        if row.ledger_id is not None:
            reader = Reader(row.ledger_campaign_id, row.segment, row.send_id)
            self.readers.put(ledger_id, reader, now)
        return link, reader


def click_event(
    link_key: bytes,
    link_id: int,
    ledger_id: int,
    link: Link,
    reader: Reader,
    *,
    method: str,
    user_agent: str | None,
    ip: str | None,
) -> dict:
    """The ``events`` row for one click, with the request's own machine signals (HEAD, user
    agent); the timing signals come from ``machines.reclassify`` after the insert."""
    now = utcnow()
    ua = (user_agent or "")[:1000] or None
    reason = machines.request_reason(method, ua)
    return dict(
        dedupe_key=uuid.uuid4().hex,
        event="click",
        at=now,
        source="tracker",
        campaign_id=link.campaign_id,
        ledger_id=ledger_id,
        send_id=reader.send_id,
        segment=reader.segment,
        link_id=link_id,
        url=link.url,
        user_agent=ua,
        ip_hash=webhook.ip_hash(link_key, ip),
        method=method[:10],
        machine=reason is not None,
        machine_reason=reason,
        received_at=now,
    )


def store_clicks(conn: Connection, rows: list[dict]) -> None:
    """Insert clicks (in arrival order) and run the machine pass for their recipients."""
    conn.execute(_CLICK, rows)
    machines.reclassify(
        conn,
        {(r["campaign_id"], r["ledger_id"]) for r in rows},
        new_since=min(r["at"] for r in rows),
    )


_STOP = object()
_WRITERS: weakref.WeakSet = weakref.WeakSet()


def flush_clicks(timeout: float = 10.0) -> bool:
    """Flush every click writer in this process (for tests and embedding code); False on timeout."""
    return all([w.flush(timeout) for w in list(_WRITERS)])


class ClickWriter:
    """One thread that writes queued clicks in batches; see the module docstring."""

    BATCH = 1000  # clicks per transaction at most
    GATHER = 0.020  # seconds the writer waits for more clicks after the first
    MAX_PENDING = 100_000  # clicks waiting at most; beyond that they are dropped (logged)
    RETRY_AFTER = 0.5
    # Backpressure: past BACKLOG waiting clicks, a redirect waits (up to MAX_WAIT) for the
    # writer to catch up. Under a load the writer cannot follow, the event loop would
    # otherwise keep the GIL busy, starve the writer and let the queue (and the delay before
    # a click is visible) grow without bound; this keeps that delay at a fraction of a second.
    BACKLOG = 1000
    MAX_WAIT = 0.5

    def __init__(self, engine: Engine, writing):
        self.engine, self.writing = engine, writing
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.written = self.dropped = 0
        self._warned_full = False
        _WRITERS.add(self)

    def submit(self, row: dict) -> None:
        if self._queue.qsize() >= self.MAX_PENDING:
            self.dropped += 1
            if not self._warned_full:
                self._warned_full = True
                log.error(
                    "click queue full (%d waiting): clicks are redirected but not recorded "
                    "until the database catches up",
                    self.MAX_PENDING,
                )
            return
        self._ensure_thread()
        self._queue.put(row)

    def pending(self) -> int:
        return self._queue.qsize()

    async def keep_up(self) -> None:
        """Wait while the writer is more than BACKLOG clicks behind (at most MAX_WAIT)."""
        if self._queue.qsize() <= self.BACKLOG:
            return
        deadline = time.monotonic() + self.MAX_WAIT
        while self._queue.qsize() > self.BACKLOG // 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until every click submitted so far is written (or dropped); False on timeout."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and stop the thread (a later click starts it again)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "the click writer did not finish within %.0f s; %d clicks may be lost",
                timeout,
                self._queue.qsize(),
            )

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="click-writer", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            batch = [get()]
            if isinstance(batch[0], dict):
                time.sleep(self.GATHER)  # let a few more arrive: one transaction for them all
            while len(batch) < self.BATCH:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            rows = [item for item in batch if isinstance(item, dict)]
            if rows:
                self._write(rows)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is _STOP for item in batch):
                return

    def _write(self, rows: list[dict]) -> None:
        for attempt in (1, 2):
            try:
                with self.writing, self.engine.begin() as conn:
                    store_clicks(conn, rows)
                self.written += len(rows)
                self._warned_full = False
                return
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any error
                if attempt == 2:
                    self.dropped += len(rows)
                    log.error(
                        "could not record %d clicks (%s); they were redirected but are lost",
                        len(rows),
                        _db_error(exc),
                    )
                    return
                time.sleep(self.RETRY_AFTER)


# --- unsubscribe -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    ledger_id: int
    campaign_id: str
    segment: str
    email: str
    suppressed: bool


def find_recipient(conn: Connection, link_key: bytes, token: str) -> Recipient | None:
    tok = read_token(link_key, "u", token)
    if tok is None:
        return None
    if tok.ledger_id == TEST_RECIPIENT:
        return Recipient(TEST_RECIPIENT, "", "", "", False)
    row = conn.execute(
        sa.select(
            ledger.c.id, ledger.c.campaign_id, ledger.c.segment, ledger.c.email, ledger.c.email_key
        ).where(ledger.c.id == tok.ledger_id)
    ).first()
    if row is None:
        return None
    suppressed = (
        conn.execute(
            sa.select(suppressions.c.email_key).where(suppressions.c.email_key == row.email_key)
        ).first()
        is not None
    )
    return Recipient(row.id, row.campaign_id, row.segment, row.email, suppressed)


def unsubscribe(
    conn: Connection,
    link_key: bytes,
    who: Recipient,
    *,
    method: str,
    user_agent: str | None,
    ip: str | None,
) -> bool:
    """Suppress the address and record one ``unsubscribe`` event; True if newly suppressed.

    The event's dedupe key is fixed per recipient, so a second POST adds nothing.
    """
    added = add_suppression(
        conn, who.email, "unsubscribe", source="link", campaign_id=who.campaign_id
    )
    now = utcnow()
    insert_ignore(
        conn,
        events,
        [
            {
                "dedupe_key": hashlib.sha256(
                    f"unsubscribe|tracker|{who.ledger_id}".encode()
                ).hexdigest(),
                "event": "unsubscribe",
                "at": now,
                "source": "tracker",
                "campaign_id": who.campaign_id,
                "ledger_id": who.ledger_id,
                "segment": who.segment,
                "method": method[:10],
                "user_agent": (user_agent or "")[:1000] or None,
                "ip_hash": webhook.ip_hash(link_key, ip),
                "machine": False,
                "received_at": now,
            }
        ],
        ["dedupe_key"],
    )
    return added


# --- helpers ---------------------------------------------------------------------------------

_EMAIL = re.compile(r"[^\s'\"<>()\[\],;:]+@[^\s'\"<>()\[\],;:]+")


def scrub(text: str) -> str:
    """Mask anything that looks like an address before it reaches a log line."""
    return _EMAIL.sub(lambda m: mask_email(m.group(0)), text)


def _db_error(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).splitlines() or [""])[0][:300]
    return scrub(f"{type(orig).__name__}: {first}")


async def read_body(request: Request, limit: int) -> bytes:
    """The body, read from the stream with a cap (Content-Length may be absent or lie).

    Raises ``webhook.TooLarge`` past ``limit``; the rest is drained (up to DRAIN_LIMIT) and
    dropped so that the client reads our 413 instead of a reset connection.
    """
    declared = request.headers.get("content-length", "")
    size, chunks, too_large = 0, [], declared.isdigit() and int(declared) > limit
    async for chunk in request.stream():
        size += len(chunk)
        if too_large or size > limit:
            too_large = True
            chunks.clear()
            if size > DRAIN_LIMIT:
                break
            continue
        chunks.append(chunk)
    if too_large:
        raise webhook.TooLarge(f"the body is over {limit} bytes")
    return b"".join(chunks)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- the app ---------------------------------------------------------------------------------


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    replay_window: float = webhook.REPLAY_WINDOW,
    max_body: int = webhook.MAX_BODY,
) -> Starlette:
    """The tracking service over ``engine`` (default: the store at ``settings.database_url``).

    A missing link secret or a malformed webhook key fails here, at start-up, as a
    ConfigError; a *missing* webhook key only makes the webhook refuse every post.
    """
    link_key = settings.require_link_secret()
    public_key = (
        webhook.load_public_key(settings.sendgrid_webhook_public_key)
        if settings.sendgrid_webhook_public_key
        else None
    )
    owns_engine = engine is None
    engine = engine if engine is not None else open_store(settings.database_url)
    # SQLite has one writer. Threads that meet inside it wait in its busy handler, which
    # sleeps in growing steps: with 4 concurrent clicks the p99 went from ~7 ms to 30-900 ms.
    # Queue this process's write transactions on a lock instead (PostgreSQL needs none).
    writing = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    svc = Service(
        engine=engine,
        link_key=link_key,
        public_key=public_key,
        replay_window=replay_window,
        max_body=max_body,
    )
    if public_key is None:
        log.warning(
            "SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid will refuse every "
            "post (403). Set it to the verification key from SendGrid's Event Webhook settings."
        )

    lookups = Lookups()
    clicks = ClickWriter(engine, writing)
    sqlite = engine.dialect.name == "sqlite"
    redirect_headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

    def lookup(link_id: int, ledger_id: int):
        with svc.engine.connect() as conn:
            return lookups.fetch(conn, link_id, ledger_id)

    async def click(request: Request) -> Response:
        tok = read_token(svc.link_key, "c", request.path_params["token"])
        if tok is None:
            return not_found()
        link, reader, complete = lookups.cached(tok.link_id, tok.ledger_id)
        if not complete:
            try:
                # SQLite answers this indexed read (WAL: never blocked by a writer) in well
                # under a millisecond, less than the hop to a worker thread would cost; a
                # server database goes through the threadpool.
                row = (
                    lookup(tok.link_id, tok.ledger_id)
                    if sqlite
                    else await run_in_threadpool(lookup, tok.link_id, tok.ledger_id)
                )
            except Exception as exc:  # noqa: BLE001
                log.error("could not look a click's link up (%s)", _db_error(exc))
                return page(
                    "Please try again",
                    "<p>Something went wrong on our side. "
                    "Please try the link again in a minute.</p>",
                    503,
                )
            link, reader = lookups.store(row, tok.link_id, tok.ledger_id)
        if link is None:
            return not_found()
        if tok.ledger_id != TEST_RECIPIENT:
            if reader is None or reader.campaign_id != link.campaign_id:
                return not_found()
            try:
                clicks.submit(
                    click_event(
                        svc.link_key,
                        tok.link_id,
                        tok.ledger_id,
                        link,
                        reader,
                        method=request.method,
                        user_agent=request.headers.get("user-agent"),
                        ip=_client_ip(request),
                    )
                )
            except Exception as exc:  # noqa: BLE001 - whatever broke, the reader still gets their page
                log.error("could not record a click (%s); redirecting without it", _db_error(exc))
            await clicks.keep_up()
        return Response(status_code=302, headers={"location": link.location, **redirect_headers})

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]

        def work():
            with svc.engine.connect() as conn:
                return find_recipient(conn, svc.link_key, token)

        try:
            who = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001
            log.error("could not show an unsubscribe page (%s)", _db_error(exc))
            return page(
                "Please try again",
                "<p>Something went wrong on our side. Please try the link again in a minute.</p>",
                503,
            )
        if who is None:
            return not_found()
        if who.ledger_id == TEST_RECIPIENT:
            return page(
                "Unsubscribe",
                "<p>This is a test or preview link: it does not belong to "
                "anyone, so there is nothing to unsubscribe.</p>",
            )
        if who.suppressed:
            return page(
                "You are unsubscribed",
                f"<p>{html.escape(mask_email(who.email))} is already off our mailing list. "
                "You will not get any more EQUIP course emails.</p>",
            )
        return page(
            "Unsubscribe from EQUIP course emails",
            f"<p>Stop sending EQUIP course emails to {html.escape(mask_email(who.email))}?</p>"
            '<form method="post">'
            '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
            '<button type="submit">Unsubscribe</button>'
            "</form>"
            "<p>If you got here by mistake, just close this page: nothing has changed.</p>",
        )

    async def unsubscribe_post(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            await read_body(
                request, MAX_UNSUBSCRIBE_BODY
            )  # "List-Unsubscribe=One-Click" or the form
        except webhook.TooLarge:
            return page("Request too large", "<p>That request was too large.</p>", 413)

        def work():
            with writing, svc.engine.begin() as conn:
                who = find_recipient(conn, svc.link_key, token)
                if who is None or who.ledger_id == TEST_RECIPIENT:
                    return who, False
                return who, unsubscribe(
                    conn,
                    svc.link_key,
                    who,
                    method="POST",
                    user_agent=request.headers.get("user-agent"),
                    ip=_client_ip(request),
                )

        try:
            who, added = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - say plainly that it did not work
            log.error("could not record an unsubscribe (%s)", _db_error(exc))
            return page(
                "Please try again",
                "<p>Something went wrong on our side and you are "
                "<strong>not</strong> unsubscribed yet. Please try again in a minute.</p>",
                500,
            )
        if who is None:
            return not_found()
        if who.ledger_id == TEST_RECIPIENT:
            return page(
                "Unsubscribe", "<p>This was a test or preview link: nothing has changed.</p>"
            )
        if added:
            log.info("unsubscribed %s (campaign %s)", mask_email(who.email), who.campaign_id)
        return page(
            "You are unsubscribed",
            f"<p>{html.escape(mask_email(who.email))} will not get any more EQUIP course "
            "emails.</p><p>If this was a mistake, contact the EQUIP team.</p>",
        )

    async def sendgrid_webhook(request: Request) -> Response:
        if svc.public_key is None:
            # Never accept unsigned posts: anyone could then invent bounces and suppress staff.
            log.warning("refused a SendGrid webhook post: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
            return JSONResponse({"error": "webhook verification key is not configured"}, 403)
        try:
            body = await read_body(request, svc.max_body)
            webhook.verify_signature(
                svc.public_key,
                body,
                request.headers.get(webhook.SIGNATURE_HEADER),
                request.headers.get(webhook.TIMESTAMP_HEADER),
                window=svc.replay_window,
            )
            items = webhook.parse_events(body)
        except webhook.WebhookError as exc:
            # 4xx: SendGrid does not retry these, and a retry would fail the same way.
            log.warning("refused a SendGrid webhook post (%d): %s", exc.status, exc.message)
            return JSONResponse({"error": exc.message}, exc.status)

        def work():
            with writing, svc.engine.begin() as conn:
                return webhook.store_events(conn, items, ip_key=svc.link_key)

        try:
            result = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - any storage failure must be a 500
            # 500: SendGrid retries later; the dedupe key makes the retry harmless.
            log.error(
                "could not store %d SendGrid events (%s); answered 500 so SendGrid retries",
                len(items),
                _db_error(exc),
            )
            return JSONResponse({"error": "could not store the events; please retry"}, 500)
        log.info(
            "SendGrid webhook: %d events, %d stored, %d duplicates",
            result.received,
            result.stored,
            result.duplicates,
        )
        return JSONResponse(result.as_dict())

    async def healthz(request: Request) -> Response:
        def work():
            with svc.engine.connect() as conn:
                return conn.execute(
                    sa.select(meta.c.value).where(meta.c.key == "schema_version")
                ).scalar()

        try:
            version = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001
            log.error("health check: database error (%s)", _db_error(exc))
            return JSONResponse({"status": "error", "db": "error"}, 503)
        return JSONResponse(
            {
                "status": "ok",
                "db": "ok",
                "schema_version": int(version or 0),
                "webhook": "ready" if svc.public_key is not None else "no key",
            }
        )

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return not_found()
        return page("Not allowed", "<p>That request is not supported here.</p>", exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(clicks.close)  # every accepted click written before exit
        if owns_engine:
            engine.dispose()

    app = Starlette(
        routes=[
            Route("/c/{token}", click, methods=["GET", "HEAD"]),
            Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
            Route("/u/{token}", unsubscribe_post, methods=["POST"]),
            Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # no redirects we did not decide on
    app.state.service = svc
    app.state.clicks = clicks  # app.state.clicks.flush(): wait until queued clicks are stored
    app.state.lookups = lookups
    return app
