"""The report's vocabulary: what flows in (``Frames``, ``Names``) and what comes out
(``Table``, ``Figure``, ``Report``).

Kept apart from the code that fills them so the writers, the CLI and later the team's
browser pages can all depend on these shapes without pulling in the store or the SQL.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign


SIGNUP_COLUMNS = ["ledger_id", "course_id", "session", "status", "source", "person"]
PLACES_COLUMNS = ["course_id", "name", "hosted", "attend_all", "session", "starts_at", "places"]


def no_signups() -> pd.DataFrame:
    return pd.DataFrame(columns=SIGNUP_COLUMNS)


def no_places() -> pd.DataFrame:
    return pd.DataFrame(columns=PLACES_COLUMNS)


@dataclass(frozen=True)
class Frames:
    """What a report needs from the store for one campaign, and nothing more.

    ledger:  id, segment, practice, role, state, sent_at  (one row per recipient)
    events:  event, at, source, ledger_id, link_id (-1 when unknown), machine, machine_reason
    links:   id, key, course_id, session, label
    batches: id, segment, state, size, created_at
    signups: ledger_id (-1: not on the lists), course_id, session (its date; None when one
             registration covers every date), status (confirmed | waiting), source, person
             (a number per address, the same on each of one person's registrations)
    places:  course_id, name, hosted, attend_all, session, starts_at, places (None: no limit)
             (one row per active session of a course in the store)
    """

    campaign_id: str
    subject: str | None
    ledger: pd.DataFrame
    events: pd.DataFrame
    links: pd.DataFrame
    batches: pd.DataFrame
    in_store: bool = True  # False: the campaign has no row at all (never sent)
    signups: pd.DataFrame = field(default_factory=no_signups)
    places: pd.DataFrame = field(default_factory=no_places)


@dataclass(frozen=True)
class Names:
    """Display names and orders from the campaign spec (optional: ids are used without it)."""

    title: str | None = None
    subject: str | None = None
    segments: dict[str, str] = field(default_factory=dict)  # id -> name, spec order
    courses: dict[str, str] = field(default_factory=dict)  # id -> name, spec order
    sessions: dict[str, list[str]] = field(
        default_factory=dict
    )  # course id -> ISO dates with their own link
    course_links: frozenset[str] = frozenset()  # course ids with one course-wide link
    # segment id -> the course ids its email offers (can sign up for; locked ones are not)
    offered: dict[str, tuple[str, ...]] = field(default_factory=dict)


def names_from_spec(campaign: Campaign) -> Names:
    """Names from a loaded ``Campaign``; reports stay readable without one."""
    from equip_mailer.compose.menu import campaign_menus

    return Names(
        offered={
            sid: tuple(c.id for c in menu.eligible)
            for sid, menu in campaign_menus(campaign).items()
        },
        title=campaign.title,
        subject=campaign.subject,
        segments={s.id: s.name for s in campaign.segments},
        courses={c.id: c.name for c in campaign.courses},
        sessions={c.id: [s.key for s in c.sessions if s.sign_up_url] for c in campaign.courses},
        course_links=frozenset(
            c.id
            for c in campaign.courses
            if c.sign_up_url or any(not s.sign_up_url for s in c.sessions)
        ),
    )


@dataclass(frozen=True)
class Table:
    """One table of the report, ready to print: column names are what the reader sees.

    ``formats`` says how each column is shown (int, pct, text, datetime, date) so the HTML,
    the spreadsheet and the terminal agree; ``total`` marks a last row that sums the others.
    """

    key: str  # file stem and sheet name: "funnel", "courses"
    title: str
    frame: pd.DataFrame
    formats: dict[str, str]
    note: str | None = None
    total: bool = False


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class Report:
    campaign_id: str
    subject: str | None
    title: str | None
    human_only: bool
    sent: bool  # False: nothing has gone out yet
    first_send: dt.datetime | None
    last_event: dt.datetime | None
    headline: list[Figure]
    tables: dict[str, Table]
    notes: list[str]
    series: pd.DataFrame  # clicks over time, every period (for the chart)
    by_segment: pd.DataFrame  # id-indexed figures, for comparing quarters
    by_course: pd.DataFrame

    @property
    def date_range(self) -> str:
        if not self.first_send:
            return "not sent yet"
        end = max(self.last_event or self.first_send, self.first_send)
        start_text = day_label(self.first_send)
        return start_text if day_label(end) == start_text else f"{start_text} to {day_label(end)}"


def day_label(value: dt.datetime | pd.Timestamp) -> str:
    """A date as the report's cards and date ranges show it: ``22 Apr 2019``."""
    return f"{value.day} {value:%b %Y}"
