"""Sign-ups and rosters: each session's places and people, and what the team changes there.

- ``/team/campaigns/<id>/signups``: every course and session with its places, places left
  and waiting list;
- ``/team/campaigns/<id>/sessions/<session>``: one session's roster (confirmed by name, then
  the waiting list in the order it is served), attendance marks and the changes made;
  its files (``roster.xlsx``, ``roster.csv``, the printable ``sign-in.html``) are the ones
  ``equip-mailer roster`` writes, made by ``signup.roster``;
- changes, each a POST with its CSRF token, each written with its audit entry and its mail
  in one transaction through the sign-up pages' writer: cancel a place (``withdraw_in``:
  the person gets the same mail as when they cancel themselves, and the first person
  waiting is promoted and mailed), give a waiting person a place (``give_place_in``: the
  "a place has come up" mail), mark attendance (``people.attendance.record_attendance``,
  the function the ``attendance`` command calls, which also raises the QI level).

Rosters name people, so they hold addresses: only the session's own page shows them, and
no address ever goes into a URL or the audit log (it names the registration).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.compose.campaign import QI_LEVEL_NAMES, level_rank
from equip_mailer.people import levels
from equip_mailer.people.attendance import AttendanceError, record_attendance
from equip_mailer.signup import service
from equip_mailer.signup.catalogue import load_course, utc_to_london
from equip_mailer.signup.pages import when
from equip_mailer.signup.registration import Refused, get_registration
from equip_mailer.signup.roster import (
    RosterRow,
    SessionRoster,
    campaign_rosters,
    course_rosters,
    write_roster_csv,
    write_roster_xlsx,
    write_sign_in_sheet,
)
from equip_mailer.signup.web import SignupState
from equip_mailer.store import attendance, person_levels, registrations, signup_sessions
from equip_mailer.track.state import Service

from .. import audit
from ..guard import Member, members_only
from ..render import page, secure_headers, see_other
from .campaigns import campaign_row
from .reports import CAMPAIGN_ID, XLSX, not_found

SOURCE = "team pages"


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """The QI level a person is at now: the higher of their list's and the recorded one."""

    level: str | None
    why: str | None  # "after EQUIP Basics, 2019-06-27" when the recorded level is the higher

    @property
    def name(self) -> str:
        return QI_LEVEL_NAMES.get(self.level, self.level) if self.level else "not known"


@dataclass(frozen=True)
class Person:
    row: RosterRow
    level: Level
    attended: bool | None  # None: not marked


@dataclass(frozen=True)
class SessionPage:
    roster: SessionRoster
    confirmed: list[Person]
    waiting: list[Person]
    started: bool
    entries: list[audit.Entry]


def _levels(conn: Connection, rows: list[RosterRow]) -> dict[int, Level]:
    """Each person's level now, by registration: their recorded level (``people.levels``:
    the newest change not withdrawn) when it is higher than their list's. One query for the
    whole roster (``levels.current`` per person costs a query each)."""
    keys = sorted({r.email.strip().lower() for r in rows})
    recorded: dict[str, levels.LevelChange] = {}
    for start in range(0, len(keys), 500):
        found = conn.execute(
            sa.select(person_levels)
            .where(
                person_levels.c.email_key.in_(keys[start : start + 500]),
                person_levels.c.withdrawn_at.is_(None),
            )
            .order_by(person_levels.c.id)
        )
        for change in found:
            recorded[change.email_key] = levels.LevelChange.of(change)  # newest wins
    out = {}
    for row in rows:
        mine = recorded.get(row.email.strip().lower())
        if mine is not None and (
            row.qi_level is None or level_rank(mine.level) > level_rank(row.qi_level)
        ):
            out[row.registration] = Level(mine.level, mine.why)
        else:
            out[row.registration] = Level(row.qi_level, None)
    return out


def _attendance(conn: Connection, session_id: int) -> dict[str, bool]:
    rows = conn.execute(
        sa.select(attendance.c.email_key, attendance.c.attended).where(
            attendance.c.session_id == session_id
        )
    )
    return {key: bool(came) for key, came in rows}


def session_roster(conn: Connection, campaign_id: str, session_id: int) -> SessionRoster | None:
    """The roster of one session of one campaign (None: not this campaign's session)."""
    course_row = conn.execute(
        sa.select(signup_sessions.c.signup_course_id).where(signup_sessions.c.id == session_id)
    ).scalar()
    course = None if course_row is None else load_course(conn, course_row, include_inactive=True)
    if course is None or course.campaign_id != campaign_id:
        return None
    return next((r for r in course_rosters(conn, course) if r.session.id == session_id), None)


def _registration_ids(conn: Connection, roster: SessionRoster) -> list[str]:
    """Every registration this session has had (cancelled ones too): its audit entries."""
    rows = conn.execute(
        sa.select(registrations.c.id).where(
            registrations.c.signup_course_id == roster.course.id,
            sa.or_(
                registrations.c.session_id == roster.session.id,
                registrations.c.session_id.is_(None),
            ),
        )
    ).scalars()
    return [str(i) for i in rows]


def session_page(
    conn: Connection, campaign_id: str, session_id: int, now: dt.datetime
) -> SessionPage | None:
    roster = session_roster(conn, campaign_id, session_id)
    if roster is None:
        return None
    marks = _attendance(conn, session_id)
    now_at = _levels(conn, list(roster.confirmed + roster.waiting))

    def person(row: RosterRow) -> Person:
        return Person(row, now_at[row.registration], marks.get(row.email.strip().lower()))

    return SessionPage(
        roster=roster,
        confirmed=[person(r) for r in roster.confirmed],
        waiting=[person(r) for r in roster.waiting],
        started=roster.session.starts_at <= now,
        entries=audit.recent(
            conn, campaign_id, limit=50, targets=("registration", _registration_ids(conn, roster))
        ),
    )


# --- pages -----------------------------------------------------------------------------


def _session_id(request: Request) -> int | None:
    raw = request.path_params.get("session_id", "")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


def _no_session(request: Request, member: Member) -> Response:
    return page(
        request,
        "problem.html.j2",
        {
            "title": "No such session",
            "message": "This campaign has no session with that number. Its sign-ups page "
            "lists every session.",
            "back": f"/team/campaigns/{request.path_params['campaign_id']}/signups",
            "member": member,
        },
        404,
    )


@members_only
async def signups_page(request: Request, member: Member) -> Response:
    campaign_id = request.path_params["campaign_id"]
    engine = Service.of(request).engine

    def read() -> tuple[Any, list[SessionRoster], list[audit.Entry]]:
        with engine.connect() as conn:
            row = campaign_row(conn, campaign_id)
            if row is None:
                return None, [], []
            return row, campaign_rosters(conn, campaign_id), audit.recent(conn, campaign_id, 20)

    row, rosters, entries = (
        await run_in_threadpool(read) if CAMPAIGN_ID.match(campaign_id) else (None, [], [])
    )
    if row is None:
        return not_found(request, member)
    courses: dict[int, list[SessionRoster]] = {}
    for r in rosters:
        courses.setdefault(r.course.id, []).append(r)
    return page(
        request,
        "signups.html.j2",
        {
            "title": f"Sign-ups: {campaign_id}",
            "member": member,
            "campaign_id": campaign_id,
            "subject": row.subject,
            "tab": "signups",
            "courses": list(courses.values()),
            "entries": entries,
            "when": when,
        },
    )


@members_only
async def roster_page(request: Request, member: Member) -> Response:
    campaign_id, session_id = request.path_params["campaign_id"], _session_id(request)
    engine, now = Service.of(request).engine, SignupState.of(request).now()

    def read() -> tuple[Any, SessionPage | None]:
        with engine.connect() as conn:
            return campaign_row(conn, campaign_id), session_page(
                conn, campaign_id, session_id or 0, now
            )

    row, found = await run_in_threadpool(read)
    if row is None or found is None:
        return _no_session(request, member)
    mine = [e for e in found.entries if e.actor == member.email]
    return page(
        request,
        "roster.html.j2",
        {
            "title": f"{found.roster.course.name}, {found.roster.session.key}",
            "member": member,
            "campaign_id": campaign_id,
            "subject": row.subject,
            "tab": "signups",
            "s": found,
            "entries": found.entries,
            "when": when(found.roster.session),
            "base": f"/team/campaigns/{campaign_id}/sessions/{session_id}",
            "done": mine[0] if mine and request.query_params.get("done") == "1" else None,
        },
    )


# --- the roster's files ----------------------------------------------------------------


def _made_at() -> dt.datetime:
    return utc_to_london(dt.datetime.now(dt.UTC).replace(tzinfo=None)).replace(tzinfo=None)


def _file(roster: SessionRoster, name: str, write: Callable[[SessionRoster, Path], Path]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="equip-roster-") as folder:
        return write(roster, Path(folder) / name).read_bytes()


def _roster_file(kind: str):
    """A route answering one of the roster's files, as ``equip-mailer roster`` writes it."""
    writers: dict[str, tuple[str, str, Callable[[SessionRoster, Path], Path]]] = {
        "xlsx": (".xlsx", XLSX, lambda r, p: write_roster_xlsx(r, p, _made_at())),
        "csv": (".csv", "text/csv; charset=utf-8", write_roster_csv),
        "sign-in": (
            "_sign-in.html",
            "text/html; charset=utf-8",
            lambda r, p: write_sign_in_sheet(r, p, _made_at()),
        ),
    }
    suffix, media_type, write = writers[kind]

    @members_only
    async def download(request: Request, member: Member) -> Response:
        campaign_id, session_id = request.path_params["campaign_id"], _session_id(request)
        engine = Service.of(request).engine

        def make() -> tuple[str, bytes] | None:
            with engine.connect() as conn:
                roster = session_roster(conn, campaign_id, session_id or 0)
            if roster is None:
                return None
            return roster.stem + suffix, _file(roster, roster.stem + suffix, write)

        made = await run_in_threadpool(make)
        if made is None:
            return _no_session(request, member)
        name, content = made
        response = Response(content, media_type=media_type)
        shown = "inline" if kind == "sign-in" else "attachment"
        response.headers["Content-Disposition"] = f'{shown}; filename="{name}"'
        return secure_headers(response)

    return download


# --- changes ---------------------------------------------------------------------------


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
    campaign_id, session_id = request.path_params["campaign_id"], _session_id(request)
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
SESSION = "/team/campaigns/{campaign_id}/sessions/{session_id}"

ROUTES: list[BaseRoute] = [
    Route("/team/campaigns/{campaign_id}/signups", signups_page, methods=["GET"]),
    Route(SESSION, roster_page, methods=["GET"]),
    Route(SESSION + "/roster.xlsx", _roster_file("xlsx"), methods=["GET"]),
    Route(SESSION + "/roster.csv", _roster_file("csv"), methods=["GET"]),
    Route(SESSION + "/sign-in.html", _roster_file("sign-in"), methods=["GET"]),
    Route(PEOPLE + "/attendance", mark_attendance, methods=["POST"]),
    Route(PEOPLE + "/cancel", cancel_place, methods=["POST"]),
    Route(PEOPLE + "/give-place", give_place, methods=["POST"]),
    Route(PEOPLE + "/{action:str}", confirm_page, methods=["GET"]),
]
