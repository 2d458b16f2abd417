"""Rosters: who is coming to each session, as the trainer and the team use it on the day.

Per session of a campaign's courses, three files (``write_roster``):

- ``<course>_<date>.xlsx`` and ``.csv``: the roster contract every stage shares (the
  ``attendance`` import reads it back, the team pages link it), columns ``ROSTER_COLUMNS``
  in that order; ``Registration`` is the registrations row id (the stable key), ``Attended``
  is left empty for the trainer to fill;
- ``<course>_<date>_sign-in.html``: an A4 sign-in sheet with a line to sign per person,
  self-contained and print-ready. Access needs are on a separate last page for the trainer,
  never on the sheet that is passed round the room.

Confirmed people come first, by name (how a trainer looks someone up), then the waiting list
in the order it is served. One registration of an ``attend_all`` course covers every date,
so it is on each of the course's session rosters. Cancelled registrations are left out.

Everything is read from the store (the service may have run elsewhere), never the spec.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.campaign import level_rank
from equip_mailer.report.spreadsheets import defuse, xml_safe  # a formula-like cell stays text
from equip_mailer.store import ledger, person_levels, registrations, signup_courses

from .catalogue import CourseInfo, SessionInfo, load_course, utc_to_london
from .registration import Availability, Registration, availability, course_registrations

ROSTER_COLUMNS = (
    "Course",
    "Session",
    "Starts",
    "Name",
    "Email",
    "Practice",
    "Role",
    "QI level",
    "Access needs",
    "Status",
    "Signed up",
    "Registration",
    "Attended",
)


@dataclass(frozen=True)
class RosterRow:
    registration: int
    name: str
    email: str
    practice: str | None
    role: str | None
    qi_level: str | None  # from the campaign's list; None for people not on it
    access_needs: str | None
    status: str  # confirmed | waiting
    signed_up: dt.datetime  # London time
    waiting_position: int | None  # 1 = next to get a place
    # The level recorded since (attendance, or set by hand) when higher than the list's:
    # what the files' QI level column shows, as the team's roster page does.
    qi_level_now: str | None = None


@dataclass(frozen=True)
class SessionRoster:
    """One session's people and its places."""

    course: CourseInfo
    session: SessionInfo
    free: Availability  # places, confirmed, waiting (the course's, for attend_all)
    confirmed: tuple[RosterRow, ...]
    waiting: tuple[RosterRow, ...]

    @property
    def stem(self) -> str:
        return roster_stem(self.course.course_id, self.session.key)

    @property
    def starts(self) -> str:
        """London time, as the contract writes it: ``2019-06-27 13:00``."""
        return f"{self.session.starts_local:%Y-%m-%d %H:%M}"

    @property
    def day(self) -> str | None:
        """``Day 2 of 3`` on a course whose one registration covers every date."""
        dates = self.course.sessions
        if not self.course.attend_all or len(dates) < 2 or self.session not in dates:
            return None
        return f"Day {dates.index(self.session) + 1} of {len(dates)}"

    @property
    def filled(self) -> str:
        """``12 of 20`` (or ``12, no limit``; ``12 booked elsewhere``)."""
        if not self.course.hosted:
            return f"{self.free.confirmed} booked elsewhere"
        if self.free.places is None:
            return f"{self.free.confirmed}, no limit"
        return f"{self.free.confirmed} of {self.free.places}"

    def records(self) -> list[dict[str, str | int]]:
        """The rows as the contract's columns, confirmed then waiting."""
        return [
            {
                "Course": self.course.name,
                "Session": self.session.key,
                "Starts": self.starts,
                "Name": row.name,
                "Email": row.email,
                "Practice": row.practice or "",
                "Role": row.role or "",
                "QI level": row.qi_level_now or row.qi_level or "",
                "Access needs": row.access_needs or "",
                "Status": row.status,
                "Signed up": f"{row.signed_up:%Y-%m-%d %H:%M}",
                "Registration": row.registration,
                "Attended": "",
            }
            for row in self.confirmed + self.waiting
        ]


def roster_stem(course_id: str, session_key: str) -> str:
    """A session's file name without the extension: ``equip-basics_2019-06-27``."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", course_id).strip("-") or "course"
    return f"{safe}_{session_key}"


class UnknownSession(LookupError):
    """``--session`` named no session of the campaign; ``known`` lists what it could name."""

    def __init__(self, wanted: str, known: list[str]):
        self.wanted = wanted
        self.known = known
        super().__init__(wanted)


def campaign_rosters(
    conn: Connection, campaign_id: str, session: str | None = None
) -> list[SessionRoster]:
    """Every session roster of a campaign's courses that take sign-ups here or have some
    (imported ones, for a course booked elsewhere), in the spec's order.

    ``session`` picks one date (``2019-06-27``: every course meeting that day) or one
    course's date (``equip-basics@2019-06-27``); ``UnknownSession`` when it names none.
    """
    out = [
        roster for course in _courses(conn, campaign_id) for roster in course_rosters(conn, course)
    ]
    if session is None:
        return out
    chosen = [r for r in out if session in (r.session.key, f"{r.course.course_id}@{r.session.key}")]
    if not chosen:
        raise UnknownSession(session, [f"{r.course.course_id}@{r.session.key}" for r in out])
    return chosen


def _courses(conn: Connection, campaign_id: str) -> list[CourseInfo]:
    rows = conn.execute(
        sa.select(signup_courses.c.id)
        .where(signup_courses.c.campaign_id == campaign_id)
        .order_by(signup_courses.c.id)
    ).scalars()
    courses = []
    for row_id in rows:
        course = load_course(conn, row_id, include_inactive=True)
        if course is None:
            continue
        taken = conn.execute(
            sa.select(sa.func.count()).where(registrations.c.signup_course_id == row_id)
        ).scalar_one()
        if (course.hosted and course.active) or taken:
            courses.append(course)
    return courses


def course_rosters(conn: Connection, course: CourseInfo) -> list[SessionRoster]:
    """One roster per session of ``course`` (its inactive sessions only if someone chose them)."""
    people = [r for r in course_registrations(conn, course.id) if r.status != "cancelled"]
    levels = _qi_levels(conn, course.campaign_id, people)
    now = _levels_now(conn, people, levels)
    places = _availability(conn, course, people)
    rosters = []
    position: dict[int | None, int] = {}
    rows: dict[int, RosterRow] = {}
    for reg in people:  # arrival order: the waiting list's positions come from it
        key = None if course.attend_all else reg.session_id
        if reg.status == "waiting":
            position[key] = position.get(key, 0) + 1
        rows[reg.id] = _row(
            reg, levels, now, position.get(key) if reg.status == "waiting" else None
        )
    for session in course.sessions:
        mine = [rows[r.id] for r in people if r.session_id is None or r.session_id == session.id]
        if not session.active and not mine:
            continue
        confirmed = sorted(
            (r for r in mine if r.status == "confirmed"),
            key=lambda r: (name_order(r.name), r.registration),
        )
        waiting = sorted(
            (r for r in mine if r.status == "waiting"), key=lambda r: r.waiting_position or 0
        )
        key = None if course.attend_all else session.id
        free = places.get(key) or Availability(session.places, len(confirmed), len(waiting))
        rosters.append(SessionRoster(course, session, free, tuple(confirmed), tuple(waiting)))
    return rosters


def name_order(name: str) -> tuple[str, str]:
    """A name's place in an alphabetical list: Özlem with the Os and Émile with the Es, not
    after Zara, where code-point order puts every accented first letter."""
    folded = name.casefold()
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    return plain, folded


def _availability(
    conn: Connection, course: CourseInfo, people: list[Registration]
) -> dict[int | None, Availability]:
    """Places as the sign-up pages count them; for a course booked elsewhere, the places are
    the other tool's business, so only the people are counted."""
    if course.hosted:
        return availability(conn, course)
    out: dict[int | None, Availability] = {}
    for reg in people:
        key = None if course.attend_all else reg.session_id
        was = out.get(key, Availability(None, 0, 0))
        confirmed = was.confirmed + (reg.status == "confirmed")
        out[key] = Availability(None, confirmed, was.waiting + (reg.status == "waiting"))
    return out


def _qi_levels(
    conn: Connection, campaign_id: str, people: list[Registration]
) -> dict[int, str | None]:
    """Each registration's QI level from the campaign's list: by its ledger row, else by
    address (someone on the list who came through the open page or an import)."""
    if not people:
        return {}
    by_id: dict[int, str | None] = {}
    by_key: dict[str, str | None] = {}
    ids = [r.ledger_id for r in people if r.ledger_id is not None]
    keys = [r.email.strip().lower() for r in people if r.ledger_id is None]
    for chunk in _chunks(ids):
        by_id.update(
            (i, level)
            for i, level in conn.execute(
                sa.select(ledger.c.id, ledger.c.qi_level).where(ledger.c.id.in_(chunk))
            ).all()
        )
    for chunk in _chunks(keys):
        by_key.update(
            (k, level)
            for k, level in conn.execute(
                sa.select(ledger.c.email_key, ledger.c.qi_level).where(
                    ledger.c.campaign_id == campaign_id, ledger.c.email_key.in_(chunk)
                )
            ).all()
        )
    return {
        r.id: by_id.get(r.ledger_id)
        if r.ledger_id is not None
        else by_key.get(r.email.strip().lower())
        for r in people
    }


def _levels_now(
    conn: Connection, people: list[Registration], listed: dict[int, str | None]
) -> dict[int, str]:
    """Registrations whose recorded level (``people.levels``: the newest change not
    withdrawn) is higher than their list's: a roster made after a session was marked shows
    that completing a course moved them, as the next campaign will."""
    recorded: dict[str, str] = {}
    for chunk in _chunks(sorted({r.email.strip().lower() for r in people})):
        rows = conn.execute(
            sa.select(person_levels.c.email_key, person_levels.c.level)
            .where(person_levels.c.email_key.in_(chunk), person_levels.c.withdrawn_at.is_(None))
            .order_by(person_levels.c.id)
        )
        recorded.update((key, level) for key, level in rows)  # newest wins
    out = {}
    for reg in people:
        level = recorded.get(reg.email.strip().lower())
        was = listed.get(reg.id)
        if level is not None and (was is None or level_rank(level) > level_rank(was)):
            out[reg.id] = level
    return out


def _chunks(values: list, size: int = 500) -> list[list]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def _row(
    reg: Registration,
    levels: dict[int, str | None],
    now: dict[int, str],
    position: int | None,
) -> RosterRow:
    return RosterRow(
        registration=reg.id,
        name=reg.name,
        email=reg.email,
        practice=reg.practice,
        role=reg.role,
        qi_level=levels.get(reg.id),
        access_needs=reg.access_needs,
        status=reg.status,
        signed_up=utc_to_london(reg.created_at).replace(tzinfo=None),
        waiting_position=position,
        qi_level_now=now.get(reg.id),
    )


# --- the files -------------------------------------------------------------------------


@dataclass(frozen=True)
class RosterFiles:
    xlsx: Path
    csv: Path
    sign_in: Path

    def __iter__(self):
        return iter((self.xlsx, self.csv, self.sign_in))


def write_roster(roster: SessionRoster, out_dir: Path, made_at: dt.datetime) -> RosterFiles:
    """The session's XLSX, CSV and printable sign-in sheet in ``out_dir`` (``made_at``:
    London time, printed on them so an old printout is recognised)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = roster.stem
    return RosterFiles(
        xlsx=write_roster_xlsx(roster, out_dir / f"{stem}.xlsx", made_at),
        csv=write_roster_csv(roster, out_dir / f"{stem}.csv"),
        sign_in=write_sign_in_sheet(roster, out_dir / f"{stem}_sign-in.html", made_at),
    )


def write_roster_csv(roster: SessionRoster, path: Path) -> Path:
    """UTF-8 with a byte-order mark and CRLF, as Excel on Windows reads it."""
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(ROSTER_COLUMNS)
        for record in roster.records():
            out.writerow([defuse(record[c]) for c in ROSTER_COLUMNS])
    return path


def write_roster_xlsx(roster: SessionRoster, path: Path, made_at: dt.datetime) -> Path:
    """Sheet ``Roster`` (the contract's columns; text stays text, dates are dates, Attended
    offers yes/no) and sheet ``About`` (the session, its places, when the file was made)."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    wb = Workbook()
    ws = wb.active
    ws.title = "Roster"
    records = roster.records()
    for c, name in enumerate(ROSTER_COLUMNS, start=1):
        cell = ws.cell(row=1, column=c, value=name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="005EB8")
        cell.alignment = Alignment(vertical="center")
    for r, record in enumerate(records, start=2):
        for c, name in enumerate(ROSTER_COLUMNS, start=1):
            if name in DATE_CELLS:  # Excel sorts and filters these as dates
                cell = ws.cell(row=r, column=c, value=_excel_date(name, str(record[name])))
                cell.number_format = DATE_CELLS[name]
                continue
            value = defuse(xml_safe(record[name]))  # a stray \x02 from an import, say
            cell = ws.cell(row=r, column=c, value=value if value != "" else None)
            if isinstance(value, str):
                cell.data_type = "s"  # never a formula, whatever it starts with
            if name == "Access needs":
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    attended = get_column_letter(ROSTER_COLUMNS.index("Attended") + 1)
    check = DataValidation(
        type="list",
        formula1='"yes,no"',
        allow_blank=True,
        showErrorMessage=False,  # y, n, ✓, 1 ... are accepted too by the import
        promptTitle="Attended?",
        prompt="yes or no",
    )
    ws.add_data_validation(check)
    check.add(f"{attended}2:{attended}{max(2, len(records) + 1)}")
    for c, name in enumerate(ROSTER_COLUMNS, start=1):
        longest = max([len(name)] + [len(str(rec[name])) for rec in records])
        ws.column_dimensions[get_column_letter(c)].width = min(45, max(10, longest + 2))
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(ROSTER_COLUMNS))}{len(records) + 1}"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"

    about = wb.create_sheet("About")
    for r, (label, value) in enumerate(_about(roster, made_at), start=1):
        about.cell(row=r, column=1, value=label).font = Font(bold=True)
        if label in ("Session", "Starts", "Ends"):
            cell = about.cell(row=r, column=2, value=_excel_date(label, str(value)))
            cell.number_format = DATE_CELLS[label]
            cell.alignment = Alignment(horizontal="left")
            continue
        cell = about.cell(row=r, column=2, value=defuse(xml_safe(value)))
        if isinstance(value, str):
            cell.data_type = "s"
    about.column_dimensions["A"].width = 18
    about.column_dimensions["B"].width = 70
    wb.save(path)
    return path


# The workbook's date columns, as real dates (London wall-clock time) in the contract's
# spelling: a trainer sorts, filters ("after 1 May") and reads them as dates in Excel. The
# CSV keeps the text; ``attendance`` reads either back (an Excel date arrives as
# "2019-06-27 00:00:00").
DATE_CELLS = {
    "Session": "yyyy-mm-dd",
    "Starts": "yyyy-mm-dd hh:mm",
    "Ends": "yyyy-mm-dd hh:mm",
    "Signed up": "yyyy-mm-dd hh:mm",
}


def _excel_date(name: str, text: str) -> dt.date | dt.datetime:
    """The contract's text (``2019-06-27``, ``2019-06-27 13:00``) as the cell's value."""
    if name == "Session":
        return dt.date.fromisoformat(text)
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M")


def _about(roster: SessionRoster, made_at: dt.datetime) -> list[tuple[str, str | int]]:
    s = roster.session
    return [
        ("Course", roster.course.name),
        ("Session", s.key),
        ("Starts", roster.starts),
        ("Ends", f"{s.ends_local:%Y-%m-%d %H:%M}"),
        ("Venue", s.venue or ""),
        ("Places", "no limit" if roster.free.places is None else roster.free.places),
        ("Confirmed", roster.free.confirmed),
        ("Waiting", roster.free.waiting),
        ("Attendance", roster.course.attendance or ""),
        ("Made", f"{made_at:%Y-%m-%d %H:%M} (London time)"),
    ]


def write_sign_in_sheet(roster: SessionRoster, path: Path, made_at: dt.datetime) -> Path:
    from .pages import when

    template = _sheet_env().get_template("sign_in_sheet.html.j2")
    path.write_text(
        template.render(
            roster=roster,
            when=when(roster.session),
            made_at=f"{made_at.day} {made_at:%B %Y, %H:%M}",
            spare_rows=range(max(3, min(8, len(roster.confirmed) // 4 + 3))),
            with_needs=[r for r in roster.confirmed + roster.waiting if r.access_needs],
        ),
        encoding="utf-8",
    )
    return path


def css_string(text: str):
    """``text`` as a quoted CSS string: every character but letters and digits escaped (six
    hex digits each, so the next character never joins the escape), so no name can close
    the string or the style sheet."""
    from markupsafe import Markup

    body = "".join(ch if ch.isalnum() else f"\\{ord(ch):06x}" for ch in text)
    return Markup(f'"{body}"')


def _sheet_env():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["css_string"] = css_string
    return env
