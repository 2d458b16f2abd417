"""The figures per segment, course, session, practice and role, and clicks split into
human and each kind of machine: who was sent the newsletter, who clicked, and on what.

Every function takes the ``Prepared`` recipients and clicks plus the spec's ``Names`` and
returns a ``Table`` whose columns are what the reader sees; none reads the store or writes
a file, so the CLI, the files and the team's pages show the same numbers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from .counting import Prepared, clicker_label, distinct, group_stats, rate_or_nan
from .load import NOT_GIVEN
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
        [
            "sent",
            "delivered",
            "bounced",
            "unsubscribed",
            "complained",
            "clicked",
            "opened",
            "confirmed",
            "waiting",
            "signed_up",
            "machine_clicks",
            "all_clicks",
        ]
    ].copy()
    # Figures count sent recipients only; an unsent row still shows in the segment (as 0).
    for col in ("delivered", "bounced", "clicked", "opened", "unsubscribed", "complained"):
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
            "Unsubscribed": grouped["unsubscribed"].to_numpy(),
            clicker: grouped["clicked"].to_numpy(),
            "Click-through rate": rate_or_nan(grouped["clicked"], grouped["delivered"]),
            "Signed up: place": grouped["confirmed"].to_numpy(),
            "Signed up: waiting": grouped["waiting"].to_numpy(),
            "Sign-up rate": rate_or_nan(grouped["signed_up"], grouped["delivered"]),
            "Machine clicks": grouped["machine_clicks"].to_numpy(),
        }
    )
    formats = {
        "Segment": "text",
        "Sent": "int",
        "Delivered": "int",
        "Bounced": "int",
        "Unsubscribed": "int",
        clicker: "int",
        "Click-through rate": "pct",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Sign-up rate": "pct",
        "Machine clicks": "int",
    }
    if grouped["complained"].sum():
        table.insert(5, "Marked as spam", grouped["complained"].to_numpy())
        formats["Marked as spam"] = "int"
    if prep.opens_tracked:
        table["Opens (unreliable)"] = grouped["opened"].to_numpy()
        formats["Opens (unreliable)"] = "int"
    keyed = pd.DataFrame(
        {
            "name": table["Segment"].to_numpy()[:-1],
            "sent": grouped["sent"].to_numpy()[:-1],
            "delivered": grouped["delivered"].to_numpy()[:-1],
            "clickers": grouped["clicked"].to_numpy()[:-1],
            "signed_up": grouped["signed_up"].to_numpy()[:-1],
        },
        index=order,
    )
    note = (
        "Click-through rate = unique clickers / delivered. Signed up counts people of the "
        "segment with a place on some course ('place'), or only on a waiting list "
        "('waiting'); sign-up rate = those people / delivered. Bounced counts bounces and "
        "drops reported by SendGrid; Unsubscribed, the readers who unsubscribed from this "
        "newsletter. A dash means there is nothing to divide by."
    )
    return Table("funnel", "Funnel per segment", table, formats, note, total=True), keyed


def _course_order(frames: Frames, names: Names) -> list[str]:
    ids = [c for c in frames.links["course_id"].astype("object") if isinstance(c, str)]
    return list(names.courses) + sorted(set(ids) - set(names.courses))


def offered_counts(prep: Prepared, names: Names, course_ids: list[str]) -> pd.Series | None:
    """Delivered readers whose email offered each course (could sign up for it); None when
    the spec (which says what each segment is offered) is not at hand."""
    if not names.offered:
        return None
    people = prep.people
    delivered = people.loc[people["sent"] & people["delivered"], "segment"].astype("object")
    per_segment = {str(seg): int(n) for seg, n in delivered.value_counts().items()}
    return pd.Series(
        {
            c: sum(n for seg, n in per_segment.items() if c in names.offered.get(seg, ()))
            for c in course_ids
        },
        dtype="int64",
    )


def course_places(prep: Prepared, frames: Frames) -> pd.DataFrame:
    """Per course id: hosted, places (None: no limit, or booked elsewhere), confirmed and
    waiting (every registration, whoever made it: list, open page, import)."""
    pl = frames.places
    rows = {}
    for cid, sessions in pl.groupby("course_id", sort=False):
        limits = [p for p in sessions["places"] if p is not None and not pd.isna(p)]
        hosted = bool(sessions["hosted"].iloc[0])
        if not hosted or len(limits) < len(sessions):
            places = None
        elif bool(sessions["attend_all"].iloc[0]):
            places = int(min(limits))  # one place covers every day: the smallest day's
        else:
            places = int(sum(limits))
        rows[cid] = {"hosted": hosted, "places": places}
    status = prep.signups.groupby(["course_id", "status"]).size()
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["hosted", "places"])
    for cid in prep.signups["course_id"].unique():
        if cid not in out.index:
            out.loc[cid] = {"hosted": False, "places": None}
    out["confirmed"] = [int(status.get((c, "confirmed"), 0)) for c in out.index]
    out["waiting"] = [int(status.get((c, "waiting"), 0)) for c in out.index]
    return out


def courses(
    prep: Prepared, frames: Frames, names: Names, delivered: int, human_only: bool = True
) -> tuple[Table, pd.DataFrame]:
    """Per course: the readers offered it, unique clickers and their rate over those readers,
    clicks, and sign-ups against places; links that are not a course after."""
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
    is_course = stats.index.isin(course_order)
    offered = offered_counts(prep, names, course_order)
    audience = [
        (int(offered[c]) if offered is not None else delivered) if real else None
        for c, real in zip(stats.index, is_course, strict=True)
    ]
    places = course_places(prep, frames)

    def place(c: str, column: str) -> object:
        if c in places.index:
            return places.at[c, column]
        return 0 if column in ("confirmed", "waiting") else None  # nobody signed up

    confirmed = [
        place(c, "confirmed") if real else None
        for c, real in zip(stats.index, is_course, strict=True)
    ]
    capacity = [place(c, "places") for c in stats.index]
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in stats.index],
            "Offered to": _counts(audience),
            clicker_label(human_only): stats["unique"].to_numpy(),
            "Click-through rate": rate_or_nan(
                stats["unique"], [np.nan if a is None else a for a in audience]
            ),
            "Total clicks": stats["total"].to_numpy(),
            "Machine clicks": stats["machine"].to_numpy(),
            "Signed up: place": _counts(confirmed),
            "Signed up: waiting": _counts(
                [
                    place(c, "waiting") if real else None
                    for c, real in zip(stats.index, is_course, strict=True)
                ]
            ),
            "Places": _counts(capacity),
            "Places filled": rate_or_nan(
                [np.nan if v is None else v for v in confirmed],
                [np.nan if v is None else v for v in capacity],
            ),
        }
    )
    formats = {
        "Course": "text",
        "Offered to": "int",
        clicker_label(human_only): "int",
        "Click-through rate": "pct",
        "Total clicks": "int",
        "Machine clicks": "int",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Places": "int",
        "Places filled": "pct",
    }
    note = (
        "Offered to = delivered readers whose email offered the course (it was open to "
        "their QI level); click-through rate = unique clickers on the course / those "
        "readers. Unique clickers counts each person once per course, total clicks every "
        "click. Signed up counts every registration, from the email, the open sign-up page "
        "or an import; a dash under Places: no limit, or booked elsewhere."
    )
    if offered is None:
        note += " The campaign spec was not at hand, so 'offered to' is every delivered reader."
    keyed = pd.DataFrame(
        {
            "name": table["Course"].to_numpy(),
            "clickers": stats["unique"].to_numpy(),
            "clicks": stats["total"].to_numpy(),
            "delivered": [np.nan if a is None else a for a in audience],
            "signed_up": [
                0 if c is None else int(c) + int(place(i, "waiting"))  # type: ignore[call-overload]
                for i, c in zip(stats.index, confirmed, strict=True)
            ],
        },
        index=stats.index,
    )
    return Table("courses", "Clicks and sign-ups per course", table, formats, note), keyed


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


def places(prep: Prepared, frames: Frames, names: Names) -> Table:
    """Places filled against capacity per session, as the rosters count them. A course whose
    one registration covers every date shows the same people on each of its dates."""
    pl = frames.places
    counts = prep.signups.groupby(
        [prep.signups["course_id"], prep.signups["session"].fillna(""), prep.signups["status"]]
    ).size()

    def count(course_id: str, session: str, attend_all: bool, status: str) -> int:
        return int(counts.get((course_id, "" if attend_all else session, status), 0))

    rank = {c: i for i, c in enumerate(_course_order(frames, names))}
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
                "Session": _session_label(session),
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
        "Session": "text",
        "Starts (London)": "text",
        "Places": "int",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Places filled": "pct",
        "Places left": "int",
        "Booked": "text",
    }
    frame = pd.DataFrame(rows, columns=list(columns))
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


def _counts(values: list) -> pd.Series:
    """Whole numbers with gaps (None: shown as a dash, an empty cell in the files)."""
    return pd.Series(values, dtype="Int64")


def _london(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    from equip_mailer.signup.catalogue import utc_to_london

    return f"{utc_to_london(pd.Timestamp(value).to_pydatetime()):%H:%M}"


def segment_courses(prep: Prepared, frames: Frames, names: Names, human_only: bool) -> Table:
    """Each segment's unique clickers and sign-ups per course, so a course's pull is read
    against the readers it was offered to. A dash: the segment's email did not offer it."""
    people = prep.people
    order = _ordered_categories(people["segment"], list(names.segments))
    course_order = _course_order(frames, names)
    link_course = dict(
        zip(
            pd.to_numeric(frames.links["id"]).astype("int64"),
            frames.links["course_id"].astype("object"),
            strict=True,
        )
    )
    clicks = prep.clicks
    if human_only:
        clicks = clicks[~clicks["machine"].to_numpy(dtype=bool)]
    course_of = clicks["link_id"].map(link_course)
    segment_of = people["segment"].astype("object").to_numpy()
    clicked = (
        pd.DataFrame({"course": course_of.to_numpy(), "pos": clicks["pos"].to_numpy()})
        .dropna()
        .drop_duplicates()
    )
    clicked["segment"] = segment_of[clicked["pos"].to_numpy(dtype=np.int64)]
    clickers = clicked.groupby(["segment", "course"]).size()
    listed = prep.signups[prep.signups["pos"] >= 0]
    signed = (
        listed.assign(segment=segment_of[listed["pos"].to_numpy(dtype=np.int64)])
        .groupby(["segment", "course_id"])
        .size()
    )
    table = pd.DataFrame({"Segment": [names.segments.get(s, s) for s in order] + ["All segments"]})
    formats = {"Segment": "text"}
    for c in course_order:
        name = names.courses.get(c, c)
        for label, counts in (("clickers", clickers), ("signed up", signed)):
            values: list[int | None] = []
            for seg in order:
                n = int(counts.get((seg, c), 0))
                offered = not names.offered or c in names.offered.get(seg, ())
                values.append(n if offered or n else None)
            values.append(sum(v or 0 for v in values))
            table[f"{name} {label}"] = pd.array(values, dtype="Int64")
            formats[f"{name} {label}"] = "int"
    return Table(
        "segment_courses",
        "Segments and courses",
        table,
        formats,
        ("Unique human clickers" if human_only else "Unique clickers (incl. machine)")
        + " on each course, and people who signed up for it (a place or the waiting list), "
        "per segment. A dash: the segment's email did not offer the course.",
        total=True,
    )


NO_PRACTICE = "No practice (citizens and service users)"


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
    if column == "practice":  # citizens and service users have none: say so, not "(not given)"
        grouped[column] = grouped[column].replace({NOT_GIVEN: NO_PRACTICE})
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
    "after-delivery": "link scanner (opened the link within seconds of delivery)",
    "head": "link checker (checked the link without opening the page)",
    "burst": "link scanner (opened every link within seconds)",
    "ua:empty": "link scanner (no browser named)",
    "ua:microsoft-safelinks": "link scanner (Microsoft Safe Links)",
    "ua:microsoft-office": "Microsoft Office checking the link",
    "ua:microsoft-preview": "link preview (Microsoft Teams or Skype)",
    "ua:mimecast": "link scanner (Mimecast)",
    "ua:proofpoint": "link scanner (Proofpoint)",
    "ua:barracuda": "link scanner (Barracuda)",
    "ua:cisco-ironport": "link scanner (Cisco IronPort)",
    "ua:symantec": "link scanner (Symantec)",
    "ua:forcepoint": "link scanner (Forcepoint)",
    "ua:sophos": "link scanner (Sophos)",
    "ua:trend-micro": "link scanner (Trend Micro)",
    "ua:fortinet": "link scanner (Fortinet)",
    "ua:mcafee": "link scanner (McAfee)",
    "ua:checkpoint": "link scanner (Check Point)",
    "ua:google-preview": "link preview or scanner (Google)",
    "ua:slack-preview": "link preview (Slack)",
    "ua:chat-preview": "link preview (a chat or social app)",
    "ua:http-client": "link scanner (a program, not a browser)",
    "ua:bot": "web crawler or link checker",
}


def reason_label(reason: object) -> str:
    """A machine_reason in words a board paper can use ("link scanner", not "http-client")."""
    if not isinstance(reason, str) or not reason:
        return "no reason given"
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    name = reason.removeprefix("ua:").replace("-", " ")
    return f"link scanner ({name})"


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
