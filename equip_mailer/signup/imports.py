"""Sign-ups made elsewhere: an external booking tool's attendee export read into
registrations, so rosters and reports count everyone, wherever they booked.

Two exports are known by their columns, and anything similar is read the same way:

- an **Eventbrite** attendee CSV (``First Name``, ``Last Name``, ``Email``, ``Company``,
  ``Job Title``, ``Attendee Status``, ``Event Name``, ``Event Start Date`` ...);
- a **Microsoft Forms** XLSX (``ID``, ``Start time``, ``Completion time``, ``Email``,
  ``Name``, then one column per question: "Your NHS email address", "Which date ..." ...).
  An anonymous form writes ``anonymous`` in its own Email and Name columns, so of several
  columns that could hold an address (or a name) the one whose values look like it wins.

Reading reuses the mailing lists' reader (``compose.list_files``: any encoding and
delimiter, a title line above the header, XLSX) and its address rules.

Each row is matched to the campaign's recipients by address, case-insensitively (its ledger
row, for the report's funnel); rows that match nobody are imported all the same and listed,
so the team can see who came from outside the lists. A row is recorded with
``registration.record_external``: confirmed, once per (course, address), so importing the
same file twice changes nothing. Rows the tool itself marks cancelled or refunded are listed
and left out; those whose person holds a place from an earlier import (and no other row of
the file still books them) are listed apart, to be cancelled on the team's roster page:
nothing records which export gave the place, so the import does not cancel it itself. A
row that cannot be read (no valid address, a date the course does not have) stops the import
before anything is written, with every such row named: fix the file (or delete the row) and
run it again.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.compose.cell_values import CONTROL_RE, clean, normalise_email, shown_value
from equip_mailer.compose.list_files import Table, header_key, read_table
from equip_mailer.errors import EquipError
from equip_mailer.people.records import erased_among
from equip_mailer.store import ledger

from .catalogue import CourseInfo
from .registration import Applicant, Refused, find_registration, record_external


class ImportProblem(EquipError, ValueError):
    """The file cannot be imported as it is; ``problems`` names every row and field."""

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None):
        self.problems = list(problems or [])
        super().__init__(message, hint=hint)


# Which header (header_key: lower-case letters and digits) says what. A header matches a
# field when it equals one of the names, or contains one of the words.
_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "email": (("email", "emailaddress", "mail"), ("email",)),
    "first_name": (("firstname", "forename", "givenname", "first"), ()),
    "last_name": (("lastname", "surname", "familyname", "last"), ()),
    "name": (("name", "fullname", "attendeename"), ("yourname", "fullname")),
    "practice": (
        ("practice", "company", "organisation", "organization", "surgery", "site"),
        ("practice", "organisation", "organization", "surgery", "workplace"),
    ),
    "role": (("role", "jobtitle", "job", "position"), ("role", "jobtitle")),
    "access_needs": ((), ("access", "shouldweknow", "anythingweshould", "requirements")),
    "session": (
        ("session", "date", "eventdate", "eventstartdate", "startdate", "tickettype"),
        ("whichdate", "whatdate", "chooseadate", "sessiondate", "preferreddate"),
    ),
    "status": (("attendeestatus", "status", "orderstatus"), ()),
    "course": (("course", "eventname", "event", "eventtitle"), ("whichcourse",)),
}

# What a booking tool writes for a place that was given up.
_CANCELLED = ("cancel", "refund", "not attending", "deleted", "declined", "transferred")
_ANONYMOUS = {"anonymous", "anon", ""}
_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}


@dataclass(frozen=True)
class ImportRow:
    """What became of one row of the file."""

    where: str  # "eventbrite.csv:7" or "forms.xlsx:Sheet1!row 7"
    email: str
    name: str
    outcome: str  # new | existing | duplicate | cancelled | still_held | erased
    on_list: bool  # the address is a recipient of the campaign
    registration: int | None = None
    detail: str = ""  # e.g. the existing registration's status and source


@dataclass
class ImportResult:
    course: CourseInfo
    source: str  # "Eventbrite attendee export", "Microsoft Forms responses", "booking export"
    rows: list[ImportRow] = field(default_factory=list)

    def having(self, outcome: str) -> list[ImportRow]:
        return [r for r in self.rows if r.outcome == outcome]

    @property
    def not_on_list(self) -> list[ImportRow]:
        """Imported (or already there) though the campaign never mailed them: to check."""
        return [r for r in self.rows if r.outcome in ("new", "existing") and not r.on_list]


@dataclass(frozen=True)
class _Parsed:
    where: str
    email: str
    name: str
    practice: str | None
    role: str | None
    access_needs: str | None
    session_id: int | None
    cancelled: bool


def read_export(path: Path, shown: str | None = None) -> tuple[Table, str]:
    """The file's cells, and which tool it looks like it came from."""
    shown = shown or str(path)
    if not path.is_file():
        raise EquipError(
            "no such file" if not path.exists() else "is not a file",
            where=shown,
            hint="Give the attendee export you downloaded (CSV or XLSX).",
        )
    table = read_table(path, shown, need="email")
    keys = {header_key(h) for h in table.header}
    if {"attendeestatus", "ordernumber"} & keys or {"order", "attendee"} <= keys:
        kind = "Eventbrite attendee export"
    elif {"id", "starttime", "completiontime"} <= keys:
        kind = "Microsoft Forms responses"
    else:
        kind = "booking export"
    return table, kind


def _candidates(header: list[str], name: str) -> list[int]:
    exact, words = _FIELDS[name]
    keys = [header_key(h) for h in header]
    found = [i for i, k in enumerate(keys) if k in exact]
    found += [i for i, k in enumerate(keys) if i not in found and any(w in k for w in words)]
    if name == "session":  # an order's or a response's own date is not the session's
        found = [
            i
            for i in found
            if not any(w in keys[i] for w in ("order", "completion", "modified", "birth"))
        ]
    return found


def _best(table: Table, name: str, good: Callable[[str], bool], taken: set[int]) -> int | None:
    """Of the columns that could hold ``name``, the one with most values that look right."""
    options = [i for i in _candidates(table.header, name) if i not in taken]
    if not options:
        return None
    score = {
        i: sum(1 for row in table.rows if i < len(row) and good(clean(row[i]))) for i in options
    }
    best = max(options, key=lambda i: (score[i], -options.index(i)))
    return best if score[best] or len(options) == 1 else options[0]


def _columns(table: Table) -> dict[str, int]:
    def address(v: str) -> bool:
        return bool(normalise_email(v)[0])

    def meaningful(v: str) -> bool:
        return v.lower() not in _ANONYMOUS

    cols: dict[str, int] = {}
    email = _best(table, "email", address, set())
    if email is None:
        raise EquipError("has no email column")  # read_table found one: never here
    cols["email"] = email

    def dated(v: str) -> bool:
        return parse_date(v) is not None

    for name in (
        "first_name",
        "last_name",
        "name",
        "practice",
        "role",
        "access_needs",
        "session",
        "status",
        "course",
    ):
        col = _best(table, name, dated if name == "session" else meaningful, set(cols.values()))
        if col is not None:
            cols[name] = col
    return cols


def parse_date(text: str) -> dt.date | None:
    """A date as booking tools and people write it: ``2019-10-15``, ``2019-10-15 09:00:00``,
    ``15/10/2019`` (day first, as in the UK), ``Tuesday 15 October 2019``, ``Oct 15, 2019``.
    None when there is no date in it."""
    text = text.strip()
    iso = re.search(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", text)
    if iso:
        parts = (int(iso[1]), int(iso[2]), int(iso[3]))
    elif uk := re.search(r"\b(\d{1,2})[/.](\d{1,2})[/.](\d{2,4})\b", text):
        year = int(uk[3]) + (2000 if len(uk[3]) == 2 else 0)
        parts = (year, int(uk[2]), int(uk[1]))
    else:
        undated = re.sub(r"\b\d{1,2}[:.]\d{2}(?:[:.]\d{2})?\b", " ", text)  # times of day
        words = re.findall(r"[A-Za-z]+|\d+", undated)
        months = [_MONTHS[w.lower()] for w in words if w.lower() in _MONTHS]
        numbers = [int(w) for w in words if w.isdigit()]
        years = [n for n in numbers if n >= 1000]
        days = [n for n in numbers if 1 <= n <= 31]
        if len(months) != 1 or len(years) != 1 or len(days) != 1:
            return None
        parts = (years[0], months[0], days[0])
    try:
        return dt.date(*parts)
    except ValueError:
        return None


def _session(course: CourseInfo, text: str) -> tuple[int | None, str]:
    """(session id or None, problem or "") for a row's session cell."""
    if course.attend_all:
        return None, ""  # one registration covers every date
    if not text and len(course.sessions) == 1:
        return course.sessions[0].id, ""
    if not text:
        return None, "no date is given, and the course has several"
    day = parse_date(text)
    match = [s for s in course.sessions if day and s.starts_local.date() == day]
    if match:
        return match[0].id, ""
    dates = ", ".join(f"{s.starts_local:%d %b %Y}" for s in course.sessions)
    return None, f'date "{shown_value(text)}" is not one of the course\'s dates ({dates})'


def parse_rows(table: Table, course: CourseInfo) -> tuple[list[_Parsed], list[str]]:
    """The rows as applicants, and every problem (``file:row: field ...``)."""
    cols = _columns(table)

    def cell(row: list[str], name: str) -> str:
        # Controls go (as the sign-up form drops them): stored, they would travel into
        # mails, calendars and rosters, where a workbook cannot even hold them.
        i = cols.get(name)
        return CONTROL_RE.sub("", clean(row[i])) if i is not None and i < len(row) else ""

    parsed: list[_Parsed] = []
    problems: list[str] = []
    for row, where in zip(table.rows, table.wheres, strict=True):
        if not any(c.strip() for c in row):
            continue
        email, problem = normalise_email(cell(row, "email"))
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        status = cell(row, "status").lower()
        cancelled = any(word in status for word in _CANCELLED)
        session_id, problem = _session(course, cell(row, "session"))
        if problem and not cancelled:
            problems.append(f"{where}: {problem}")
            continue
        name = cell(row, "name")
        if name.lower() in _ANONYMOUS:
            name = " ".join(p for p in (cell(row, "first_name"), cell(row, "last_name")) if p)
        parsed.append(
            _Parsed(
                where=where,
                email=email,
                name=name,
                practice=cell(row, "practice") or None,
                role=cell(row, "role") or None,
                access_needs=cell(row, "access_needs") or None,
                session_id=session_id,
                cancelled=cancelled,
            )
        )
    problems += [str(b) for b in table.broken]
    return parsed, problems


def course_names(table: Table) -> list[str]:
    """What the file's Event Name / Course column says, each value once (empty: no such
    column, or nothing in it)."""
    i = next(iter(_candidates(table.header, "course")), None)
    if i is None:
        return []
    return list(
        dict.fromkeys(clean(row[i]) for row in table.rows if i < len(row) and clean(row[i]))
    )


def course_named_in(table: Table, courses: list[CourseInfo]) -> CourseInfo | None:
    """The course a file's Event Name / Course column names (by name or id), if all its
    rows name the same one."""
    named = {name.casefold() for name in course_names(table)}
    found = {
        c.id
        for c in courses
        for value in named
        if c.name.casefold() in value or c.course_id.casefold() == value
    }
    if len(found) != 1:
        return None
    return next(c for c in courses if c.id in found)


def import_rows(
    conn: Connection,
    campaign_id: str,
    course: CourseInfo,
    source: str,
    rows: list[_Parsed],
    now: dt.datetime,
    secret: bytes | None = None,
) -> ImportResult:
    """Record every row in the caller's transaction (``store.immediate``); see the module.

    With the link ``secret``, a row naming someone ``forget`` erased is left out (outcome
    "erased"): an export made before they asked would otherwise put their address, name
    and place back in the store."""
    result = ImportResult(course=course, source=source)
    recipients = _recipients(conn, campaign_id, [r.email for r in rows])
    erased = erased_among(conn, secret, [r.email for r in rows]) if secret else set()
    live = {r.email.lower() for r in rows if not r.cancelled}  # a second ticket still valid
    seen: dict[str, str] = {}
    for row in rows:
        key = row.email.lower()
        reader = recipients.get(key)
        on_list = reader is not None
        if key in erased:
            result.rows.append(ImportRow(row.where, row.email, "", "erased", on_list))
            continue
        if row.cancelled:
            held = None if key in live else find_registration(conn, course.id, row.email)
            if held is not None and (held.status == "cancelled" or held.source != "import"):
                held = None
            result.rows.append(
                ImportRow(
                    row.where,
                    row.email,
                    row.name,
                    "still_held" if held else "cancelled",
                    on_list,
                    registration=held.id if held else None,
                    detail=f"registration {held.id}" if held else "",
                )
            )
            continue
        if key in seen:
            result.rows.append(
                ImportRow(row.where, row.email, row.name, "duplicate", on_list, detail=seen[key])
            )
            continue
        seen[key] = row.where
        applicant = Applicant(
            email=row.email,
            name=row.name or (reader.name if reader else "") or "(no name given)",
            practice=row.practice or (reader.practice if reader else None),
            role=row.role or (reader.role if reader else None),
            access_needs=row.access_needs,
            ledger_id=reader.id if reader else None,
            source="import",
        )
        try:
            outcome = record_external(conn, course.id, applicant, row.session_id, now)
        except Refused as exc:  # the session vanished meanwhile
            raise ImportProblem(f"{row.where}: {exc}") from None
        made = outcome.registration
        result.rows.append(
            ImportRow(
                row.where,
                row.email,
                made.name,
                "new" if outcome.created else "existing",
                on_list,
                registration=made.id,
                detail="" if outcome.created else f"{made.status}, from {_SOURCES[made.source]}",
            )
        )
    return result


_SOURCES = {
    "list": "the email's sign-up link",
    "open": "the open sign-up page",
    "import": "an import",
    "team": "the team",
}


@dataclass(frozen=True)
class _Reader:
    id: int
    name: str
    practice: str | None
    role: str | None


def _recipients(conn: Connection, campaign_id: str, emails: list[str]) -> dict[str, _Reader]:
    keys = sorted({e.lower() for e in emails})
    found: dict[str, _Reader] = {}
    for start in range(0, len(keys), 500):
        rows = conn.execute(
            sa.select(
                ledger.c.email_key,
                ledger.c.id,
                ledger.c.first_name,
                ledger.c.last_name,
                ledger.c.practice,
                ledger.c.role,
            ).where(
                ledger.c.campaign_id == campaign_id,
                ledger.c.email_key.in_(keys[start : start + 500]),
            )
        )
        for r in rows:
            name = " ".join(p for p in (r.first_name, r.last_name) if p)
            found[r.email_key] = _Reader(r.id, name, r.practice, r.role)
    return found
