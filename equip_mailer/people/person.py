"""Everything held about one address, in one place: for a subject access request (``person
--json``), and as the inventory ``forget`` works from.

The store is read table by table (ledger and the events hanging from it, sign-ups, open
sign-up invites, notices, attendance, QI level history, suppression, team access and the
team pages' activity log), and the project's campaign specs are read for the mailing lists
that name the address (a list is personal data the manager holds too, even though the tool
never changes it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.project import CAMPAIGNS, Project
from equip_mailer.store import (
    attendance,
    attendance_log,
    events,
    ledger,
    notices,
    person_levels,
    registrations,
    signup_courses,
    signup_invites,
    signup_sessions,
    suppressions,
    team_audit,
    team_sessions,
    team_signin_links,
)

from .records import erased_key


def _plain(value: Any) -> Any:
    """Times as ISO text; the store's are UTC without a zone, so they get the Z that
    ``made_at`` has (a reader in London would take a bare summer time for their own)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.isoformat() + "Z"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def _rows(conn: Connection, query) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in row._mapping.items()} for row in conn.execute(query)]


@dataclass
class PersonData:
    """What is held about one address, section by section (each a list of plain rows)."""

    email: str
    lists: list[dict[str, Any]] = field(default_factory=list)
    campaigns: list[dict[str, Any]] = field(default_factory=list)  # ledger rows
    events: list[dict[str, Any]] = field(default_factory=list)  # clicks, deliveries, ...
    registrations: list[dict[str, Any]] = field(default_factory=list)
    invites: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    attendance: list[dict[str, Any]] = field(default_factory=list)
    levels: list[dict[str, Any]] = field(default_factory=list)
    suppression: list[dict[str, Any]] = field(default_factory=list)
    team: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be read, and why
    # when ``forget`` erased the address (its keyed suppression's date): a request after an
    # erasure is answered with that, not with "nothing held", which would hide the hash kept
    erased_at: dt.datetime | None = None

    SECTIONS = (
        "lists",
        "campaigns",
        "events",
        "registrations",
        "invites",
        "notices",
        "attendance",
        "levels",
        "suppression",
        "team",
    )

    @property
    def found(self) -> bool:
        return any(getattr(self, s) for s in self.SECTIONS)

    @property
    def in_store(self) -> bool:
        return any(getattr(self, s) for s in self.SECTIONS if s != "lists")

    def as_json(self, now: dt.datetime) -> dict[str, Any]:
        """The subject access request answer: every section, with what each one is for."""
        return {
            "email": self.email,
            "made_at": now.isoformat(timespec="seconds") + "Z",
            "what_each_section_is": SECTION_PURPOSES,
            **{s: getattr(self, s) for s in self.SECTIONS},
            "notes": self.notes,
            **(
                {"erased_at": self.erased_at.isoformat(timespec="seconds") + "Z", "erased": ERASED}
                if self.erased_at is not None
                else {}
            ),
        }


ERASED = (
    "this address was erased (equip-mailer forget): the store keeps only a keyed hash of "
    "it, which stops any more mail to it, and counts that name nobody"
)


def erased_on(conn: Connection, secret: bytes | None, email: str) -> dt.datetime | None:
    """When ``forget`` erased ``email`` (None if it did not, or no link secret to tell)."""
    if not secret:
        return None
    when: dt.datetime | None = conn.execute(
        sa.select(suppressions.c.created_at).where(
            suppressions.c.email_key == erased_key(secret, email)
        )
    ).scalar()
    return when


SECTION_PURPOSES = {
    "lists": "rows of the mailing lists (the team's spreadsheets) that name this address",
    "campaigns": "newsletters sent (the ledger: one row per campaign and recipient)",
    "events": "what happened to those emails and to the single emails: delivered, bounced, "
    "opened, links clicked",
    "registrations": "places on courses signed up for, with the details given",
    "invites": "open sign-up confirmations requested (double opt-in)",
    "notices": "single emails sent: confirmations, waiting list, cancellations",
    "attendance": "sessions attended or missed, as the sign-in sheets recorded them",
    "levels": "QI level changes recorded from training completed or set by the team",
    "suppression": "the request never to be emailed again, and why",
    "team": "team page access (sign-in links and sessions) and the team pages' activity log "
    "entries by or about this person",
}


def _lists(project: Project | None, key: str, found: PersonData) -> None:
    """Rows of the project's mailing lists that name the address (any campaign's spec)."""
    from equip_mailer.compose.audience import read_list
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.errors import EquipError

    if project is None:
        found.notes.append("no project folder found, so no mailing list was read")
        return
    seen: set[Path] = set()
    for spec_path in sorted((project.root / CAMPAIGNS).glob("*.y*ml")):
        try:
            campaign = load_campaign(spec_path, allow_past=True)
        except EquipError:
            # the spec's own problems are check's to list; here only what it means
            shown_spec = f"{CAMPAIGNS}/{spec_path.name}"
            found.notes.append(
                f"{shown_spec} could not be read, so lists only it names were not searched "
                f"(equip-mailer check {shown_spec} says why)"
            )
            continue
        for shown in campaign.lists.files:
            path = campaign.path(shown).resolve()
            if path in seen:
                continue
            seen.add(path)
            try:
                recipients, _rejects, _rows_read = read_list(path, shown)
            except EquipError as exc:
                found.notes.append(f"{shown} could not be read ({_first_line(exc)})")
                continue
            for r in recipients:
                if r.key == key:
                    found.lists.append(
                        {
                            "where": r.source,
                            "first_name": r.first_name,
                            "last_name": r.last_name,
                            "practice": r.practice,
                            "role": r.role,
                            "qi_level": r.qi_level,
                        }
                    )


_EVENT_COLUMNS = (
    events.c.campaign_id,
    events.c.event,
    events.c.at,
    events.c.source,
    events.c.url,
    events.c.user_agent,
    events.c.ip_hash,
    events.c.machine,
    events.c.reason,
    events.c.raw,
)


def gather(
    conn: Connection, email: str, project: Project | None, secret: bytes | None = None
) -> PersonData:
    """Everything the store (and the project's lists) hold about ``email``.

    One query per table the address can appear in, in the order ``person`` shows them. It
    stays one long function on purpose: it names every column it returns, so a reviewer can
    check in one place that a subject access request leaves nothing out (and a new table
    that holds an address is added here, beside the others). With the link ``secret``, an
    address ``forget`` erased is recognised by its keyed hash (``erased_at``)."""
    key = email.strip().lower()
    found = PersonData(email=email.strip())
    _lists(project, key, found)
    found.campaigns = _rows(
        conn,
        sa.select(
            ledger.c.id,
            ledger.c.campaign_id,
            ledger.c.email,
            ledger.c.first_name,
            ledger.c.last_name,
            ledger.c.practice,
            ledger.c.role,
            ledger.c.qi_level,
            ledger.c.segment,
            ledger.c.state,
            ledger.c.sent_at,
        )
        .where(ledger.c.email_key == key)
        .order_by(ledger.c.id),
    )
    ledger_ids = [row["id"] for row in found.campaigns]
    if ledger_ids:
        found.events = _rows(
            conn,
            sa.select(*_EVENT_COLUMNS)
            .where(events.c.ledger_id.in_(ledger_ids))
            .order_by(events.c.at, events.c.id),
        )
    found.registrations = _rows(
        conn,
        sa.select(
            registrations.c.id,
            registrations.c.campaign_id,
            signup_courses.c.name.label("course"),
            signup_sessions.c.session_key.label("session"),
            registrations.c.email,
            registrations.c.name,
            registrations.c.practice,
            registrations.c.role,
            registrations.c.access_needs,
            registrations.c.status,
            registrations.c.source,
            registrations.c.created_at,
            registrations.c.confirmed_at,
            registrations.c.cancelled_at,
        )
        .join(signup_courses, signup_courses.c.id == registrations.c.signup_course_id)
        .outerjoin(signup_sessions, signup_sessions.c.id == registrations.c.session_id)
        .where(registrations.c.email_key == key)
        .order_by(registrations.c.id),
    )
    found.invites = _rows(
        conn,
        sa.select(
            signup_invites.c.id,
            signup_courses.c.name.label("course"),
            signup_invites.c.email,
            signup_invites.c.ip_hash,
            signup_invites.c.created_at,
            signup_invites.c.used_at,
        )
        .join(signup_courses, signup_courses.c.id == signup_invites.c.signup_course_id)
        .where(signup_invites.c.email_key == key)
        .order_by(signup_invites.c.id),
    )
    found.notices = _rows(
        conn,
        sa.select(
            notices.c.id,
            notices.c.kind,
            notices.c.campaign_id,
            notices.c.email,
            notices.c.name,
            notices.c.subject,
            notices.c.text,
            notices.c.state,
            notices.c.created_at,
            notices.c.sent_at,
        )
        .where(notices.c.email_key == key)
        .order_by(notices.c.id),
    )
    for notice in found.notices:  # their single emails' events join by the notice id
        found.events += [
            {**row, "notice_id": notice["id"]}
            for row in _rows(
                conn,
                sa.select(*_EVENT_COLUMNS)
                .where(events.c.raw.contains(f'"notice_id":"{notice["id"]}"'))
                .order_by(events.c.at, events.c.id),
            )
        ]
    found.attendance = _rows(
        conn,
        sa.select(
            attendance.c.id,
            signup_courses.c.campaign_id,
            signup_courses.c.name.label("course"),
            signup_sessions.c.session_key.label("session"),
            attendance.c.attended,
            attendance.c.source,
            attendance.c.recorded_by,
            attendance.c.updated_at,
        )
        .join(signup_courses, signup_courses.c.id == attendance.c.signup_course_id)
        .join(signup_sessions, signup_sessions.c.id == attendance.c.session_id)
        .where(attendance.c.email_key == key)
        .order_by(signup_sessions.c.starts_at),
    )
    for row in found.attendance:
        row["history"] = _rows(
            conn,
            sa.select(
                attendance_log.c.attended,
                attendance_log.c.previous,
                attendance_log.c.source,
                attendance_log.c.at,
            )
            .where(attendance_log.c.attendance_id == row["id"])
            .order_by(attendance_log.c.id),
        )
    found.levels = _rows(
        conn,
        sa.select(
            person_levels.c.level,
            person_levels.c.previous_level,
            person_levels.c.source,
            person_levels.c.reason,
            person_levels.c.effective_on,
            person_levels.c.recorded_by,
            person_levels.c.withdrawn_at,
            person_levels.c.withdrawn_reason,
        )
        .where(person_levels.c.email_key == key)
        .order_by(person_levels.c.id),
    )
    found.suppression = _rows(
        conn,
        sa.select(
            suppressions.c.email,
            suppressions.c.reason,
            suppressions.c.source,
            suppressions.c.campaign_id,
            suppressions.c.created_at,
        ).where(suppressions.c.email_key == key),
    )
    links = _rows(
        conn,
        sa.select(team_signin_links.c.created_at, team_signin_links.c.used_at).where(
            team_signin_links.c.email_key == key
        ),
    )
    sessions = _rows(
        conn,
        sa.select(team_sessions.c.created_at, team_sessions.c.revoked_at).where(
            team_sessions.c.email_key == key
        ),
    )
    # the activity log: what they did on the team pages, entries about their places, and
    # entries about someone else's that name them ("... (registration 12) was given the place")
    theirs = [str(r["id"]) for r in found.registrations]
    activity = _rows(
        conn,
        sa.select(
            team_audit.c.at,
            team_audit.c.action,
            team_audit.c.campaign_id,
            team_audit.c.summary,
        )
        .where(
            sa.or_(
                sa.func.lower(team_audit.c.actor) == key,
                sa.and_(
                    team_audit.c.target_kind == "registration",
                    team_audit.c.target_id.in_(theirs or [""]),
                ),
                *(
                    team_audit.c.summary.contains(f"(registration {r})", autoescape=True)
                    for r in theirs
                ),
            )
        )
        .order_by(team_audit.c.id),
    )
    found.team = (
        [{"kind": "sign-in link", **r} for r in links]
        + [{"kind": "session", **r} for r in sessions]
        + [{"kind": "team activity", **r} for r in activity]
    )
    found.erased_at = erased_on(conn, secret, email)
    return found


def _first_line(exc: Exception) -> str:
    """An error's first line, whole: a note cut at a character count ended mid-word."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
