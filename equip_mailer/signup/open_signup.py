"""``/join/<campaign>/<course>``: the open sign-up page ("share this course"), for people not
on the lists. It asks only for an address and mails a sign-up link to it (double opt-in), so
nobody can be signed up by someone else; how often is limited per address and per hashed IP
(``limits``). The page always says "check your email", whether or not the address is known.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from equip_mailer.track.pages import not_found, try_again_later
from equip_mailer.track.privacy import client_ip, db_error, ip_hash
from equip_mailer.track.state import Service

from . import forms, limits, mails, pages, registration, service, web
from .catalogue import CourseInfo, find_course
from .web import SignupState

log = logging.getLogger("equip_mailer.signup")


def _join_target(request: Request) -> tuple[CourseInfo, dict] | None:
    with Service.of(request).engine.connect() as conn:
        course = find_course(
            conn, request.path_params["campaign"][:100], request.path_params["course"][:100]
        )
        if course is None or not course.hosted or not course.active:
            return None
        return course, registration.availability(conn, course)


def _join_form(request, course, free, values, errors, status=200) -> Response:
    now = SignupState.of(request).now()
    return web.with_csrf(
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
        found = await web.db(lambda: _join_target(request))
    except Exception as exc:  # noqa: BLE001
        log.error("could not show an open sign-up page (%s)", db_error(exc))
        return try_again_later()
    if found is None:
        return not_found()
    course, free = found
    if not course.is_open(SignupState.of(request).now()):
        return web.closed(course)
    return _join_form(request, course, free, {}, {})


async def join_post(request: Request) -> Response:
    try:
        found = await web.db(lambda: _join_target(request))
    except Exception as exc:  # noqa: BLE001
        log.error("could not show an open sign-up page (%s)", db_error(exc))
        return try_again_later()
    if found is None:
        return not_found()
    course, free = found
    form = await web.read_form(request)
    if form is None:
        return web.too_large()
    if not forms.csrf_ok(Service.of(request).link_key, request, form):
        return web.expired_form()
    now = SignupState.of(request).now()
    if not course.is_open(now):
        return web.closed(course)
    checked = forms.check_email(form)
    if not checked.ok:
        return _join_form(request, course, free, checked.values, checked.errors, 400)
    hashed = ip_hash(Service.of(request).link_key, client_ip(request))
    try:
        state = SignupState.of(request)
        links = state.links(request)
        email = checked.values["email"]
        invite_id = await state.writer.run(
            lambda conn: service.invite_in(conn, links, course, email, hashed, now)
        )
    except Exception as exc:  # noqa: BLE001
        log.error("could not record an open sign-up (%s)", db_error(exc))
        return try_again_later()
    if invite_id == "address":
        return pages.message(
            "We have already sent you links today",
            [
                f"We have sent {limits.PER_ADDRESS} sign-up links to that address in the last "
                "day. Please look for them in your inbox (and junk folder): each works for "
                "7 days. You can ask for another tomorrow."
            ],
            429,
        )
    if isinstance(invite_id, str):  # "network"
        return pages.message(
            "Too many requests from your network",
            [
                "Many sign-up links have been asked for from your network (your practice or "
                "organisation shares one internet connection) in the last hour. Please try "
                "again in an hour, or email the EQUIP team, who can sign you up:"
            ],
            429,
            link=web.team_link(course),
        )
    web.wake(request)
    log.info("sign-up: open invite %d (course %d)", invite_id, course.id)
    return pages.message(
        "Check your email",
        [
            f"We have sent a link to sign up for {course.name} to the address you gave. "
            f"Follow it within 7 days to {mails.choose_and(course)}sign up.",
            "No email? Check your junk folder, or go back and check the address.",
        ],
    )
