"""Sign-ups and rosters: each session's places and people, and what the team changes there.

- ``/team/campaigns/<id>/signups``: every course and session with its places, places left
  and waiting list;
- ``/team/campaigns/<id>/sessions/<session>``: one session's roster (confirmed by name, then
  the waiting list in the order it is served), attendance marks and the changes made;
  its files (``roster.xlsx``, ``roster.csv``, the printable ``sign-in.html``) are the ones
  ``equip-mailer roster`` writes, made by ``signup.roster``;
- what the team changes there (cancel, give a place, attendance) is in ``roster_changes``.

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
from equip_mailer.signup.catalogue import load_course, utc_to_london
from equip_mailer.signup.pages import when
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
from ..render import page, secure_headers
from .campaigns import campaign_row
from .reports import CAMPAIGN_ID, XLSX, not_found

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
    below: str | None = None  # the level the course asks for, when theirs is known and lower


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

    requires = roster.course.requires

    def person(row: RosterRow) -> Person:
        level = now_at[row.registration]
        # Flagged, not refused: a list's level may be out of date, and the trainer knows
        # who did the groundwork elsewhere. Unknown levels (booked elsewhere) are not flagged.
        short = (
            requires is not None
            and level.level is not None
            and level_rank(level.level) < level_rank(requires)
        )
        return Person(
            row,
            level,
            marks.get(row.email.strip().lower()),
            QI_LEVEL_NAMES.get(requires, requires) if short and requires else None,
        )

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


def session_id_param(request: Request) -> int | None:
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
    campaign_id, session_id = request.path_params["campaign_id"], session_id_param(request)
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
        campaign_id, session_id = request.path_params["campaign_id"], session_id_param(request)
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


SESSION = "/team/campaigns/{campaign_id}/sessions/{session_id}"


ROUTES: list[BaseRoute] = [
    Route("/team/campaigns/{campaign_id}/signups", signups_page, methods=["GET"]),
    Route(SESSION, roster_page, methods=["GET"]),
    Route(SESSION + "/roster.xlsx", _roster_file("xlsx"), methods=["GET"]),
    Route(SESSION + "/roster.csv", _roster_file("csv"), methods=["GET"]),
    Route(SESSION + "/sign-in.html", _roster_file("sign-in"), methods=["GET"]),
]
