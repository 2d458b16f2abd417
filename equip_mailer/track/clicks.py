"""``GET|HEAD /c/<reader token>/<link id>``: a reader's click on a tracked link, answered
with a redirect (and ``/c/<click token>``, the one-token form of mail sent before).

Verify the signed token, look the link up in the campaign's registry (``lookups``), queue
one click event (``click_writer``), redirect (302) to the registered URL (UTM already
applied). The target never comes from the request, so a forged, altered or cross-campaign
token, or a ``?url=`` added to a good one, leads only to a plain 404 page. The sign-up link
of a course taken here (``sign_up: equip``) leads instead to that reader's own sign-up
page (``/s/<token>``, signed for this course and reader); for a test send, to the course's
open sign-up page, which is the link's registered URL. HEAD is recorded
as a machine click and redirected. Ledger id 0 (test sends and previews) redirects without
recording anything. Like listmonk, a click is one insert and a redirect; every click is its
own event, and reports count unique clickers.

The redirect is decided in the event loop: the token check, then the link and the recipient
from the cache, or one indexed SELECT on a miss. Nothing here logs an address, a token or
an IP; the IP is stored only as a keyed hash.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.engine import Row
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.send.links import TEST_RECIPIENT, Token, read_click
from equip_mailer.signup.tokens import signup_token
from equip_mailer.store import utcnow

from . import machines
from .click_writer import ClickRow
from .lookups import Link, Reader
from .pages import not_found, try_again_later
from .privacy import client_ip, db_error, ip_hash
from .state import Service

log = logging.getLogger("equip_mailer.track")

REDIRECT_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


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
) -> ClickRow:
    """The ``events`` row for one click, with the request's own machine signals (HEAD, user
    agent); the timing signals come from ``machines.reclassify`` after the insert. A click
    on the mail of someone ``forget`` erased is kept as forget keeps their earlier ones: a
    count, without the user agent or the IP hash."""
    now = utcnow()
    ua = (user_agent or "")[:1000] or None
    reason = machines.request_reason(method, ua)
    if reader.erased:
        ua = ip = None
    return {
        "dedupe_key": uuid.uuid4().hex,
        "event": "click",
        "at": now,
        "source": "tracker",
        "campaign_id": link.campaign_id,
        "ledger_id": ledger_id,
        "send_id": reader.send_id,
        "segment": reader.segment,
        "link_id": link_id,
        "url": link.url,
        "user_agent": ua,
        "ip_hash": ip_hash(link_key, ip),
        "method": method[:10],
        "machine": reason is not None,
        "machine_reason": reason,
        "received_at": now,
    }


async def _fetch(svc: Service, tok: Token) -> Row | None:
    """The lookup's row from the database, for a token the cache could not answer."""

    def lookup() -> Row | None:
        with svc.engine.connect() as conn:
            return svc.lookups.fetch(conn, tok.link_id, tok.ledger_id)

    # SQLite answers this indexed read (WAL: never blocked by a writer) in well under a
    # millisecond, less than the hop to a worker thread would cost; a server database goes
    # through the threadpool.
    return lookup() if svc.sqlite else await run_in_threadpool(lookup)


def _record(svc: Service, request: Request, tok: Token, link: Link, reader: Reader) -> None:
    try:
        svc.clicks.submit(
            click_event(
                svc.link_key,
                tok.link_id,
                tok.ledger_id,
                link,
                reader,
                method=request.method,
                user_agent=request.headers.get("user-agent"),
                ip=client_ip(request),
            )
        )
    except Exception as exc:  # noqa: BLE001 - whatever broke, the reader still gets their page
        log.error("could not record a click (%s); redirecting without it", db_error(exc))


async def click(request: Request) -> Response:
    svc = Service.of(request)
    params = request.path_params
    tok = read_click(svc.link_key, params["token"], params.get("link"))
    if tok is None:
        return not_found()
    link, reader, complete = svc.lookups.cached(tok.link_id, tok.ledger_id)
    if not complete:
        try:
            row = await _fetch(svc, tok)
        except Exception as exc:  # noqa: BLE001
            log.error("could not look a click's link up (%s)", db_error(exc))
            return try_again_later()
        link, reader = svc.lookups.store(row, tok.link_id, tok.ledger_id)
    if link is None:
        return not_found()
    location = link.location
    if tok.ledger_id != TEST_RECIPIENT:
        if reader is None or reader.campaign_id != link.campaign_id:
            return not_found()
        _record(svc, request, tok, link, reader)
        await svc.clicks.keep_up()
        if link.signup_course is not None:  # a course taken here: this reader's own page
            location = "/s/" + signup_token(svc.link_key, link.signup_course, tok.ledger_id)
    return Response(status_code=302, headers={"location": location, **REDIRECT_HEADERS})


ROUTES: list[BaseRoute] = [
    Route("/c/{token}/{link}", click, methods=["GET", "HEAD"]),
    Route("/c/{token}", click, methods=["GET", "HEAD"]),
]
