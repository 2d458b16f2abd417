"""``/r/<token>``: one registration. GET shows it (status, dates, the calendar link, a cancel
button) and changes nothing, since mail scanners fetch links; POST cancels, which gives the
place to the first person waiting; ``/r/<token>/calendar.ics`` is the same calendar as the
confirmation mail's.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from equip_mailer.track.pages import not_found, try_again_later
from equip_mailer.track.privacy import db_error
from equip_mailer.track.state import Service

from . import calendar, forms, mails, pages, registration, service, tokens, web
from .catalogue import CourseInfo, load_course
from .web import SignupState

log = logging.getLogger("equip_mailer.signup")


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
        return await web.db(lambda: _registration_target(request)), None
    except Exception as exc:  # noqa: BLE001
        log.error("could not look a registration up (%s)", db_error(exc))
        return None, try_again_later()


def _still_to_come(request: Request, course: CourseInfo, reg) -> bool:
    """Whether the registration's dates have yet to start: only then can it be cancelled.
    Once under way or over it is history (the roster and attendance go by it), and a press
    on the confirmation's old link must not rewrite it. A course attended whole is under way
    from its first day: cancelling then would mark them absent from a day they came to and
    give the place to someone waiting, for a course half over."""
    now = SignupState.of(request).now()
    dates = registration.session_of(course, reg)
    return bool(dates) and all(s.starts_at > now for s in dates)


def _again_url(request: Request, reg, course: CourseInfo) -> str | None:
    if not course.is_open(SignupState.of(request).now()):
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
    return web.with_csrf(
        request,
        lambda csrf: pages.render(
            "registration.html.j2",
            title=title,
            reg=reg,
            course=course,
            sessions=sessions,
            position=position,
            again=request.query_params.get("again") == "1",
            just_now=request.query_params.get("new") == "1",
            had_place=reg.confirmed_at is not None,
            calendar_url=f"/r/{token}/calendar.ics",
            calendar_name=calendar.filename(course),
            again_url=_again_url(request, reg, course),
            can_cancel=_still_to_come(request, course, reg),
            csrf=csrf,
        ),
    )


async def registration_post(request: Request) -> Response:
    found, failed = await _registration_lookup(request)
    if failed:
        return failed
    if found is None:
        return not_found()
    reg, course, _ = found
    form = await web.read_form(request)
    if form is None:
        return web.too_large()
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return web.expired_form()
    if not _still_to_come(request, course, reg):  # the page no longer offers it
        return RedirectResponse(request.url.path, status_code=303)
    now = SignupState.of(request).now()
    try:
        state = SignupState.of(request)
        links = state.links(request)
        change = await state.writer.run(
            lambda conn: service.withdraw_in(conn, links, reg.id, now, "self")
        )
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
        web.wake(request)
        log.info("sign-up: registration %d cancelled; %d promoted", reg.id, len(change.promoted))
    return RedirectResponse(request.url.path, status_code=303)


async def registration_calendar(request: Request) -> Response:
    found, failed = await _registration_lookup(request)
    if failed:
        return failed
    if found is None or found[0].status != "confirmed":
        return not_found()
    reg, course, _ = found
    links = SignupState.of(request).links(request)
    ctx = mails.Context(course, links.manage(reg.id), SignupState.of(request).now())
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
