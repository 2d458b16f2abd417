"""What every sign-up page shares: the app's sign-up state (public URL, clock, writer), the
form body, the CSRF field and cookie, and the few plain pages (expired form, closed).

The state is ``app.state.signup``, made by ``install`` when the tracking app is built; a test
or a demo of an old campaign replaces its clock with ``dataclasses.replace``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import Response

from equip_mailer.store import utcnow
from equip_mailer.track.body import read_body
from equip_mailer.track.state import Service
from equip_mailer.track.webhook_verify import TooLarge

from . import forms, pages
from .catalogue import CourseInfo
from .notify import MailLinks
from .writer import RegistrationWriter


@dataclass(frozen=True)
class SignupState:
    """The sign-up pages' own part of the app: where links in mails point, the clock that
    deadlines are judged by, and the writer every change of places goes through."""

    public_url: str
    writer: RegistrationWriter
    now: Callable[[], dt.datetime] = field(default=utcnow)

    @staticmethod
    def of(request: Request) -> SignupState:
        found: SignupState = request.app.state.signup
        return found

    def links(self, request: Request) -> MailLinks:
        return MailLinks(self.public_url, Service.of(request).link_key)


def install(app: Starlette, public_url: str, engine: Engine, writing: Any) -> SignupState:
    state = SignupState(public_url=public_url, writer=RegistrationWriter(engine, writing))
    app.state.signup = state
    return state


async def db(work: Callable[[], Any]) -> Any:
    """A read in the threadpool (writes go through the writer)."""
    return await run_in_threadpool(work)


def wake(request: Request) -> None:
    """Send the mails just committed."""
    Service.of(request).notices.wake()


async def read_form(request: Request) -> FormData | None:
    """The urlencoded form, or None when the body is over ``forms.MAX_FORM_BODY``."""
    try:
        body = await read_body(request, forms.MAX_FORM_BODY)
    except TooLarge:
        return None
    pairs: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(pairs)


def with_csrf(request: Request, render: Callable[[str], Response]) -> Response:
    """A page with a form: its CSRF field, and the cookie it pairs with when new."""
    cookie, new = forms.csrf_cookie(request)
    response = render(forms.csrf_field(Service.of(request).link_key, cookie, request.url.path))
    if new:
        response.set_cookie(
            forms.CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=SignupState.of(request).public_url.startswith("https://"),
            path="/",
        )
    return response


def too_large() -> Response:
    return pages.message("Request too large", ["That form was too large."], 413)


def expired_form() -> Response:
    return pages.message(
        "Please try again",
        [
            "This form had expired, or was sent from another site. Please go back, reload "
            "the page and press the button again."
        ],
        403,
    )


def team_link(course: CourseInfo) -> tuple[str, str]:
    """The address the course's mails reply to, as a link: a reader who came from an email
    on a phone has nothing else to reach the team by."""
    address = course.reply_to_email or course.sender_email
    return address, f"mailto:{address}"


def closed(course: CourseInfo) -> Response:
    return pages.message(
        f"Sign-ups for {course.name} have closed",
        [
            "Sign-ups for this course have closed. If you have a question about it, "
            "please email the EQUIP team:"
        ],
        link=team_link(course),
    )


def full(course: CourseInfo) -> Response:
    """Every date still offered is taken and the course keeps no waiting list."""
    return pages.message(
        f"{course.name} is full",
        [
            "Every place on this course has been taken, and it has no waiting list. "
            "To ask about a place or a later course, please email the EQUIP team:"
        ],
        link=team_link(course),
    )
