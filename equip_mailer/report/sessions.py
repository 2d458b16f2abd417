"""The figures per session: clicks on each date's link and places filled against capacity,
the same numbers as the session's roster.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from .counting import Prepared, clicker_label, group_stats
from .courses import course_ids_in_order
from .model import Frames, Names, Table


def sessions(prep: Prepared, frames: Frames, names: Names, human_only: bool = True) -> Table:
    """Clicks per session link. A course with one sign-up link for all its sessions gets one
    row ("all sessions, one link"), since a click cannot tell which date the reader chose."""
    rows = _session_rows(frames, names)
    # rows from the spec alone have link id -1, which no click carries
    row_ids = rows["link_id"].to_numpy(dtype=np.int64)
    real = np.flatnonzero(row_ids >= 0)
    at = pd.Index(row_ids[real]).get_indexer(prep.clicks["link_id"].to_numpy())
    group = np.where(at >= 0, real[np.clip(at, 0, None)] if len(real) else -1, -1)
    stats = group_stats(group, len(rows), prep.clicks, human_only)
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in rows["course_id"]],
            "Session": [_session_label(s) for s in rows["session"]],
            clicker_label(human_only): stats["unique"].to_numpy() if len(rows) else [],
            "Total clicks": stats["total"].to_numpy() if len(rows) else [],
            "Machine clicks": stats["machine"].to_numpy() if len(rows) else [],
        }
    )
    formats = {
        "Course": "text",
        "Session": "text",
        clicker_label(human_only): "int",
        "Total clicks": "int",
        "Machine clicks": "int",
    }
    return Table(
        "sessions",
        "Clicks per session",
        table,
        formats,
        "Courses with one sign-up link for all dates show as 'All sessions (one link)'.",
    )


def _session_rows(frames: Frames, names: Names) -> pd.DataFrame:
    """One row per session link (link_id, course_id, session), in the spec's course order and
    date order; before a send, the links the spec will create (link id -1)."""
    lk = frames.links
    rows = pd.DataFrame(
        {
            "link_id": pd.to_numeric(lk["id"]).astype("int64"),
            "course_id": lk["course_id"].astype("object"),
            "session": lk["session"].astype("object"),
        }
    )
    rows = rows[rows["course_id"].notna()]
    if rows.empty and names.courses:
        # Never sent: no links registered yet, so list what the spec will create.
        spec_rows: list[tuple[int, str, str | None]] = []
        for cid in names.courses:
            for date in names.sessions.get(cid, []):
                spec_rows.append((-1, cid, date))
            if cid in names.course_links:
                spec_rows.append((-1, cid, None))
        rows = pd.DataFrame(spec_rows, columns=["link_id", "course_id", "session"])
    course_rank = {c: i for i, c in enumerate(course_ids_in_order(frames, names))}
    rows = rows.assign(
        rank=rows["course_id"].map(course_rank), sort_session=rows["session"].fillna("9999")
    )
    rows = rows.sort_values(["rank", "sort_session"], kind="stable").reset_index(drop=True)
    return rows


def _session_label(session: object) -> str:
    if not isinstance(session, str) or not session:
        return "All sessions (one link)"
    try:
        date = dt.date.fromisoformat(session[:10])
    except ValueError:
        return session
    return f"{date:%a} {date.day} {date:%b %Y}"


def places(prep: Prepared, frames: Frames, names: Names) -> Table:
    """Places filled against capacity per session, as the rosters count them. A course whose
    one registration covers every date shows the same people on each of its dates."""
    pl = frames.places
    counts = prep.signups.groupby(
        [prep.signups["course_id"], prep.signups["session"].fillna(""), prep.signups["status"]]
    ).size()

    def count(course_id: str, session: str, attend_all: bool, status: str) -> int:
        return int(counts.get((course_id, "" if attend_all else session, status), 0))

    rank = {c: i for i, c in enumerate(course_ids_in_order(frames, names))}
    pl = pl.assign(rank=pl["course_id"].map(lambda c: rank.get(c, len(rank)))).sort_values(
        ["rank", "starts_at"], kind="stable"
    )
    rows = []
    for r in pl.to_dict("records"):
        course_id, session, hosted = str(r["course_id"]), str(r["session"]), bool(r["hosted"])
        confirmed = count(course_id, session, bool(r["attend_all"]), "confirmed")
        waiting = count(course_id, session, bool(r["attend_all"]), "waiting")
        limit = None if r["places"] is None or pd.isna(r["places"]) else int(r["places"])
        rows.append(
            {
                "Course": names.courses.get(course_id, str(r["name"])),
                "Session": _session_date(session),
                "Starts (London)": _london(r["starts_at"]),
                "Places": limit if hosted else None,
                "Signed up: place": confirmed,
                "Signed up: waiting": waiting,
                "Places filled": (confirmed / limit) if hosted and limit else np.nan,
                "Places left": max(0, limit - confirmed) if hosted and limit is not None else None,
                "Booked": "here" if hosted else "elsewhere (imported)",
            }
        )
    columns = {
        "Course": "text",
        "Session": "date",  # a date cell in Excel, which sorts and filters it as one
        "Starts (London)": "text",
        "Places": "int",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Places filled": "pct",
        "Places left": "int",
        "Booked": "text",
    }
    frame = pd.DataFrame(rows, columns=list(columns))
    frame["Session"] = pd.to_datetime(frame["Session"])
    for col in ("Places", "Places left"):
        frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
    return Table(
        "places",
        "Places per session",
        frame,
        columns,
        "The same figures as the rosters (equip-mailer roster). Places filled = people with "
        "a place / places; a dash under Places: no limit, or booked elsewhere.",
    )


def _session_date(session: str) -> pd.Timestamp | None:
    """A session's date (its key, ``2019-06-27``); None (a dash) if it is none."""
    try:
        return pd.Timestamp(dt.date.fromisoformat(session[:10]))
    except ValueError:
        return None


def _london(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    from equip_mailer.signup.catalogue import utc_to_london

    return f"{utc_to_london(pd.Timestamp(value).to_pydatetime()):%H:%M}"
