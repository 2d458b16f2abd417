"""A course on the menu and its sessions, as the spec gives them: dates and times, places,
how one registers (here or on an external booking page), and who may come.

Part of the spec's format (``campaign`` holds the rest); the checks that one course can make
on itself live next to its fields.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .spec_fields import SLUG, QILevel, Strict, Text, Url


class Session(Strict):
    ONE_LINE = frozenset({"venue"})

    date: dt.date
    start: dt.time
    end: dt.time
    venue: str | None = None
    sign_up_url: Url | None = None
    # Capacity for a course signed up for here (``sign_up: equip``); absent = unlimited.
    places: Annotated[int, Field(ge=1, le=100_000)] | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _date_only(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            raise ValueError(f"{value} is a date and time; give the date alone (YYYY-MM-DD)")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> Any:
        # People write 9:00 and 9.00; pydantic only takes 09:00. Unquoted, YAML reads 9.30
        # as the number 9.3, and pydantic would read a number as seconds past midnight (UTC).
        if isinstance(value, float):
            value = f"{value:.2f}"
        elif isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f"{value} is not a time (use HH:MM, e.g. 13:00)")
        if isinstance(value, str):
            m = re.fullmatch(r"\s*(\d{1,2})[:.](\d{2})\s*", value)
            if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
                return dt.time(int(m.group(1)), int(m.group(2)))
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: dt.time) -> dt.time:
        # A zone on one time only would make start and end incomparable (a TypeError).
        if value.tzinfo is not None:
            raise ValueError(f"{value} has a time zone; give the local time alone (HH:MM)")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Session:
        if self.end <= self.start:
            raise ValueError(
                f"ends at {self.end:%H:%M}, which is not after its start {self.start:%H:%M}"
            )
        return self

    @property
    def key(self) -> str:
        return self.date.isoformat()


class Course(Strict):
    ONE_LINE = frozenset({"id", "name", "format"})

    id: Annotated[str, Field(pattern=SLUG)]
    name: str
    format: str  # "Half-day training", "3-day action learning set"
    blurb: Text  # short Markdown
    who_can_register: str
    requires: QILevel = "none"  # lowest QI level that may attend
    leads_to: QILevel | None = None  # level a reader has after completing it
    attendance: str | None = None  # "You will need to attend all 3 days."
    # Required with two or more sessions (see _schedule_said): a forgotten attend_all would
    # otherwise say "Choose a date" above the days everyone must attend.
    schedule: Literal["choose_one", "attend_all"] = "choose_one"
    delivered_by: str | None = None
    sign_up_url: Url | None = None  # one link for the course, or one per session
    # "equip": readers sign up on our own pages (places, waiting list, confirmations);
    # otherwise sign_up_url names an external booking page.
    sign_up: Literal["equip"] | None = None
    waiting_list: bool = True  # when every place is taken, take names in order (hosted only)
    sessions: list[Session] = []
    # Dates not set yet: no sessions, and the email says "Dates to be confirmed" with a
    # button to register interest at sign_up_url.
    dates_tbc: bool = False
    # Sign-up deadline (hosted only) as a London wall-clock time; a bare date in the spec
    # means the end of that day. Absent: when the course can no longer be taken whole (see
    # ``closes_local``).
    closes: dt.datetime | None = None

    @field_validator("sign_up", mode="before")
    @classmethod
    def _equip_or_nothing(cls, value: Any) -> Any:
        if value is not None and value != "equip":
            shown = (
                {True: "yes", False: "no"}.get(value, value) if isinstance(value, bool) else value
            )
            raise ValueError(
                f"{shown!r} is not 'equip': write sign_up: equip to take sign-ups on our own "
                "pages, or leave it out and give a sign_up_url"
            )
        return value

    @field_validator("waiting_list", "closes", mode="before")
    @classmethod
    def _hosted_only(cls, value: Any, info: ValidationInfo) -> Any:
        if info.data.get("sign_up") != "equip":
            raise ValueError(
                "only applies to a course signed up for here (sign_up: equip); "
                "this one uses sign_up_url"
            )
        return value

    @field_validator("closes", mode="before")
    @classmethod
    def _deadline(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                raise ValueError(f"{value} has a time zone; give the London time alone")
            return value
        if isinstance(value, dt.date):  # the whole of that day
            return dt.datetime.combine(value + dt.timedelta(days=1), dt.time())
        m = re.fullmatch(r"\s*(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{1,2})[:.](\d{2}))?\s*", str(value))
        try:
            if m is None:
                raise ValueError
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
            if m[4] is None:
                return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
            return dt.datetime.combine(day, dt.time(int(m[4]), int(m[5])))
        except ValueError:
            raise ValueError(
                f"{value} is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM)"
            ) from None

    @field_validator("closes")
    @classmethod
    def _before_the_end(cls, value: dt.datetime | None, info: ValidationInfo) -> Any:
        sessions = info.data.get("sessions") or []
        if value is not None and sessions:
            last = max(dt.datetime.combine(s.date, s.start) for s in sessions)
            if value > last:
                raise ValueError(
                    f"sign-ups would close at {value:%Y-%m-%d %H:%M}, after the last session "
                    f"starts ({last:%Y-%m-%d %H:%M}); close them before the course is over"
                )
        return value

    @model_validator(mode="before")
    @classmethod
    def _schedule_said(cls, data: Any) -> Any:
        if isinstance(data, dict) and "schedule" not in data:
            sessions = data.get("sessions")
            if isinstance(sessions, list) and len(sessions) >= 2:
                raise ValueError(
                    f"has {len(sessions)} sessions: add schedule: choose_one (each reader "
                    "picks one date) or schedule: attend_all (readers come to every date)"
                )
        return data

    @property
    def hosted(self) -> bool:
        """Signed up for on our own pages (places, waiting list, confirmation mail)."""
        return self.sign_up == "equip"

    @model_validator(mode="after")
    def _sign_up_somewhere(self) -> Course:
        if self.dates_tbc or not self.sessions:
            self._check_dates_tbc()
            return self
        if self.hosted:
            self._check_hosted()
        elif self.sign_up_url is None:
            missing = [i for i, s in enumerate(self.sessions) if s.sign_up_url is None]
            if missing:
                raise ValueError(
                    "needs a sign_up_url for the course, or one on every session "
                    f"(missing on sessions {', '.join(map(str, missing))})"
                )
        keys = [s.key for s in self.sessions]
        if len(set(keys)) != len(keys):
            raise ValueError("has two sessions on the same date")
        return self

    def _check_dates_tbc(self) -> None:
        if not self.dates_tbc:
            raise ValueError(
                "has no sessions: give its sessions, or write dates_tbc: true for a course "
                "whose dates are to be confirmed"
            )
        if self.sessions:
            raise ValueError(
                "has dates_tbc: true and sessions; remove dates_tbc now that the dates are set"
            )
        if self.hosted or self.sign_up_url is None:
            raise ValueError(
                "has dates to be confirmed, so readers cannot take a place yet: give a "
                "sign_up_url where they register their interest"
                + (" (instead of sign_up: equip)" if self.hosted else "")
            )

    def _check_hosted(self) -> None:
        external = ["the course"] if self.sign_up_url else []
        external += [f"sessions[{i}]" for i, s in enumerate(self.sessions) if s.sign_up_url]
        if external:
            raise ValueError(
                "is signed up for here (sign_up: equip), so it cannot also have a "
                f"sign_up_url (found on {', '.join(external)}); keep one of the two"
            )

    @property
    def closes_local(self) -> dt.datetime:
        """When sign-ups close, as a London wall-clock time: ``closes`` (a bare date means the
        end of that day), else when the course can no longer be taken: an ``attend_all``
        course (or a single date) at its first session's start, a menu of dates to choose
        from at its last one's, each date being offered until it starts (a reader in July
        expects to book September's afternoon once June's has passed)."""
        if self.closes is not None:
            return self.closes
        if not self.sessions:  # dates to be confirmed: never hosted, nothing to close
            return dt.datetime.max
        order = sorted(self.sessions, key=lambda s: (s.date, s.start))
        decisive = order[-1] if self.schedule == "choose_one" else order[0]
        return dt.datetime.combine(decisive.date, decisive.start)
