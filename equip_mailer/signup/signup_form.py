"""``/s/<token>`` and ``/i/<token>``: the sign-up form, for a list reader (the email's tracked
link redirects here, prefilled from their list row) or for an address that followed the
link mailed by the open sign-up page. One press confirms; the answer is a redirect to the
registration (post/redirect/get), so a reload or the back button never signs up twice, and a
second submit finds the existing registration anyway. Tokens we did not sign, or that name
a reader of another campaign, get the one "link not found" page.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from equip_mailer.people.records import ERASED_PREFIX
from equip_mailer.store import ledger, signup_invites
from equip_mailer.track.pages import not_found, try_again_later
from equip_mailer.track.privacy import db_error
from equip_mailer.track.state import Service

from . import forms, pages, registration, service, tokens, web
from .catalogue import CourseInfo, load_course
from .web import SignupState

log = logging.getLogger("equip_mailer.signup")


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


_LEDGER_ROW = sa.select(ledger).where(ledger.c.id == sa.bindparam("ledger_id"))  # built once


@dataclass(frozen=True)
class Erased:
    """A list reader's link whose reader ``forget`` erased: their old email still holds it,
    but it must not sign anyone up in the name of the hash left in their ledger row."""

    course: CourseInfo


@dataclass(frozen=True)
class Expired:
    """An open sign-up link past its days: the page links the course's open page, where a
    new one is asked for (someone who came by a shared link may know no other way there)."""

    course: CourseInfo


def _signup_target(request: Request, token: str) -> tuple[CourseInfo, Reader] | Erased | None:
    ids = tokens.read_signup_token(Service.of(request).link_key, token)
    if ids is None:
        return None
    with Service.of(request).engine.connect() as conn:
        course = load_course(conn, ids[0])
        row = conn.execute(_LEDGER_ROW, {"ledger_id": ids[1]}).first()
    if course is None or row is None or not course.hosted or row.campaign_id != course.campaign_id:
        return None
    if row.email_key.startswith(ERASED_PREFIX):
        return Erased(course)
    name = " ".join(part for part in (row.first_name, row.last_name) if part)
    return course, Reader(row.email, name, row.practice or "", row.role or "", row.id, "list")


def _invite_target(request: Request, token: str) -> tuple[CourseInfo, Reader] | Expired | None:
    """The invite's course and address; ``Expired`` for an old link; None if not ours."""
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
        if invite.created_at < SignupState.of(request).now() - dt.timedelta(
            days=service.INVITE_DAYS
        ):
            return Expired(course)
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


def _all_full(course: CourseInfo, free: dict, now: dt.datetime) -> bool:
    """Whether every date the form would offer is taken. Judged on those dates only: a date
    already over may have places left, unused."""
    offered = [None] if course.attend_all else [s.id for s in course.sessions if s.starts_at > now]
    return all(free[k].full for k in offered if k in free)


def _form_page(
    request: Request,
    course: CourseInfo,
    reader: Reader,
    free: dict,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    now = SignupState.of(request).now()
    sessions = [s for s in course.sessions if s.starts_at > now]
    all_full = _all_full(course, free, now)
    first = f"session-{sessions[0].id}" if sessions else "session"
    return web.with_csrf(
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
    """To their place: ``?new=1`` just made it; ``?again=1`` they tried to sign up again
    (the page says they had already). Their own link, opened later, carries neither."""
    token = tokens.registration_token(Service.of(request).link_key, registration_id)
    return RedirectResponse(f"/r/{token}" + ("?new=1" if fresh else "?again=1"), status_code=303)


async def _show_form(request: Request, target: tuple[CourseInfo, Reader]) -> Response:
    course, reader = target
    now = SignupState.of(request).now()

    def work():
        with Service.of(request).engine.connect() as conn:
            existing = registration.find_registration(conn, course.id, reader.email)
            return existing, registration.availability(conn, course)

    existing, free = await web.db(work)
    if existing is not None and existing.status != "cancelled":
        return _registration_redirect(request, existing.id, fresh=False)
    if not course.is_open(now):
        return web.closed(course)
    if not course.waiting_list and _all_full(course, free, now):
        return web.full(course)
    values = {"name": reader.name, "practice": reader.practice, "role": reader.role}
    return _form_page(request, course, reader, free, values, {})


async def _submit(request: Request, target: tuple[CourseInfo, Reader]) -> Response:
    course, reader = target
    form = await web.read_form(request)
    if form is None:
        return web.too_large()
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return web.expired_form()
    now = SignupState.of(request).now()
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
            state = SignupState.of(request)
            links = state.links(request)
            outcome = await state.writer.run(
                lambda conn: service.sign_up_in(
                    conn, links, course.id, applicant, session_id, now, reader.invite_id
                )
            )
        except registration.Refused as refused:
            if refused.reason == "closed":
                return web.closed(course)
            if refused.reason == "full" and course.attend_all:
                return web.full(course)
            # Only a chosen date is refused now; it filled up, and another may have places.
            full = refused.reason == "full"
            errors["session"] = (
                "That date is full; please choose another." if full else str(refused)
            )
        else:
            if outcome.created:
                web.wake(request)
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

    free = await web.db(availability)
    if not course.waiting_list and _all_full(course, free, now):  # no other date to choose
        return web.full(course)
    return _form_page(request, course, reader, free, checked.values, errors, 400)


async def _guarded(request: Request, find, handle) -> Response:
    token = request.path_params["token"]
    try:
        target = await web.db(lambda: find(request, token))
    except Exception as exc:  # noqa: BLE001 - the database did not answer
        log.error("could not look a sign-up link up (%s)", db_error(exc))
        return try_again_later()
    if target is None:
        return not_found()
    if isinstance(target, Erased):
        return pages.message(
            "This link no longer works",
            [
                "The details this link was made for have been erased. To sign up, give "
                "your address on the course's own page and we will email you a link."
            ],
            410,
            link=(
                "Sign up with your address",
                tokens.open_signup_path(target.course.campaign_id, target.course.course_id),
            ),
        )
    if isinstance(target, Expired):
        return pages.message(
            "This link has expired",
            ["Sign-up links work for 7 days. Please ask for a new one on the course's page."],
            410,
            link=(
                f"Ask for a new link to sign up for {target.course.name}",
                tokens.open_signup_path(target.course.campaign_id, target.course.course_id),
            ),
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
