"""The lock on every team page: a live session of someone still on the team, and on every
POST a CSRF token bound to that session.

A page is a function ``async def page(request, member) -> Response`` wrapped in
``members_only``; without a session the visitor is sent to the sign-in page (and back
afterwards, to a path inside /team/ only, so the redirect cannot be pointed elsewhere).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from equip_mailer.store import utcnow
from equip_mailer.track.state import Service

from . import csrf, sessions
from .render import page, see_other
from .state import TeamState

SIGN_IN = "/team/sign-in"


@dataclass(frozen=True)
class Member:
    """The signed-in team member a page is served to."""

    email: str
    session: sessions.Session
    csrf_token: str


Page = Callable[[Request, Member], Awaitable[Response]]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path inside /team/, never another site."""
    if not target:
        return "/team/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not parts.path.startswith("/team/"):
        return "/team/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def current_member(request: Request) -> Member | None:
    """The member whose session cookie this request carries, if it is live and they are
    still on the team."""
    state = TeamState.of(request)
    cookie = request.cookies.get(sessions.cookie_name(state.secure))
    if not cookie:
        return None
    engine = Service.of(request).engine

    def look() -> sessions.Session | None:
        with engine.connect() as conn:
            return sessions.find(conn, cookie, utcnow())

    session = await run_in_threadpool(look)
    if session is None or session.email_key not in state.team:
        return None
    return Member(session.email_key, session, csrf.token(state.key, session.id_hash))


def refused(request: Request) -> Response:
    """403 for a form posted without its token (another site, or a page left open too long)."""
    return page(
        request,
        "problem.html.j2",
        {
            "title": "Please try again",
            "message": "This form had expired or did not come from these pages, so nothing "
            "was changed. Go back, reload the page and try again.",
        },
        403,
    )


def members_only(handler: Page) -> Callable[[Request], Awaitable[Response]]:
    @functools.wraps(handler)
    async def route(request: Request) -> Response:
        member = await current_member(request)
        if member is None:
            if request.method == "GET":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return see_other(f"{SIGN_IN}?next={quote(safe_next(target), safe='/')}")
            # A change posted after the session ended was not made: say so, and come back
            # to the page it was made from (a roster change: its session's roster; pages
            # send no Referer), never to the POST's own address.
            back = safe_next(request.url.path.partition("/people/")[0] or "/team/")
            return see_other(f"{SIGN_IN}?next={quote(back, safe='/')}&unsaved=1")
        if request.method == "POST":
            form = await request.form()
            state = TeamState.of(request)
            if not csrf.valid(state.key, member.session.id_hash, form.get(csrf.FIELD)):
                return refused(request)
        return await handler(request, member)

    return route
