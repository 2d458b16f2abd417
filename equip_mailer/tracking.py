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

Database work runs in the threadpool so one slow transaction never stalls the event loop.
Nothing here logs an address, a token or an IP; IPs are stored only as a keyed hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import logging
import re
import threading
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import machines, webhook
from .config import Settings, mask_email
from .links import TEST_RECIPIENT, read_token
from .store import (add_suppression, batches, events, insert_ignore, ledger, links, meta,
                    open_store, suppressions, utcnow)

log = logging.getLogger("equip_mailer.tracking")

MAX_UNSUBSCRIBE_BODY = 16 * 1024   # a one-click body is 26 bytes
DRAIN_LIMIT = 64 * 1024 * 1024     # read (and drop) at most this much of an oversize body


@dataclass(frozen=True)
class Service:
    """What the routes need, built once in ``create_app``."""
    engine: Engine
    link_key: bytes
    public_key: object | None          # cryptography EC public key, or None: webhook refuses all
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

NOT_FOUND_BODY = ("<p>Sorry, this link is not valid. It may have been copied only in part, "
                  "or changed on the way.</p>"
                  "<p>Please try the link in the email again, or contact the EQUIP team and "
                  "we will help you sign up.</p>")


def page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                 "X-Content-Type-Options": "nosniff"})


def not_found() -> HTMLResponse:
    return page("Link not found", NOT_FOUND_BODY, 404)


# --- clicks ----------------------------------------------------------------------------------

def _safe_target(url: str | None) -> bool:
    """Defence in depth: the registry only ever holds http(s) URLs with a host."""
    return bool(url) and re.match(r"^https?://[^/\s\\]+", url, re.IGNORECASE) is not None


# The click path's statements, built once (building one costs more than running it).
_LINK = sa.select(links.c.id, links.c.campaign_id, links.c.url).where(links.c.id == sa.bindparam("link_id"))
_WHO = (sa.select(ledger.c.id, ledger.c.campaign_id, ledger.c.segment, batches.c.send_id)
        .select_from(ledger.outerjoin(batches, ledger.c.batch_id == batches.c.id))
        .where(ledger.c.id == sa.bindparam("ledger_id")))
_CLICK = events.insert()


def record_click(conn: Connection, link_key: bytes, token: str, *, method: str,
                 user_agent: str | None, ip: str | None) -> str | None:
    """The URL to redirect to (after recording the click), or None for a 404.

    Looks the link up by id, checks the recipient's ledger row belongs to the link's
    campaign, inserts one event, then runs the machine pass for this recipient.
    """
    tok = read_token(link_key, "c", token)
    if tok is None:
        return None
    link = conn.execute(_LINK, {"link_id": tok.link_id}).first()
    if link is None or not _safe_target(link.url):
        return None
    if tok.ledger_id == TEST_RECIPIENT:
        return link.url
    who = conn.execute(_WHO, {"ledger_id": tok.ledger_id}).first()
    if who is None or who.campaign_id != link.campaign_id:
        return None
    now = utcnow()
    ua = (user_agent or "")[:1000] or None
    reason = machines.request_reason(method, ua)
    conn.execute(_CLICK, dict(
        dedupe_key=uuid.uuid4().hex, event="click", at=now, source="tracker",
        campaign_id=link.campaign_id, ledger_id=who.id, send_id=who.send_id, segment=who.segment,
        link_id=link.id, url=link.url, user_agent=ua, ip_hash=webhook.ip_hash(link_key, ip),
        method=method[:10], machine=reason is not None, machine_reason=reason, received_at=now))
    machines.reclassify(conn, [(link.campaign_id, who.id)])
    return link.url


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
    row = conn.execute(sa.select(ledger.c.id, ledger.c.campaign_id, ledger.c.segment,
                                 ledger.c.email, ledger.c.email_key)
                       .where(ledger.c.id == tok.ledger_id)).first()
    if row is None:
        return None
    suppressed = conn.execute(sa.select(suppressions.c.email_key)
                              .where(suppressions.c.email_key == row.email_key)).first() is not None
    return Recipient(row.id, row.campaign_id, row.segment, row.email, suppressed)


def unsubscribe(conn: Connection, link_key: bytes, who: Recipient, *, method: str,
                user_agent: str | None, ip: str | None) -> bool:
    """Suppress the address and record one ``unsubscribe`` event; True if newly suppressed.

    The event's dedupe key is fixed per recipient, so a second POST adds nothing.
    """
    added = add_suppression(conn, who.email, "unsubscribe", source="link", campaign_id=who.campaign_id)
    now = utcnow()
    insert_ignore(conn, events, [{
        "dedupe_key": hashlib.sha256(f"unsubscribe|tracker|{who.ledger_id}".encode()).hexdigest(),
        "event": "unsubscribe", "at": now, "source": "tracker", "campaign_id": who.campaign_id,
        "ledger_id": who.ledger_id, "segment": who.segment, "method": method[:10],
        "user_agent": (user_agent or "")[:1000] or None, "ip_hash": webhook.ip_hash(link_key, ip),
        "machine": False, "received_at": now,
    }], ["dedupe_key"])
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

def create_app(settings: Settings, engine: Engine | None = None, *,
               replay_window: float = webhook.REPLAY_WINDOW, max_body: int = webhook.MAX_BODY) -> Starlette:
    """The tracking service over ``engine`` (default: the store at ``settings.database_url``).

    A missing link secret or a malformed webhook key fails here, at start-up, as a
    ConfigError; a *missing* webhook key only makes the webhook refuse every post.
    """
    link_key = settings.require_link_secret()
    public_key = (webhook.load_public_key(settings.sendgrid_webhook_public_key)
                  if settings.sendgrid_webhook_public_key else None)
    owns_engine = engine is None
    engine = engine if engine is not None else open_store(settings.database_url)
    # SQLite has one writer. Threads that meet inside it wait in its busy handler, which
    # sleeps in growing steps: with 4 concurrent clicks the p99 went from ~7 ms to 30-900 ms.
    # Queue this process's write transactions on a lock instead (PostgreSQL needs none).
    writing = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
    svc = Service(engine=engine, link_key=link_key, public_key=public_key,
                  replay_window=replay_window, max_body=max_body)
    if public_key is None:
        log.warning("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid will refuse every "
                    "post (403). Set it to the verification key from SendGrid's Event Webhook settings.")

    async def click(request: Request) -> Response:
        token = request.path_params["token"]

        def work():
            with writing, svc.engine.begin() as conn:
                return record_click(conn, svc.link_key, token, method=request.method,
                                    user_agent=request.headers.get("user-agent"),
                                    ip=_client_ip(request))
        try:
            target = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - whatever broke, the reader still gets their page
            # A click must still reach its course page: look the link up again read-only.
            log.error("could not record a click (%s); redirecting without it", _db_error(exc))
            try:
                target = await run_in_threadpool(_target_only, svc, token)
            except Exception:  # noqa: BLE001
                return page("Please try again", "<p>Something went wrong on our side. "
                            "Please try the link again in a minute.</p>", 503)
        if target is None:
            return not_found()
        return RedirectResponse(target, status_code=302,
                                headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    async def unsubscribe_page(request: Request) -> Response:
        token = request.path_params["token"]

        def work():
            with svc.engine.connect() as conn:
                return find_recipient(conn, svc.link_key, token)
        try:
            who = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001
            log.error("could not show an unsubscribe page (%s)", _db_error(exc))
            return page("Please try again", "<p>Something went wrong on our side. "
                        "Please try the link again in a minute.</p>", 503)
        if who is None:
            return not_found()
        if who.ledger_id == TEST_RECIPIENT:
            return page("Unsubscribe", "<p>This is a test or preview link: it does not belong to "
                        "anyone, so there is nothing to unsubscribe.</p>")
        if who.suppressed:
            return page("You are unsubscribed",
                        f"<p>{html.escape(mask_email(who.email))} is already off our mailing list. "
                        "You will not get any more EQUIP course emails.</p>")
        return page("Unsubscribe from EQUIP course emails",
                    f"<p>Stop sending EQUIP course emails to {html.escape(mask_email(who.email))}?</p>"
                    '<form method="post">'
                    '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
                    '<button type="submit">Unsubscribe</button>'
                    "</form>"
                    "<p>If you got here by mistake, just close this page: nothing has changed.</p>")

    async def unsubscribe_post(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            await read_body(request, MAX_UNSUBSCRIBE_BODY)   # "List-Unsubscribe=One-Click" or the form
        except webhook.TooLarge:
            return page("Request too large", "<p>That request was too large.</p>", 413)

        def work():
            with writing, svc.engine.begin() as conn:
                who = find_recipient(conn, svc.link_key, token)
                if who is None or who.ledger_id == TEST_RECIPIENT:
                    return who, False
                return who, unsubscribe(conn, svc.link_key, who, method="POST",
                                        user_agent=request.headers.get("user-agent"),
                                        ip=_client_ip(request))
        try:
            who, added = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001 - say plainly that it did not work
            log.error("could not record an unsubscribe (%s)", _db_error(exc))
            return page("Please try again", "<p>Something went wrong on our side and you are "
                        "<strong>not</strong> unsubscribed yet. Please try again in a minute.</p>", 500)
        if who is None:
            return not_found()
        if who.ledger_id == TEST_RECIPIENT:
            return page("Unsubscribe", "<p>This was a test or preview link: nothing has changed.</p>")
        if added:
            log.info("unsubscribed %s (campaign %s)", mask_email(who.email), who.campaign_id)
        return page("You are unsubscribed",
                    f"<p>{html.escape(mask_email(who.email))} will not get any more EQUIP course "
                    "emails.</p><p>If this was a mistake, contact the EQUIP team.</p>")

    async def sendgrid_webhook(request: Request) -> Response:
        if svc.public_key is None:
            # Never accept unsigned posts: anyone could then invent bounces and suppress staff.
            log.warning("refused a SendGrid webhook post: SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
            return JSONResponse({"error": "webhook verification key is not configured"}, 403)
        try:
            body = await read_body(request, svc.max_body)
            webhook.verify_signature(svc.public_key, body,
                                     request.headers.get(webhook.SIGNATURE_HEADER),
                                     request.headers.get(webhook.TIMESTAMP_HEADER),
                                     window=svc.replay_window)
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
            log.error("could not store %d SendGrid events (%s); answered 500 so SendGrid retries",
                      len(items), _db_error(exc))
            return JSONResponse({"error": "could not store the events; please retry"}, 500)
        log.info("SendGrid webhook: %d events, %d stored, %d duplicates",
                 result.received, result.stored, result.duplicates)
        return JSONResponse(result.as_dict())

    async def healthz(request: Request) -> Response:
        def work():
            with svc.engine.connect() as conn:
                return conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
        try:
            version = await run_in_threadpool(work)
        except Exception as exc:  # noqa: BLE001
            log.error("health check: database error (%s)", _db_error(exc))
            return JSONResponse({"status": "error", "db": "error"}, 503)
        return JSONResponse({"status": "ok", "db": "ok", "schema_version": int(version or 0),
                             "webhook": "ready" if svc.public_key is not None else "no key"})

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            return not_found()
        return page("Not allowed", "<p>That request is not supported here.</p>", exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if owns_engine:
            engine.dispose()

    app = Starlette(routes=[
        Route("/c/{token}", click, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
        Route("/u/{token}", unsubscribe_post, methods=["POST"]),
        Route("/webhooks/sendgrid", sendgrid_webhook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
    ], exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.router.redirect_slashes = False   # no redirects we did not decide on
    app.state.service = svc
    return app


def _target_only(svc: Service, token: str) -> str | None:
    """The redirect target without recording (used when the store cannot take the insert)."""
    with svc.engine.connect() as conn:
        tok = read_token(svc.link_key, "c", token)
        if tok is None:
            return None
        link = conn.execute(sa.select(links.c.campaign_id, links.c.url).where(links.c.id == tok.link_id)).first()
        if link is None or not _safe_target(link.url):
            return None
        if tok.ledger_id != TEST_RECIPIENT:
            owner = conn.execute(sa.select(ledger.c.campaign_id).where(ledger.c.id == tok.ledger_id)).scalar()
            if owner != link.campaign_id:
                return None
        return link.url
