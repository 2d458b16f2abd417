"""``/u/<reader token>``: unsubscribe, as a page with one button (GET) and as RFC 8058
one-click (POST). Mail sent before reader tokens has an older unsubscribe token there,
still answered.

GET shows a plain page with one confirm button and changes nothing: mail scanners fetch
every link, and must not unsubscribe anyone. POST - ``List-Unsubscribe=One-Click`` from the
mail client, or the page's form - suppresses the address and records one ``unsubscribe``
event, idempotently. Unlike a click, the POST is answered only once it is stored: its page
says "you are unsubscribed", so that must already be true.

Someone who unsubscribed with their own link can take it back from the same link
(``/u/<token>/resubscribe``, a POST from the page's button), as Mailchimp and listmonk allow:
otherwise a slip of the finger needs the team, and the team had no way to lift it. Only that
suppression is lifted; a bounce, a spam report, the team's or SendGrid's lists, and an
erasure stay, since the reader's click is no evidence against those.
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.config import mask_email
from equip_mailer.people.records import ERASED_PREFIX
from equip_mailer.send.links import TEST_RECIPIENT, read_unsubscribe
from equip_mailer.store import add_suppression, events, insert_ignore, ledger, suppressions, utcnow

from .body import read_body
from .pages import not_found, page, try_again_later
from .privacy import client_ip, db_error, ip_hash
from .state import Service
from .webhook_verify import TooLarge

log = logging.getLogger("equip_mailer.track")

MAX_UNSUBSCRIBE_BODY = 16 * 1024  # a one-click body is 26 bytes


@dataclass(frozen=True)
class Recipient:
    ledger_id: int
    campaign_id: str
    segment: str
    email: str
    suppressed: bool
    # suppressed by their own unsubscribe link (and nothing else), which they may take back
    undoable: bool = False
    key: str = ""  # the suppressions' and ledger's email_key

    @property
    def erased(self) -> bool:
        """``forget`` erased them: the row holds a keyed hash, not an address."""
        return self.email.startswith(ERASED_PREFIX)

    @property
    def shown(self) -> str:
        """How a page names the address: masked, and never the hash of an erased one."""
        return "This address" if self.erased else mask_email(self.email)


def find_recipient(conn: Connection, link_key: bytes, token: str) -> Recipient | None:
    """Whose unsubscribe token this is; None if it is not one of ours (or names no one)."""
    tok = read_unsubscribe(link_key, token)
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
    why = conn.execute(
        sa.select(suppressions.c.reason, suppressions.c.source).where(
            suppressions.c.email_key == row.email_key
        )
    ).first()
    undoable = why is not None and tuple(why) == OWN_UNSUBSCRIBE
    return Recipient(
        row.id, row.campaign_id, row.segment, row.email, why is not None, undoable, row.email_key
    )


OWN_UNSUBSCRIBE = ("unsubscribe", "link")  # (reason, source) of a suppression made here


def resubscribe(conn: Connection, who: Recipient) -> bool:
    """Lift the suppression their own unsubscribe made and record one ``resubscribe``
    event; True if lifted (False: not suppressed so, or not any more)."""
    if not who.undoable:
        return False
    lifted = conn.execute(
        suppressions.delete().where(
            suppressions.c.email_key == who.key,
            suppressions.c.reason == OWN_UNSUBSCRIBE[0],
            suppressions.c.source == OWN_UNSUBSCRIBE[1],
        )
    ).rowcount
    if not lifted:
        return False
    now = utcnow()
    conn.execute(
        events.insert().values(
            # one per change of mind: a reader may go and come back more than once
            dedupe_key=hashlib.sha256(
                f"resubscribe|tracker|{who.ledger_id}|{now.isoformat()}".encode()
            ).hexdigest(),
            event="resubscribe",
            at=now,
            source="tracker",
            campaign_id=who.campaign_id,
            ledger_id=who.ledger_id,
            segment=who.segment,
            method="POST",
            machine=False,
            received_at=now,
        )
    )
    return True


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

    The event's dedupe key is fixed per recipient and per time they took an unsubscribe
    back (``resubscribe``), so a second POST adds nothing but leaving again is recorded.
    For someone ``forget`` erased, it is a count only, as their other events are kept.
    """
    if who.erased:
        user_agent = ip = None
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
                    f"unsubscribe|tracker|{who.ledger_id}{_times_back(conn, who)}".encode()
                ).hexdigest(),
                "event": "unsubscribe",
                "at": now,
                "source": "tracker",
                "campaign_id": who.campaign_id,
                "ledger_id": who.ledger_id,
                "segment": who.segment,
                "method": method[:10],
                "user_agent": (user_agent or "")[:1000] or None,
                "ip_hash": ip_hash(link_key, ip),
                "machine": False,
                "received_at": now,
            }
        ],
        ["dedupe_key"],
    )
    return added


def _times_back(conn: Connection, who: Recipient) -> str:
    """ "" until the reader first took an unsubscribe back (so keys stored before stay as
    they were), then "|n" after n times, with any of their links."""
    if not who.key:
        return ""
    theirs = sa.select(ledger.c.id).where(ledger.c.email_key == who.key)
    n = conn.execute(
        sa.select(sa.func.count())
        .select_from(events)
        .where(events.c.event == "resubscribe", events.c.ledger_id.in_(theirs))
    ).scalar_one()
    return f"|{n}" if n else ""


async def unsubscribe_page(request: Request) -> Response:
    svc = Service.of(request)
    token = request.path_params["token"]

    def work() -> Recipient | None:
        with svc.engine.connect() as conn:
            return find_recipient(conn, svc.link_key, token)

    try:
        who = await run_in_threadpool(work)
    except Exception as exc:  # noqa: BLE001
        log.error("could not show an unsubscribe page (%s)", db_error(exc))
        return try_again_later()
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
            f"<p>{html.escape(who.shown)} is already off our mailing list. "
            "You will not get any more EQUIP course emails.</p>"
            + (_take_back_form(token) if who.undoable else ""),
        )
    return page(
        "Unsubscribe from EQUIP course emails",
        f"<p>Stop sending EQUIP course emails to {html.escape(who.shown)}?</p>"
        '<form method="post">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button>'
        "</form>"
        "<p>If you got here by mistake, just close this page: nothing has changed.</p>",
    )


async def unsubscribe_post(request: Request) -> Response:
    svc = Service.of(request)
    token = request.path_params["token"]
    try:
        await read_body(request, MAX_UNSUBSCRIBE_BODY)  # "List-Unsubscribe=One-Click" or the form
    except TooLarge:
        return page("Request too large", "<p>That request was too large.</p>", 413)

    def act(conn: Connection, who: Recipient) -> bool:
        return unsubscribe(
            conn,
            svc.link_key,
            who,
            method="POST",
            user_agent=request.headers.get("user-agent"),
            ip=client_ip(request),
        )

    try:
        who, added = await _change(svc, token, act)
    except Exception as exc:  # noqa: BLE001 - say plainly that it did not work
        log.error("could not record an unsubscribe (%s)", db_error(exc))
        return _not_done("unsubscribed")
    if who is None:
        return not_found()
    if who.ledger_id == TEST_RECIPIENT:
        return page("Unsubscribe", "<p>This was a test or preview link: nothing has changed.</p>")
    if added:
        log.info("unsubscribed %s (campaign %s)", mask_email(who.email), who.campaign_id)
    undoable = (added and not who.erased) or who.undoable
    return page(
        "You are unsubscribed",
        f"<p>{html.escape(who.shown)} will not get any more EQUIP course emails.</p>"
        + (_take_back_form(token) if undoable else ""),
    )


async def _change(
    svc: Service, token: str, act: Callable[[Connection, Recipient], bool]
) -> tuple[Recipient | None, bool]:
    """Find the token's recipient and ``act`` on them in one write transaction, answered
    only once stored (the page says it is done); (None or the test recipient, False) if
    there is nobody to change."""

    def work() -> tuple[Recipient | None, bool]:
        with svc.writing, svc.engine.begin() as conn:
            who = find_recipient(conn, svc.link_key, token)
            if who is None or who.ledger_id == TEST_RECIPIENT:
                return who, False
            return who, act(conn, who)

    return await run_in_threadpool(work)


def _not_done(what: str) -> Response:
    return page(
        "Please try again",
        f"<p>Something went wrong on our side and you are <strong>not</strong> {what} yet. "
        "Please try again in a minute.</p>",
        500,
    )


def _take_back_form(token: str) -> str:
    return (
        "<h2>Changed your mind?</h2>"
        f'<form method="post" action="/u/{html.escape(token)}/resubscribe">'
        '<button type="submit">Subscribe again</button>'
        "</form>"
    )


async def resubscribe_post(request: Request) -> Response:
    """The page's "Subscribe again": lifts only what this link's unsubscribe made."""
    svc = Service.of(request)
    token = request.path_params["token"]
    try:
        who, lifted = await _change(svc, token, resubscribe)
    except Exception as exc:  # noqa: BLE001 - say plainly that it did not work
        log.error("could not record a resubscribe (%s)", db_error(exc))
        return _not_done("subscribed again")
    if who is None:
        return not_found()
    if who.ledger_id == TEST_RECIPIENT:
        return page(
            "Subscribe again", "<p>This was a test or preview link: nothing has changed.</p>"
        )
    if lifted:
        log.info("resubscribed %s (campaign %s)", mask_email(who.email), who.campaign_id)
    if lifted or not who.suppressed:
        return page(
            "You are subscribed again" if lifted else "You are on our mailing list",
            f"<p>{html.escape(who.shown)} will get EQUIP course emails. Each one has a link "
            "to unsubscribe again at any time.</p>",
        )
    return page(
        "This link cannot turn emails back on",
        f"<p>{html.escape(who.shown)} was taken off our mailing list for another reason "
        "(for example, mail to it could not be delivered), so it cannot be put back from "
        "this page. Please reply to one of our emails and the EQUIP team will help.</p>",
    )


ROUTES: list[BaseRoute] = [
    Route("/u/{token}", unsubscribe_page, methods=["GET", "HEAD"]),
    Route("/u/{token}", unsubscribe_post, methods=["POST"]),
    Route("/u/{token}/resubscribe", resubscribe_post, methods=["POST"]),
]
