"""Signing in and out: ask for a link, open it, press the button, sign out.

Asking for a link answers with the same page, after the same minimum time, whether or not
the address is on the team and whether or not a limit was reached, so the form cannot be
used to find out who is on the team. Opening the link shows a button rather than signing
in at once: mail scanners (Safe Links and friends) open every link in a message, and would
otherwise use it up before the person could.

The page someone was sent to sign in from (``next``) is kept in a short-lived cookie of the
browser that asked for the link, so pressing the button there lands on that page rather
than on the campaigns list; a link opened in another browser lands on the campaigns list.
The mailed link itself carries no destination, so nobody can have a link mailed to a team
member that lands on a page of their choosing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import quote, unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.config import mask_email
from equip_mailer.send.notices import enqueue
from equip_mailer.store import utcnow
from equip_mailer.track.privacy import client_ip
from equip_mailer.track.state import Service

from .. import audit, csrf, rate_limits, sessions, signin_links
from ..guard import Member, current_member, members_only, refused, safe_next
from ..members import address_key
from ..render import page, see_other
from ..signin_mail import sign_in_notice
from ..state import TeamState

log = logging.getLogger("equip_mailer.team")

MIN_ANSWER = 0.25  # seconds: every answer to "send me a link" takes at least this long
NEXT_COOKIE = "equip_team_next"  # where to go after the link's button, in this browser


def _remember_next(request: Request, response: Response, target: str, secure: bool) -> None:
    """Keep ``target`` (already ``safe_next``) for the button of the link about to be mailed.
    The answer depends on nothing but the form's ``next`` and this browser's cookie, never on
    whether the address is on the team (nor, so, on the second it was given in)."""
    if target == "/team/":
        if NEXT_COOKIE in request.cookies:  # an earlier request's, now out of date
            response.delete_cookie(NEXT_COOKIE, path="/team/", secure=secure, httponly=True)
        return
    response.set_cookie(
        NEXT_COOKIE,
        quote(target, safe=""),
        max_age=int(signin_links.LIFETIME.total_seconds()),
        path="/team/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def _remembered_next(request: Request) -> str:
    return safe_next(unquote(request.cookies.get(NEXT_COOKIE, ""))[:2000])


def _with_pre_cookie(request: Request, template: str, context: dict, status: int = 200) -> Response:
    """A page whose form is bound to the pre-session cookie (set here if the browser has none)."""
    state = TeamState.of(request)
    binding, new = csrf.ensure_pre_binding(request)
    response = page(
        request, template, {**context, "csrf_token": csrf.token(state.key, binding)}, status
    )
    if new:
        csrf.set_pre_cookie(response, binding, state.secure)
    return response


def _sign_in_form(request: Request, status: int = 200, **context: object) -> Response:
    return _with_pre_cookie(
        request,
        "sign_in.html.j2",
        {"title": "Sign in", "next": safe_next(request.query_params.get("next")), **context},
        status,
    )


async def team_root(request: Request) -> Response:
    return see_other("/team/")


async def sign_in_page(request: Request) -> Response:
    if await current_member(request) is not None:
        return see_other(safe_next(request.query_params.get("next")))
    return _sign_in_form(
        request,
        signed_out=request.query_params.get("signed_out") == "1",
        unsaved=request.query_params.get("unsaved") == "1",
    )


def _plausible(address: str) -> bool:
    local, _, domain = address.partition("@")
    return 0 < len(address) <= 320 and bool(local) and "." in domain and " " not in address


def _ask_for_link(svc: Service, state: TeamState, address: str, ip: str | None) -> str:
    """Count the request and, for a team address within its limits, store a link and its
    mail in one transaction. Returns "limited" (too many from this IP) or "answered"."""
    email_key = address_key(address)
    sent = False
    with svc.writing, svc.engine.begin() as conn:
        now = utcnow()
        ip_hash = rate_limits.keyed_hash(state.key, "ip", ip or "unknown")
        if not rate_limits.allow(conn, rate_limits.SIGN_IN_PER_IP, ip_hash, now):
            return "limited"
        address_hash = rate_limits.keyed_hash(state.key, "address", email_key)
        within = rate_limits.allow(conn, rate_limits.SIGN_IN_PER_ADDRESS, address_hash, now)
        if within and email_key in state.team:
            token = signin_links.issue(conn, email_key, now)
            token_hash = signin_links.token_hash(token)
            enqueue(conn, sign_in_notice(state, email_key, token, token_hash))
            sent = True
    if sent:
        svc.notices.wake()
        log.info("team: sign-in link mailed to %s", mask_email(email_key))
    else:
        log.info(
            "team: no sign-in link for %s (not on the team, or over its limit)",
            mask_email(email_key),
        )
    return "answered"


async def request_link(request: Request) -> Response:
    started = time.monotonic()
    state = TeamState.of(request)
    form = await request.form()
    if not csrf.valid(state.key, csrf.pre_binding(request), form.get(csrf.FIELD)):
        return refused(request)
    address = str(form.get("email") or "").strip()
    target = safe_next(str(form.get("next") or "")[:2000])
    if not _plausible(address):
        return _sign_in_form(
            request,
            400,
            email=address[:320],
            next=target,
            error="Enter your email address, like name@nhs.net.",
        )
    outcome = await run_in_threadpool(
        _ask_for_link, Service.of(request), state, address, client_ip(request)
    )
    await asyncio.sleep(max(0.0, MIN_ANSWER - (time.monotonic() - started)))
    if outcome == "limited":
        return page(
            request,
            "problem.html.j2",
            {
                "title": "Too many requests",
                "message": "Too many sign-in links were asked for from this network. "
                "Please wait 15 minutes and try again.",
            },
            429,
        )
    response = page(request, "check_mail.html.j2", {"title": "Check your email"})
    _remember_next(request, response, target, state.secure)
    return response


async def link_page(request: Request) -> Response:
    token = request.path_params["token"]
    engine = Service.of(request).engine

    def look() -> bool:
        with engine.connect() as conn:
            return signin_links.usable(conn, token, utcnow())

    if len(token) > 100 or not await run_in_threadpool(look):
        return page(request, "link_dead.html.j2", {"title": "This link cannot be used"}, 410)
    return _with_pre_cookie(request, "link.html.j2", {"title": "Sign in", "token": token})


def _open_session(svc: Service, state: TeamState, token: str, old_cookie: str | None) -> str | None:
    """Use the link and start a session for its address; None if the link is dead."""
    with svc.writing, svc.engine.begin() as conn:
        now = utcnow()
        email_key = signin_links.redeem(conn, token, now)
        if email_key is None or email_key not in state.team:
            return None
        old = sessions.find(conn, old_cookie, now)
        if old is not None:  # never keep a session id from before sign-in (fixation)
            sessions.revoke(conn, old, now)
        session_id, _session = sessions.start(conn, email_key, now)
        audit.record(
            conn, email_key, "signed in", "Signed in with a link from their email.", at=now
        )
    log.info("team: %s signed in", mask_email(email_key))
    return session_id


async def use_link(request: Request) -> Response:
    state = TeamState.of(request)
    form = await request.form()
    if not csrf.valid(state.key, csrf.pre_binding(request), form.get(csrf.FIELD)):
        return refused(request)
    token = request.path_params["token"]
    old_cookie = request.cookies.get(sessions.cookie_name(state.secure))
    session_id = await run_in_threadpool(
        _open_session, Service.of(request), state, token, old_cookie
    )
    if session_id is None:
        return page(request, "link_dead.html.j2", {"title": "This link cannot be used"}, 410)
    response = see_other(_remembered_next(request))
    sessions.set_cookie(response, session_id, state.secure)
    response.delete_cookie(NEXT_COOKIE, path="/team/", secure=state.secure, httponly=True)
    return response


@members_only
async def sign_out(request: Request, member: Member) -> Response:
    state, svc = TeamState.of(request), Service.of(request)

    def end() -> None:
        with svc.writing, svc.engine.begin() as conn:
            now = utcnow()
            sessions.revoke(conn, member.session, now)
            audit.record(conn, member.email, "signed out", "Signed out.", at=now)

    await run_in_threadpool(end)
    response = see_other("/team/sign-in?signed_out=1")
    sessions.clear_cookie(response, state.secure)
    return response


ROUTES: list[BaseRoute] = [
    Route("/team", team_root, methods=["GET"]),
    Route("/team/sign-in", sign_in_page, methods=["GET"]),
    Route("/team/sign-in", request_link, methods=["POST"]),
    Route("/team/sign-in/{token}", link_page, methods=["GET"]),
    Route("/team/sign-in/{token}", use_link, methods=["POST"]),
    Route("/team/sign-out", sign_out, methods=["POST"]),
]
