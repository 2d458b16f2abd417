"""The figures per segment, course, session, practice and role, and clicks split into
human and each kind of machine: who was sent the newsletter, who clicked, and on what.

Every function takes the ``Prepared`` recipients and clicks plus the spec's ``Names`` and
returns a ``Table`` whose columns are what the reader sees; none reads the store or writes
a file, so the CLI, the files and the team's pages show the same numbers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .counting import Prepared, clicker_label, distinct, group_stats, rate_or_nan
from .model import Frames, Names, Table

OTHER_LINKS = "Other links (about, contact, ...)"
UNKNOWN_LINK = "Link not identified"


def funnel(prep: Prepared, names: Names, human_only: bool = True) -> tuple[Table, pd.DataFrame]:
    """Sent, delivered, bounced, clickers and click-through rate per segment, with a total.

    Segments named in the spec appear even with no recipients (a row of zeros and a dash
    for the rate), so a reader sees the segment was empty rather than missing.
    """
    people = prep.people
    order = _ordered_categories(people["segment"], list(names.segments))
    seg = pd.Categorical(people["segment"].astype("object"), categories=order)
    flags = people[
        ["sent", "delivered", "bounced", "clicked", "opened", "machine_clicks", "all_clicks"]
    ].copy()
    # Figures count sent recipients only; an unsent row still shows in the segment (as 0).
    for col in ("delivered", "bounced", "clicked", "opened"):
        flags[col] = flags[col] & flags["sent"]
    grouped = flags.assign(segment=seg).groupby("segment", observed=False).sum()
    grouped = grouped.reindex(order, fill_value=0).astype("int64")
    grouped.loc["__total__"] = grouped.sum()
    clicker = clicker_label(human_only)
    table = pd.DataFrame(
        {
            "Segment": [names.segments.get(s, s) for s in order] + ["All segments"],
            "Sent": grouped["sent"].to_numpy(),
            "Delivered": grouped["delivered"].to_numpy(),
            "Bounced": grouped["bounced"].to_numpy(),
            clicker: grouped["clicked"].to_numpy(),
            "Click-through rate": rate_or_nan(grouped["clicked"], grouped["delivered"]),
            "Machine clicks": grouped["machine_clicks"].to_numpy(),
            "All clicks (raw)": grouped["all_clicks"].to_numpy(),
        }
    )
    formats = {
        "Segment": "text",
        "Sent": "int",
        "Delivered": "int",
        "Bounced": "int",
        clicker: "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
        "All clicks (raw)": "int",
    }
    if prep.opens_tracked:
        table["Opens (unreliable)"] = grouped["opened"].to_numpy()
        formats["Opens (unreliable)"] = "int"
    keyed = pd.DataFrame(
        {
            "name": table["Segment"].to_numpy()[:-1],
            "sent": grouped["sent"].to_numpy()[:-1],
            "delivered": grouped["delivered"].to_numpy()[:-1],
            "clickers": grouped["clicked"].to_numpy()[:-1],
        },
        index=order,
    )
    note = (
        "Click-through rate = unique clickers / delivered. Bounced counts bounces and "
        "drops reported by SendGrid. A dash means there is nothing to divide by."
    )
    return Table("funnel", "Funnel per segment", table, formats, note, total=True), keyed


def _course_order(frames: Frames, names: Names) -> list[str]:
    ids = [c for c in frames.links["course_id"].astype("object") if isinstance(c, str)]
    return list(names.courses) + sorted(set(ids) - set(names.courses))


def courses(
    prep: Prepared, frames: Frames, names: Names, delivered: int, human_only: bool = True
) -> tuple[Table, pd.DataFrame]:
    """Unique clickers and total clicks per course, with links that are not a course after."""
    course_order = _course_order(frames, names)
    order = course_order + [OTHER_LINKS, UNKNOWN_LINK]
    rank = {c: i for i, c in enumerate(course_order)}
    link_ids = pd.to_numeric(frames.links["id"]).astype("int64").to_numpy()
    link_group = np.array(
        [
            rank.get(c, len(course_order)) if isinstance(c, str) else len(course_order)
            for c in frames.links["course_id"].astype("object")
        ]
        + [len(order) - 1],
        dtype=np.int64,
    )  # last: an unknown link
    at = pd.Index(link_ids).get_indexer(pd.Index(prep.clicks["link_id"].to_numpy()))
    group = link_group[np.where(at >= 0, at, len(link_ids))]
    stats = group_stats(group, len(order), prep.clicks, human_only)
    stats.index = order
    stats = stats[(stats.index.isin(course_order)) | (stats["total_all"] > 0)]
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in stats.index],
            clicker_label(human_only): stats["unique"].to_numpy(),
            "Total clicks": stats["total"].to_numpy(),
            "Click-through rate": rate_or_nan(stats["unique"], np.full(len(stats), delivered)),
            "Machine clicks": stats["machine"].to_numpy(),
        }
    )
    formats = {
        "Course": "text",
        clicker_label(human_only): "int",
        "Total clicks": "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
    }
    note = (
        "Unique clickers counts each person once per course, however often they clicked; "
        "total clicks counts every click. Rate = unique clickers on the course / all delivered."
    )
    keyed = pd.DataFrame(
        {
            "name": table["Course"].to_numpy(),
            "clickers": stats["unique"].to_numpy(),
            "clicks": stats["total"].to_numpy(),
            "delivered": delivered,
        },
        index=stats.index,
    )
    return Table("courses", "Clicks per course", table, formats, note), keyed


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
    course_rank = {c: i for i, c in enumerate(_course_order(frames, names))}
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


def by_group(prep: Prepared, column: str, title: str, key: str, human_only: bool = True) -> Table:
    """Recipients, delivered, clickers, clicks and rate per practice or role, busiest first.

    The recipient count sits beside the clicks so a big practice is not mistaken for an
    engaged one."""
    people = prep.people[prep.people["sent"]]
    label = column.capitalize()
    grouped = people.groupby(column, observed=True).agg(
        sent=("sent", "sum"),
        delivered=("delivered", "sum"),
        clicked=("clicked", "sum"),
        clicks=("clicks", "sum"),
        machine=("machine_clicks", "sum"),
    )
    grouped = grouped.astype("int64")
    grouped["rate"] = rate_or_nan(grouped["clicked"], grouped["delivered"])
    grouped = grouped.reset_index()
    grouped[column] = grouped[column].astype("object")
    grouped = grouped.sort_values(
        ["clicked", "rate", column],
        ascending=[False, False, True],
        kind="stable",
        na_position="last",
    )
    table = pd.DataFrame(
        {
            label: grouped[column].to_numpy(),
            "Recipients": grouped["sent"].to_numpy(),
            "Delivered": grouped["delivered"].to_numpy(),
            clicker_label(human_only): grouped["clicked"].to_numpy(),
            "Total clicks": grouped["clicks"].to_numpy(),
            "Click-through rate": grouped["rate"].to_numpy(),
            "Machine clicks": grouped["machine"].to_numpy(),
        }
    )
    formats = {
        label: "text",
        "Recipients": "int",
        "Delivered": "int",
        clicker_label(human_only): "int",
        "Total clicks": "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
    }
    return Table(key, title, table, formats, "Recipients = people the newsletter was sent to.")


def _ordered_categories(values: pd.Series, preferred: list[str]) -> list[str]:
    seen = [v for v in pd.unique(values.astype("object")) if isinstance(v, str)]
    return list(preferred) + sorted(v for v in seen if v not in preferred)


# machine_reason values written by equip_mailer.track.machines, in words a board paper can use
REASON_WORDS = {
    "after-delivery": "clicked within seconds of delivery",
    "head": "link check (HEAD request)",
    "burst": "many links within seconds",
    "ua:empty": "no browser named",
}


def reason_label(reason: object) -> str:
    """A machine_reason in words; a user-agent reason is the scanner's name."""
    if not isinstance(reason, str) or not reason:
        return "no reason given"
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    return reason.removeprefix("ua:")


def machine_vs_human(prep: Prepared) -> Table:
    """Every click, split into human and each machine reason, with the people behind them."""
    clicks = prep.clicks
    reasons = clicks["machine_reason"]
    if not isinstance(reasons.dtype, pd.CategoricalDtype):
        reasons = reasons.astype("object").astype("category")
    labels = ["Human", "Machine: no reason given"] + [
        "Machine: " + reason_label(r) for r in reasons.cat.categories
    ]
    group = np.where(clicks["machine"].to_numpy(dtype=bool), reasons.cat.codes.to_numpy() + 2, 0)
    stats = group_stats(group, len(labels), clicks.assign(machine=False), human_only=False)
    stats.index = labels
    stats = stats.groupby(level=0, sort=False).sum()  # reasons sharing a label
    totals = stats["total"].to_dict()
    machine_rows = [k for k in stats.index if k != "Human" and totals[k] > 0]
    order = ["Human"] + sorted(machine_rows, key=lambda k: (-int(totals[k]), k))
    total = stats.loc[order, "total"]
    people = stats.loc[order, "unique"]
    all_clicks = int(total.sum())
    table = pd.DataFrame(
        {
            "Clicks by": order + ["All clicks"],
            "Clicks": list(total.astype("int64")) + [all_clicks],
            "Share of clicks": list(rate_or_nan(total, np.full(len(total), all_clicks)))
            + [1.0 if all_clicks else np.nan],
            "People": list(people.astype("int64")) + [len(distinct(clicks["pos"].to_numpy()))],
        }
    )
    formats = {"Clicks by": "text", "Clicks": "int", "Share of clicks": "pct", "People": "int"}
    note = (
        "Machine clicks are mail scanners and link checkers opening links before (or "
        "instead of) the reader; the tracking service flags them and says why. "
        "People can appear in more than one row."
    )
    return Table("machine", "Machine and human clicks", table, formats, note, total=True)
