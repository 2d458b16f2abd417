"""One campaign's whole report (every table, the headline figures and the notes), and
several campaigns set side by side.

The only place that decides which tables a report has and what its notes say, so the
files, the terminal and the team's pages cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .breakdowns import by_group, machine_vs_human
from .counting import Prepared, prepare, rate_or_nan
from .courses import courses, segment_courses
from .funnel import funnel
from .model import Figure, Frames, Names, Report, Table, day_label
from .over_time import clicks_over_time, clicks_per_day, first_send
from .sessions import places, sessions


def build_report(frames: Frames, names: Names | None = None, human_only: bool = True) -> Report:
    """Every table of one campaign's report, plus headline figures and notes."""
    names = names or Names()
    prep = prepare(frames, human_only)
    sent_people = prep.people[prep.people["sent"]]
    delivered_n = int(sent_people["delivered"].sum())
    start = first_send(frames)
    funnel_table, by_segment = funnel(prep, names, human_only)
    course_table, by_course = courses(prep, frames, names, delivered_n, human_only)
    series = clicks_over_time(prep, start)
    tables = {
        t.key: t
        for t in [
            funnel_table,
            course_table,
            places(prep, frames, names),
            segment_courses(prep, frames, names, human_only),
            sessions(prep, frames, names, human_only),
            by_group(prep, "practice", "Clicks per practice", "practices", human_only),
            by_group(prep, "role", "Clicks per role", "roles", human_only),
            clicks_per_day(prep, human_only),
            _over_time_table(series),
            machine_vs_human(prep),
        ]
    }
    is_sent = len(sent_people) > 0
    last_event = frames.events["at"].max() if len(frames.events) else None
    return Report(
        campaign_id=frames.campaign_id,
        subject=names.subject or frames.subject,
        title=names.title,
        human_only=human_only,
        sent=is_sent,
        first_send=start.to_pydatetime() if start is not None else None,
        last_event=last_event.to_pydatetime()
        if last_event is not None and not pd.isna(last_event)
        else None,
        headline=_headline(prep, start, human_only),
        tables=tables,
        notes=_notes(prep, is_sent, human_only) + _signup_notes(prep, frames),
        series=series,
        by_segment=by_segment,
        by_course=by_course,
    )


def _over_time_table(series: pd.DataFrame) -> Table:
    """The periods of ``clicks_over_time`` that had a click: the full series (quiet hours
    included) is for the chart, not for reading."""
    busy = series[(series["Human clicks"] > 0) | (series["Machine clicks"] > 0)].reset_index(
        drop=True
    )
    # The header names the zone: a CSV has no Summary sheet to say it, and London is UTC+1
    # all summer.
    busy = busy.rename(columns={"Period start": "Period start (UTC)"})
    return Table(
        "over_time",
        "Clicks over time",
        busy,
        {
            "Period start (UTC)": "datetime",
            "Period": "text",
            "Human clicks": "int",
            "Machine clicks": "int",
        },
        "Hourly for the first 7 days after the send date, then daily (UTC). "
        "Periods with no clicks are left out of this table.",
    )


def _signup_notes(prep: Prepared, frames: Frames) -> list[str]:
    """Where sign-ups that no segment counts came from."""
    outside = prep.signups[prep.signups["pos"] < 0]
    if not len(outside):
        return []
    sources = outside["source"].value_counts()
    words = {
        "open": "from the open sign-up page",
        "import": "imported from a booking tool",
        "team": "added by the team",
        "list": "from a list no longer in the ledger",
    }
    parts = [f"{int(n)} {words.get(str(src), str(src))}" for src, n in sources.items()]
    return [
        f"{len(outside)} sign-up{'s' if len(outside) != 1 else ''} came from people not on "
        f"the campaign's lists ({', '.join(parts)}): counted per course and session, "
        "not per segment."
    ]


def _headline(prep: Prepared, start: pd.Timestamp | None, human_only: bool) -> list[Figure]:
    """The cards at the top: sent, delivered, unique clickers, rate, clicks and sign-ups."""
    people = prep.people
    sent_people = people[people["sent"]]
    sent_n = int(len(sent_people))
    delivered_n = int(sent_people["delivered"].sum())
    clickers_n = int((sent_people["clicked"]).sum())
    all_clicks = int(people["all_clicks"].sum())
    machine_n = int(people["machine_clicks"].sum())
    human_n = int(people["human_clicks"].sum())
    rate = rate_or_nan(clickers_n, delivered_n)
    signups = prep.signups
    confirmed = int((signups["status"] == "confirmed").sum())
    signed = f"{confirmed:,} with a place, {len(signups) - confirmed:,} waiting"
    # Sign-ups are places and waiting-list entries: one person may hold several (one per
    # course), so the card says how many people they are when that differs.
    people_n = int(signups["person"].nunique())
    if people_n != len(signups):
        signed += f"; {people_n:,} {'person' if people_n == 1 else 'people'}"
    return [
        Figure("Sent", f"{sent_n:,}", day_label(start) if start is not None else "not sent yet"),
        Figure(
            "Delivered",
            f"{delivered_n:,}",
            "= sent less bounces (no delivery data)"
            if prep.delivered_fallback and sent_n > 0
            else f"{int(sent_people['bounced'].sum()):,} bounced",
        ),
        Figure(
            "Unique clickers", f"{clickers_n:,}", "human only" if human_only else "incl. machine"
        ),
        Figure(
            "Click-through rate",
            "–" if np.isnan(rate) else f"{float(rate):.1%}",
            "unique clickers / delivered",
        ),
        Figure(
            "Clicks",
            f"{human_n if human_only else all_clicks:,}",
            f"{machine_n:,} machine click{'' if machine_n == 1 else 's'} "
            + ("left out" if human_only else "included"),
        ),
        Figure(
            "Signed up",
            f"{len(signups):,}",
            signed,
        ),
    ]


def _notes(prep: Prepared, is_sent: bool, human_only: bool) -> list[str]:
    """What a reader must know to read the figures right, in the order it matters."""
    notes = []
    if not is_sent:
        notes.append(
            "This campaign has not been sent yet, so there is nothing to count. "
            "The tables fill in once the newsletter goes out."
        )
    elif not len(prep.clicks):
        notes.append("No clicks yet. Most clicks arrive in the first two days after a send.")
    if prep.delivered_fallback and is_sent:
        notes.append(
            "SendGrid reported no deliveries for this campaign (sent through the "
            "outbox, or the event webhook was not set up), so 'delivered' is the "
            "number sent less any bounces."
        )
    notes.append(
        "Headline figures count human clicks only; machine clicks (mail scanners) "
        "are shown beside them."
        if human_only
        else "Headline figures include machine clicks (--all); human-only figures are the default."
    )
    if prep.opens_tracked:
        notes.append(
            "Opens are unreliable: some mail apps open every message automatically "
            "and others block the tracking image. Use clicks to judge interest."
        )
    if prep.dropped_webhook_clicks:
        notes.append(
            f"{prep.dropped_webhook_clicks} SendGrid click events were left out: our "
            "own tracked links counted the same clicks."
        )
    if prep.unmatched_events:
        notes.append(
            f"{prep.unmatched_events} event{'s' if prep.unmatched_events != 1 else ''} "
            "did not match a recipient of this campaign (test sends, previews) and "
            f"{'are' if prep.unmatched_events != 1 else 'is'} left out."
        )
    return notes


# ---------------------------------------------------------------------------------------
# Several quarters side by side

# The comparison's two sign-up figures count different people, so their headers say which:
# a segment's counts its recipients who signed up (however they did); a course's, and the
# campaign's, count every sign-up, including people the newsletter never reached.
SIGNED_UP_RECIPIENTS = "Signed up (recipients)"
SIGNED_UP_ALL = "Signed up (all routes)"
ALL_ROUTES_NOTE = (
    f"{SIGNED_UP_ALL} counts every place and waiting-list entry on the campaign's courses, "
    "however it was made: through the newsletter, a forwarded link, the open sign-up page "
    "or an import, so it includes people the newsletter was not sent to."
)
SIGNED_UP_IN_SHORT = (
    f"{SIGNED_UP_RECIPIENTS}: people in the segment the newsletter was sent to who signed up. "
    f"{SIGNED_UP_ALL}: every sign-up for the course (or the campaign), including people the "
    "newsletter was not sent to (a forwarded link, the open sign-up page, an import)."
)
DASH_NOTE = (
    "A dash means the campaign did not have this segment or course, or had nothing to "
    "divide by. Rates use human clicks unless --all."
)

# (table key, Report attribute, title, first column, ((metric, label, format), ...), note)
_MATCHED = (
    (
        "segments",
        "by_segment",
        "Segments compared",
        "Segment",
        (
            ("delivered", "Delivered", "int"),
            ("clickers", "Clickers", "int"),
            ("rate", "CTR", "pct"),
            ("signed_up", SIGNED_UP_RECIPIENTS, "int"),
        ),
        f"{SIGNED_UP_RECIPIENTS} counts the people in the segment the newsletter was sent to "
        "who have a place or are on a waiting list for any of its courses, each person once. "
        "Sign-ups from people not on the campaign's lists have no segment: the courses table "
        f"counts them, under {SIGNED_UP_ALL}. " + DASH_NOTE,
    ),
    (
        "courses",
        "by_course",
        "Courses compared",
        "Course",
        (
            ("clickers", "Clickers", "int"),
            ("clicks", "Clicks", "int"),
            ("rate", "CTR", "pct"),
            ("signed_up", SIGNED_UP_ALL, "int"),
        ),
        ALL_ROUTES_NOTE + " " + DASH_NOTE,
    ),
)


def compare(reports: list[Report]) -> dict[str, Table]:
    """Summary, segments and courses of several campaigns side by side, in the order given.

    Segments and courses are matched by id across campaigns (EQUIP Basics is
    ``equip-basics`` every quarter); a dash means the campaign did not have it.
    """
    tables = {"summary": _summary_table(reports)}
    for key, attr, title, first, metrics, note in _MATCHED:
        tables[key] = _matched_table(reports, key, attr, title, first, metrics, note)
    return tables


def _summary_table(reports: list[Report]) -> Table:
    ids = [r.campaign_id for r in reports]
    summary = pd.DataFrame(
        {
            "Campaign": ids,
            "Subject": [r.subject or "" for r in reports],
            "Dates": [r.date_range for r in reports],
            "Sent": [_figure_int(r, "Sent") for r in reports],
            "Delivered": [_figure_int(r, "Delivered") for r in reports],
            "Unique clickers": [_figure_int(r, "Unique clickers") for r in reports],
        }
    )
    summary["Click-through rate"] = rate_or_nan(summary["Unique clickers"], summary["Delivered"])
    summary[SIGNED_UP_ALL] = [_figure_int(r, "Signed up") for r in reports]
    return Table(
        "summary",
        "Campaigns compared",
        summary,
        {
            "Campaign": "text",
            "Subject": "text",
            "Dates": "text",
            "Sent": "int",
            "Delivered": "int",
            "Unique clickers": "int",
            "Click-through rate": "pct",
            SIGNED_UP_ALL: "int",
        },
        ALL_ROUTES_NOTE,
    )


def _matched_table(
    reports: list[Report],
    key: str,
    attr: str,
    title: str,
    first: str,
    metrics: tuple[tuple[str, str, str], ...],
    note: str,
) -> Table:
    """Segments (or courses) of every campaign matched by id, a column per campaign and
    metric ("<campaign id> <label>"), in the order they first appear."""
    order: list[str] = []
    names: dict[str, str] = {}
    for r in reports:
        frame = getattr(r, attr)
        for ident, name in zip(frame.index, frame["name"], strict=True):
            if ident not in names:
                order.append(ident)
            if names.get(ident, ident) == ident:  # a spec's name beats a bare id
                names[ident] = name
    table = pd.DataFrame({first: [names[i] for i in order]})
    formats = {first: "text"}
    for r in reports:
        frame = getattr(r, attr).reindex(order)
        for metric, label, fmt in metrics:
            column = f"{r.campaign_id} {label}"
            if metric == "rate":
                table[column] = rate_or_nan(frame["clickers"], frame["delivered"])
            else:
                table[column] = frame[metric].astype("Int64").array
            formats[column] = fmt
    return Table(key, title, table, formats, note)


def _figure_int(report: Report, label: str) -> int:
    for f in report.headline:
        if f.label == label:
            return int(f.value.replace(",", ""))
    raise KeyError(label)
