"""The sign-up pages, mounted on the tracking service (``track.app.ROUTES``).

- ``/s/<token>``: a list reader's sign-up page (the email's tracked link redirects here),
  prefilled from their list row; one press confirms.
- ``/join/<campaign>/<course>``: the open sign-up page ("share this course"): an address,
  to which a link is mailed (double opt-in, rate-limited).
- ``/i/<token>``: that mailed link: the same sign-up form, for the address it was sent to.
- ``/r/<token>``: a registration: its status, the calendar (``/r/<token>/calendar.ics``),
  and a button that cancels (GET never changes anything: mail scanners fetch links).

A good POST answers with a redirect to ``/r/`` (post/redirect/get), so a reload or the back
button shows the registration instead of sending the form again; a second submit finds the
existing registration anyway. Anything we did not sign, or that names a row of another
campaign, gets the service's one "link not found" page. No address, name or token is
logged: registrations are logged by id.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from equip_mailer.store import ledger, signup_invites, utcnow
from equip_mailer.track.body import read_body
from equip_mailer.track.pages import not_found, try_again_later
from equip_mailer.track.privacy import client_ip, db_error, ip_hash
from equip_mailer.track.state import Service
from equip_mailer.track.webhook_verify import TooLarge

from . import calendar, forms, mails, pages, registration, service, tokens
from .catalogue import CourseInfo, find_course, load_course
from .notify import MailLinks

log = logging.getLogger("equip_mailer.signup")


@dataclass(frozen=True)
class SignupSettings:
    """The sign-up pages' own settings on the app (``app.state.signup``): the public URL
    links in mails point to, and the clock deadlines are judged by (tests and demos of an
    old campaign set it)."""

    public_url: str
    now: Callable[[], dt.datetime] = utcnow

    @staticmethod
    def of(request: Request) -> SignupSettings:
        found: SignupSettings = request.app.state.signup
        return found


@dataclass(frozen=True)
class Reader:
    """Who a sign-up page is for: a list reader (ledger row) or an invited address."""

    email: str
    name: str
    practice: str
    role: str
    ledger_id: int | None
    source: str
    invite_id: int | None = None  # the open sign-up invite that led here


def _writer(request: Request) -> service.Writer:
    svc = Service.of(request)
    links = MailLinks(SignupSettings.of(request).public_url, svc.link_key)
    return service.Writer(svc.engine, links, svc.writing)


def _wake(request: Request) -> None:
    Service.of(request).notices.wake()


async def _db(request: Request, work: Callable[[], Any]) -> Any:
    return await run_in_threadpool(work)


async def _form(request: Request) -> FormData | None:
    try:
        body = await read_body(request, forms.MAX_FORM_BODY)
    except TooLarge:
        return None
    pairs: list[tuple[str, str | UploadFile]] = list(
        parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    )
    return FormData(pairs)


def _with_csrf(request: Request, render: Callable[[str], Response]) -> Response:
    """A page with a form: its CSRF field, and the cookie it pairs with when new."""
    cookie, new = forms.csrf_cookie(request)
    response = render(forms.csrf_field(Service.of(request).link_key, cookie, request.url.path))
    if new:
        response.set_cookie(
            forms.CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="lax",
            secure=SignupSettings.of(request).public_url.startswith("https://"),
            path="/",
        )
    return response


def _expired_form() -> Response:
    return pages.message(
        "Please try again",
        [
            "This form had expired, or was sent from another site. Please go back, reload "
            "the page and press the button again."
        ],
        403,
    )


def _closed(course: CourseInfo) -> Response:
    return pages.message(
        f"Sign-ups for {course.name} have closed",
        [
            "Sign-ups for this course have closed. Please contact the EQUIP team if you have "
            "a question about it."
        ],
    )


# ---------------------------------------------------------------------------------------
# Looking up what a token names


def _signup_target(request: Request, token: str) -> tuple[CourseInfo, Reader] | None:
    ids = tokens.read_signup_token(Service.of(request).link_key, token)
    if ids is None:
        return None
    with Service.of(request).engine.connect() as conn:
        course = load_course(conn, ids[0])
        row = conn.execute(sa.select(ledger).where(ledger.c.id == ids[1])).first()
    if course is None or row is None or not course.hosted or row.campaign_id != course.campaign_id:
        return None
    name = " ".join(part for part in (row.first_name, row.last_name) if part)
    return course, Reader(row.email, name, row.practice or "", row.role or "", row.id, "list")


def _invite_target(request: Request, token: str) -> tuple[CourseInfo, Reader] | str | None:
    """The invite's course and address; "expired" for an old link; None if not ours."""
    invite_id = tokens.read_invite_token(Service.of(request).link_key, token)
    if invite_id is None:
        return None
    with Service.of(request).engine.connect() as conn:
        invite = conn.execute(
            sa.select(signup_invites).where(signup_invites.c.id == invite_id)
        ).first()
        if invite is None:
            return None
        course = load_course(conn, invite.signup_course_id)
        if course is None or not course.hosted:
            return None
        if invite.created_at < SignupSettings.of(request).now() - dt.timedelta(
            days=service.INVITE_DAYS
        ):
            return "expired"
        listed = conn.execute(  # someone on the campaign's list who came by the open page
            sa.select(ledger).where(
                ledger.c.campaign_id == course.campaign_id, ledger.c.email_key == invite.email_key
            )
        ).first()
    if listed is not None:
        name = " ".join(p for p in (listed.first_name, listed.last_name) if p)
        return course, Reader(
            invite.email,
            name,
            listed.practice or "",
            listed.role or "",
            listed.id,
            "open",
            invite.id,
        )
    return course, Reader(invite.email, "", "", "", None, "open", invite.id)


# ---------------------------------------------------------------------------------------
# The sign-up form (/s/ and /i/)


def _form_page(
    request: Request,
    course: CourseInfo,
    reader: Reader,
    free: dict,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    now = SignupSettings.of(request).now()
    sessions = [s for s in course.sessions if s.starts_at > now]
    all_full = all(f.full for f in free.values())
    first = f"session-{sessions[0].id}" if sessions else "session"
    return _with_csrf(
        request,
        lambda csrf: pages.render(
            "signup.html.j2",
            status,
            title=f"Sign up for {course.name}",
            course=course,
            sessions=sessions,
            free=free,
            values=values,
            errors=errors,
            anchors={"session": first},
            csrf=csrf,
            email=reader.email,
            other_address_url=tokens.open_signup_path(course.campaign_id, course.course_id)
            if reader.source == "list"
            else None,
            button="Join the waiting list"
            if all_full and course.waiting_list
            else "Confirm my place",
        ),
    )


def _registration_redirect(request: Request, registration_id: int, fresh: bool) -> Response:
    token = tokens.registration_token(Service.of(request).link_key, registration_id)
    return RedirectResponse(f"/r/{token}" + ("?new=1" if fresh else ""), status_code=303)


async def _show_form(request: Request, target: tuple[CourseInfo, Reader]) -> Response:
    course, reader = target
    now = SignupSettings.of(request).now()

    def work():
        with Service.of(request).engine.connect() as conn:
            existing = registration.find_registration(conn, course.id, reader.email)
            return existing, registration.availability(conn, course)

    existing, free = await _db(request, work)
    if existing is not None and existing.status != "cancelled":
        return _registration_redirect(request, existing.id, fresh=False)
    if not course.is_open(now):
        return _closed(course)
    values = {"name": reader.name, "practice": reader.practice, "role": reader.role}
    return _form_page(request, course, reader, free, values, {})


async def _submit(request: Request, target: tuple[CourseInfo, Reader]) -> Response:
    course, reader = target
    form = await _form(request)
    if form is None:
        return pages.message("Request too large", ["That form was too large."], 413)
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return _expired_form()
    now = SignupSettings.of(request).now()
    open_ids = {s.id for s in course.sessions if s.starts_at > now}
    checked = forms.check_details(form, choose_session=not course.attend_all, session_ids=open_ids)
    errors = dict(checked.errors)
    if checked.ok:
        values = checked.values
        applicant = registration.Applicant(
            email=reader.email,
            name=values["name"],
            practice=values["practice"],
            role=values["role"],
            access_needs=values["access_needs"],
            ledger_id=reader.ledger_id,
            source=reader.source,
        )
        session_id = int(values["session"]) if "session" in values else None
        try:
            outcome = await _db(
                request,
                lambda: service.sign_up(
                    _writer(request), course.id, applicant, session_id, now, reader.invite_id
                ),
            )
        except registration.Refused as refused:
            if refused.reason == "closed":
                return _closed(course)
            errors["session" if not course.attend_all else "name"] = str(refused)
        else:
            if outcome.created:
                _wake(request)
                log.info(
                    "sign-up: registration %d %s (course %d)",
                    outcome.registration.id,
                    outcome.registration.status,
                    course.id,
                )
            return _registration_redirect(request, outcome.registration.id, outcome.created)

    def availability():
        with Service.of(request).engine.connect() as conn:
            return registration.availability(conn, course)

    free = await _db(request, availability)
    return _form_page(request, course, reader, free, checked.values, errors, 400)


async def _guarded(request: Request, find, handle) -> Response:
    token = request.path_params["token"]
    try:
        target = await _db(request, lambda: find(request, token))
    except Exception as exc:  # noqa: BLE001 - the database did not answer
        log.error("could not look a sign-up link up (%s)", db_error(exc))
        return try_again_later()
    if target is None:
        return not_found()
    if target == "expired":
        return pages.message(
            "This link has expired",
            ["Sign-up links work for 7 days. Please ask for a new one on the course's page."],
            410,
        )
    try:
        return await handle(request, target)
    except Exception as exc:  # noqa: BLE001
        log.error("sign-up page failed (%s)", db_error(exc))
        return try_again_later()


async def signup_page(request: Request) -> Response:
    return await _guarded(request, _signup_target, _show_form)


async def signup_post(request: Request) -> Response:
    return await _guarded(request, _signup_target, _submit)


async def invite_page(request: Request) -> Response:
    return await _guarded(request, _invite_target, _show_form)


async def invite_post(request: Request) -> Response:
    return await _guarded(request, _invite_target, _submit)


# ---------------------------------------------------------------------------------------
# The open sign-up page (/join/)


def _join_target(request: Request) -> tuple[CourseInfo, dict] | None:
    with Service.of(request).engine.connect() as conn:
        course = find_course(
            conn, request.path_params["campaign"][:100], request.path_params["course"][:100]
        )
        if course is None or not course.hosted or not course.active:
            return None
        return course, registration.availability(conn, course)


def _join_form(request, course, free, values, errors, status=200) -> Response:
    now = SignupSettings.of(request).now()
    return _with_csrf(
        request,
        lambda csrf: pages.render(
            "join.html.j2",
            status,
            title=f"Sign up for {course.name}",
            course=course,
            sessions=[s for s in course.sessions if s.starts_at > now],
            free=free,
            values=values,
            errors=errors,
            anchors={},
            csrf=csrf,
        ),
    )


async def join_page(request: Request) -> Response:
    try:
        found = await _db(request, lambda: _join_target(request))
    except Exception as exc:  # noqa: BLE001
        log.error("could not show an open sign-up page (%s)", db_error(exc))
        return try_again_later()
    if found is None:
        return not_found()
    course, free = found
    if not course.is_open(SignupSettings.of(request).now()):
        return _closed(course)
    return _join_form(request, course, free, {}, {})


async def join_post(request: Request) -> Response:
    try:
        found = await _db(request, lambda: _join_target(request))
    except Exception as exc:  # noqa: BLE001
        log.error("could not show an open sign-up page (%s)", db_error(exc))
        return try_again_later()
    if found is None:
        return not_found()
    course, free = found
    form = await _form(request)
    if form is None:
        return pages.message("Request too large", ["That form was too large."], 413)
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return _expired_form()
    now = SignupSettings.of(request).now()
    if not course.is_open(now):
        return _closed(course)
    checked = forms.check_email(form)
    if not checked.ok:
        return _join_form(request, course, free, checked.values, checked.errors, 400)
    hashed = ip_hash(Service.of(request).link_key, client_ip(request))
    try:
        invite_id = await _db(
            request,
            lambda: service.invite(_writer(request), course, checked.values["email"], hashed, now),
        )
    except Exception as exc:  # noqa: BLE001
        log.error("could not record an open sign-up (%s)", db_error(exc))
        return try_again_later()
    if invite_id is None:
        return pages.message(
            "Too many requests",
            [
                "We have sent several sign-up links from here or to that address recently. "
                "Please check your inbox (and junk folder), or try again in an hour."
            ],
            429,
        )
    _wake(request)
    log.info("sign-up: open invite %d (course %d)", invite_id, course.id)
    return pages.message(
        "Check your email",
        [
            f"We have sent a link to sign up for {course.name} to the address you gave. "
            "Follow it within 7 days to choose a date and sign up.",
            "No email? Check your junk folder, or go back and check the address.",
        ],
    )


# ---------------------------------------------------------------------------------------
# A registration (/r/)


def _registration_target(
    request: Request,
) -> tuple[registration.Registration, CourseInfo, int | None] | None:
    reg_id = tokens.read_registration_token(
        Service.of(request).link_key, request.path_params["token"]
    )
    if reg_id is None:
        return None
    with Service.of(request).engine.connect() as conn:
        reg = registration.get_registration(conn, reg_id)
        if reg is None:
            return None
        course = load_course(conn, reg.signup_course_id, include_inactive=True)
        if course is None:
            return None
        position = registration.waiting_position(conn, reg)
    return reg, course, position


async def _registration_lookup(request: Request):
    try:
        return await _db(request, lambda: _registration_target(request)), None
    except Exception as exc:  # noqa: BLE001
        log.error("could not look a registration up (%s)", db_error(exc))
        return None, try_again_later()


def _again_url(request: Request, reg, course: CourseInfo) -> str | None:
    if not course.is_open(SignupSettings.of(request).now()):
        return None
    if reg.ledger_id is not None and reg.source == "list":
        return "/s/" + tokens.signup_token(Service.of(request).link_key, course.id, reg.ledger_id)
    return tokens.open_signup_path(course.campaign_id, course.course_id)


async def registration_page(request: Request) -> Response:
    found, failed = await _registration_lookup(request)
    if failed:
        return failed
    if found is None:
        return not_found()
    reg, course, position = found
    sessions = registration.session_of(course, reg)
    token = request.path_params["token"]
    title = (
        f"Your place on {course.name}"
        if reg.status != "waiting"
        else f"Waiting list for {course.name}"
    )
    return _with_csrf(
        request,
        lambda csrf: pages.render(
            "registration.html.j2",
            title=title,
            reg=reg,
            course=course,
            sessions=sessions,
            position=position,
            fresh=request.query_params.get("new") == "1",
            just_now=request.query_params.get("new") == "1",
            had_place=reg.confirmed_at is not None,
            calendar_url=f"/r/{token}/calendar.ics",
            calendar_name=calendar.filename(course),
            again_url=_again_url(request, reg, course),
            csrf=csrf,
        ),
    )


async def registration_post(request: Request) -> Response:
    found, failed = await _registration_lookup(request)
    if failed:
        return failed
    if found is None:
        return not_found()
    reg = found[0]
    form = await _form(request)
    if form is None:
        return pages.message("Request too large", ["That form was too large."], 413)
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return _expired_form()
    now = SignupSettings.of(request).now()
    try:
        change = await _db(request, lambda: service.withdraw(_writer(request), reg.id, now))
    except Exception as exc:  # noqa: BLE001
        log.error("could not cancel a registration (%s)", db_error(exc))
        return pages.message(
            "Please try again",
            [
                "Something went wrong on our side and nothing was cancelled. "
                "Please try again in a minute."
            ],
            500,
        )
    if change.cancelled is not None:
        _wake(request)
        log.info("sign-up: registration %d cancelled; %d promoted", reg.id, len(change.promoted))
    return RedirectResponse(request.url.path, status_code=303)


async def registration_calendar(request: Request) -> Response:
    found, failed = await _registration_lookup(request)
    if failed:
        return failed
    if found is None or found[0].status != "confirmed":
        return not_found()
    reg, course, _ = found
    links = MailLinks(SignupSettings.of(request).public_url, Service.of(request).link_key)
    ctx = mails.Context(course, links.manage(reg.id), SignupSettings.of(request).now())
    attachment = mails.calendar_attachment(ctx, reg, registration.session_of(course, reg))
    return Response(
        attachment.data,
        media_type="text/calendar",
        headers={
            **pages.HEADERS,
            "Content-Type": attachment.content_type,
            "Content-Disposition": f'attachment; filename="{attachment.filename}"',
        },
    )


ROUTES: list[BaseRoute] = [
    Route("/s/{token}", signup_page, methods=["GET", "HEAD"]),
    Route("/s/{token}", signup_post, methods=["POST"]),
    Route("/i/{token}", invite_page, methods=["GET", "HEAD"]),
    Route("/i/{token}", invite_post, methods=["POST"]),
    Route("/join/{campaign}/{course}", join_page, methods=["GET", "HEAD"]),
    Route("/join/{campaign}/{course}", join_post, methods=["POST"]),
    Route("/r/{token}", registration_page, methods=["GET", "HEAD"]),
    Route("/r/{token}", registration_post, methods=["POST"]),
    Route("/r/{token}/calendar.ics", registration_calendar, methods=["GET"]),
]
