"""What the team changes on a roster: cancel a place, give a waiting person a place, mark
attendance. Each is a POST with its CSRF token (``members_only``), asked first on a GET page
that says what will happen, and written with its audit entry and its mail in one
transaction through the sign-up pages' writer:

- cancel (``withdraw_in``): the person gets the same mail as when they cancel themselves,
  and the first person waiting is promoted and mailed;
- give a place (``give_place_in``): the "a place has come up" mail, even out of turn;
- attendance (``people.attendance.record_attendance``, the function the ``attendance``
  command calls, which also raises the QI level).

The audit log names the registration, never the address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.people.attendance import AttendanceError, record_attendance
from equip_mailer.signup import service
from equip_mailer.signup.pages import when
from equip_mailer.signup.registration import Refused, get_registration
from equip_mailer.signup.roster import (
    RosterRow,
    SessionRoster,
)
from equip_mailer.signup.web import SignupState
from equip_mailer.track.state import Service

from .. import audit
from ..guard import Member, members_only
from ..render import page, see_other
from .rosters import session_id_param, session_roster

SOURCE = "team pages"


@dataclass(frozen=True)
class Target:
    """The registration a change is about, checked to be on this session's roster."""

    campaign_id: str
    session_id: int
    registration_id: int
    roster: SessionRoster
    row: RosterRow

    @property
    def back(self) -> str:
        return f"/team/campaigns/{self.campaign_id}/sessions/{self.session_id}"

    @property
    def who(self) -> str:
        """How the audit log names the person: their name and registration, no address."""
        return f"{self.row.name} (registration {self.registration_id})"

    @property
    def what(self) -> str:
        return f"{self.roster.course.name}, {self.roster.session.key}"


async def _target(request: Request) -> Target | None:
    campaign_id, session_id = request.path_params["campaign_id"], session_id_param(request)
    raw = request.path_params.get("registration_id", "")
    if session_id is None or not raw.isdigit() or len(raw) > 12:
        return None
    registration_id = int(raw)
    engine = Service.of(request).engine

    def read() -> Target | None:
        with engine.connect() as conn:
            roster = session_roster(conn, campaign_id, session_id)
        if roster is None:
            return None
        row = next(
            (r for r in roster.confirmed + roster.waiting if r.registration == registration_id),
            None,
        )
        if row is None:
            return None
        return Target(campaign_id, session_id, registration_id, roster, row)

    return await run_in_threadpool(read)


def _gone(request: Request, member: Member) -> Response:
    return page(
        request,
        "problem.html.j2",
        {
            "title": "Not on this roster",
            "message": "That person is not on this session's roster (any more): their place "
            "may have been cancelled meanwhile. Nothing was changed.",
            "back": request.url.path.rsplit("/people/", 1)[0],
            "member": member,
        },
        404,
    )


def _refused(request: Request, member: Member, message: str, back: str) -> Response:
    return page(
        request,
        "problem.html.j2",
        {"title": "Nothing was changed", "message": message, "back": back, "member": member},
        409,
    )


async def _run(request: Request, job: Callable[[Connection], Any]) -> Any:
    """One change and its audit entry (and its mail) in one transaction, through the
    sign-up pages' writer; then the mail goes."""
    result = await SignupState.of(request).writer.run(job)
    Service.of(request).notices.wake()
    return result


@members_only
async def confirm_page(request: Request, member: Member) -> Response:
    """The question before a cancellation or an out-of-turn place (no JavaScript needed)."""
    target = await _target(request)
    if target is None:
        return _gone(request, member)
    action = request.path_params["action"]
    if action not in ("cancel", "give-place"):
        return _gone(request, member)
    if action == "give-place" and target.row.status != "waiting":
        return _gone(request, member)
    return page(
        request,
        "confirm_change.html.j2",
        {
            "title": "Give a place" if action == "give-place" else "Cancel a place",
            "member": member,
            "t": target,
            "action": action,
            "when": when(target.roster.session),
        },
    )


@members_only
async def cancel_place(request: Request, member: Member) -> Response:
    target = await _target(request)
    if target is None:
        return _gone(request, member)
    links = SignupState.of(request).links(request)
    now = SignupState.of(request).now()

    def job(conn: Connection) -> service.Change:
        change = service.withdraw_in(conn, links, target.registration_id, now, "team")
        if change.cancelled is not None:
            promoted = [
                f"{r.name} (registration {r.id}) was given the place and emailed"
                for r in change.promoted
            ]
            was = "place" if target.row.status == "confirmed" else "place on the waiting list"
            audit.record(
                conn,
                member.email,
                "cancelled a place",
                f"Cancelled the {was} of {target.who} on {target.what}; they were emailed."
                + (" " + "; ".join(promoted) + "." if promoted else ""),
                campaign_id=target.campaign_id,
                target=("registration", str(target.registration_id)),
                at=now,
            )
            for r in change.promoted:
                audit.record(
                    conn,
                    member.email,
                    "gave a place",
                    f"{r.name} (registration {r.id}) moved from the waiting list into the "
                    f"place freed on {target.what}; they were emailed.",
                    campaign_id=target.campaign_id,
                    target=("registration", str(r.id)),
                    at=now,
                )
        return change

    try:
        await _run(request, job)
    except Refused as exc:
        return _refused(request, member, str(exc), target.back)
    return see_other(f"{target.back}?done=1#changes")


@members_only
async def give_place(request: Request, member: Member) -> Response:
    target = await _target(request)
    if target is None or target.row.status != "waiting":
        return _gone(request, member)
    links = SignupState.of(request).links(request)
    now = SignupState.of(request).now()
    free = target.roster.free

    def job(conn: Connection) -> object:
        given = service.give_place_in(conn, links, target.registration_id, now)
        if given is not None:
            over = (
                f" (over the {free.places} places: now {free.confirmed + 1})"
                if free.places is not None and free.confirmed >= free.places
                else ""
            )
            audit.record(
                conn,
                member.email,
                "gave a place",
                f"Gave {target.who} a place on {target.what} from the waiting list"
                f"{over}; they were emailed.",
                campaign_id=target.campaign_id,
                target=("registration", str(target.registration_id)),
                at=now,
            )
        return given

    try:
        await _run(request, job)
    except Refused as exc:
        return _refused(request, member, str(exc), target.back)
    return see_other(f"{target.back}?done=1#changes")


@members_only
async def mark_attendance(request: Request, member: Member) -> Response:
    target = await _target(request)
    if target is None:
        return _gone(request, member)
    answer = (await request.form()).get("attended")
    if answer not in ("yes", "no"):
        return _refused(request, member, "Choose whether they came or not.", target.back)
    came = answer == "yes"
    now = SignupState.of(request).now()

    def job(conn: Connection) -> object:
        reg = get_registration(conn, target.registration_id)
        if reg is None or reg.status != "confirmed":
            raise AttendanceError("only a confirmed place can be marked; this one is not")
        change = record_attendance(
            conn, target.registration_id, target.session_id, came, SOURCE, member.email, now
        )
        if change.changed:
            text = f"Marked {target.who} {'present at' if came else 'absent from'} {target.what}"
            if change.corrected:
                text += " (a correction)"
            if change.raised is not None:
                text += (
                    f"; completing {change.course_name} raised their QI level to "
                    f"{change.raised.level}"
                )
            if change.withdrawn is not None:
                text += f"; the QI level {change.withdrawn.level} it had given is withdrawn"
            audit.record(
                conn,
                member.email,
                "marked attended" if came else "marked absent",
                text + ".",
                campaign_id=target.campaign_id,
                target=("registration", str(target.registration_id)),
                at=now,
            )
        return change

    try:
        await _run(request, job)
    except AttendanceError as exc:
        return _refused(request, member, f"{str(exc).capitalize()}.", target.back)
    return see_other(f"{target.back}?done=1#person-{target.registration_id}")


PEOPLE = "/team/campaigns/{campaign_id}/sessions/{session_id}/people/{registration_id}"


ROUTES: list[BaseRoute] = [
    Route(PEOPLE + "/attendance", mark_attendance, methods=["POST"]),
    Route(PEOPLE + "/cancel", cancel_place, methods=["POST"]),
    Route(PEOPLE + "/give-place", give_place, methods=["POST"]),
    Route(PEOPLE + "/{action:str}", confirm_page, methods=["GET"]),
]
