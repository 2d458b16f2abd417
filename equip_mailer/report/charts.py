"""The report's charts as small hand-made SVG: the page must open offline and from an
email attachment, so nothing is drawn by a script or fetched from the network.

``report_charts`` and ``compare_charts`` choose which tables get a picture and how each is
shaped (sorted, capped, labelled); the drawing itself is in ``svg``, which knows nothing
about reports. Every chart comes twice, drawn for a desktop page (``svg``) and for a phone
(``svg_narrow``, labels above the bars); the page's CSS shows one of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from markupsafe import Markup

from .formatting import BLUE, GREY, show
from .model import Report, Table
from .svg import grouped_hbar_chart, hbar_chart, time_chart
from .svg_narrow import stacked_bar_chart, stacked_grouped_chart


def report_charts(report: Report) -> dict[str, Markup]:
    """An SVG chart for the tables that read better as a picture."""
    charts: dict[str, Markup] = {}
    if not report.sent:
        return charts  # nothing to draw; the banner and tables say so
    funnel = report.tables["funnel"].frame.iloc[:-1]
    if len(funnel):
        charts["funnel"] = _funnel_chart(funnel)
    courses = report.tables["courses"].frame
    if len(courses) and courses["Total clicks"].sum() + courses["Machine clicks"].sum() > 0:
        charts["courses"] = _courses_chart(courses, report.human_only)
    charts["over_time"] = _over_time_chart(report.series)
    practices = report.tables["practices"].frame
    if len(practices):
        charts["practices"] = _practices_chart(practices)
    places = report.tables["places"].frame
    if len(places):
        charts["places"] = _places_chart(places)
    return charts


def compare_charts(reports: Sequence[Report], tables: dict[str, Table]) -> dict[str, Markup]:
    """Charts for a comparison: each campaign's rate, then rates per segment and per course
    with one bar per campaign."""
    summary = tables["summary"].frame
    ids = [r.campaign_id for r in reports]

    def rates(table: Table, first: str) -> Markup:
        frame = table.frame
        groups = list(frame[first])
        series = [(cid, frame[f"{cid} CTR"].to_numpy(dtype=float).tolist()) for cid in ids]
        title = f"Click-through rate per {first.lower()}, campaign by campaign"
        return grouped_hbar_chart(groups, series, title=title) + stacked_grouped_chart(
            groups, series, title=title
        )

    return {
        "summary": _bars(
            [
                (cid, [(0 if math.isnan(r) else r, BLUE)], f"{show(r, 'pct')}  ({c:,} of {d:,})")
                for cid, r, c, d in zip(
                    summary["Campaign"],
                    summary["Click-through rate"],
                    summary["Unique clickers"],
                    summary["Delivered"],
                    strict=True,
                )
            ],
            title="Click-through rate per campaign",
            scale_max=max(
                float(np.nanmax(np.append(summary["Click-through rate"].to_numpy(dtype=float), 0))),
                1e-9,
            )
            * 1.05,
        ),
        "segments": rates(tables["segments"], "Segment"),
        "courses": rates(tables["courses"], "Course"),
    }


def _bars(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]], str]],
    *,
    title: str,
    scale_max: float | None = None,
    heading: bool = False,
    label_width: int = 210,
) -> Markup:
    """The same bars drawn twice: for a desktop page and, labels above the bars, a phone."""
    wide = hbar_chart(
        rows, title=title, scale_max=scale_max, heading=heading, label_width=label_width
    )
    return wide + stacked_bar_chart(rows, title=title, scale_max=scale_max, heading=heading)


def _funnel_chart(funnel: pd.DataFrame) -> Markup:
    """Click-through rate per segment (the funnel without its total row)."""
    clicker = next(c for c in funnel.columns if c.startswith("Unique"))
    return _bars(
        [
            (
                seg,
                [(0 if math.isnan(rate) else rate, BLUE)],
                "no recipients"
                if not delivered and not sent
                else f"{show(rate, 'pct')}  ({clickers} of {delivered}); "
                f"{placed + waiting} signed up",
            )
            for seg, sent, delivered, clickers, rate, placed, waiting in zip(
                funnel["Segment"],
                funnel["Sent"],
                funnel["Delivered"],
                funnel[clicker],
                funnel["Click-through rate"],
                funnel["Signed up: place"],
                funnel["Signed up: waiting"],
                strict=True,
            )
        ],
        title="Click-through rate per segment",
        scale_max=max(
            1e-9,
            float(np.nanmax(np.append(funnel["Click-through rate"].to_numpy(dtype=float), 0)))
            * 1.05,
        )
        or 1,
    )


def _courses_chart(courses: pd.DataFrame, human_only: bool) -> Markup:
    total = courses["Total clicks"].to_numpy()
    machine = courses["Machine clicks"].to_numpy()
    human = total if human_only else total - machine
    return _bars(
        [
            (name, [(h, BLUE), (m, GREY)], f"{h:,} human, {m:,} machine")
            for name, h, m in zip(courses["Course"], human, machine, strict=True)
        ],
        title="Clicks per course, human and machine",
    )


def _over_time_chart(series: pd.DataFrame) -> Markup:
    """Two panels, each with its own scale: a day's clicks on the hourly scale would dwarf
    every hour before it."""
    hourly = series[series["Period"] == "hour"].reset_index(drop=True)
    daily = series[series["Period"] == "day"].reset_index(drop=True)
    panels = []
    for narrow, width in ((False, 900), (True, 360)):  # desktop panels first, then phone
        panels.append(
            time_chart(
                hourly,
                title="First 7 days: clicks per hour",
                unit="per hour",
                width=width,
                narrow=narrow,
            )
        )
        if len(daily):
            panels.append(
                time_chart(
                    daily,
                    title="After the first week: clicks per day",
                    unit="per day",
                    width=width,
                    height=170,
                    narrow=narrow,
                )
            )
    return Markup("".join(panels))


TOP_PRACTICES = 15


def _practices_chart(practices: pd.DataFrame) -> Markup:
    """The practices with the highest click-through rate (more delivered first on a tie),
    longest bar first: the chart is sorted by what it draws, and says how many it leaves out."""
    ranked = practices.assign(
        _rate=practices["Click-through rate"].astype(float).fillna(-1.0)
    ).sort_values(["_rate", "Delivered", "Practice"], ascending=[False, False, True])
    top = ranked.head(TOP_PRACTICES)
    rate = top["Click-through rate"].to_numpy(dtype=float)
    title = "Click-through rate per practice"
    if len(practices) > len(top):
        title += f": top {len(top)} of {len(practices)}"
    return _bars(
        [
            (p, [(0 if math.isnan(r) else r, BLUE)], f"{show(r, 'pct')} of {d:,} delivered")
            for p, r, d in zip(top["Practice"], rate, top["Delivered"], strict=True)
        ],
        title=title,
        heading=True,
        scale_max=max(float(np.nanmax(np.append(rate, 0))), 1e-9) * 1.05,
    )


PALE = "#E8EDEE"  # places still free


def _places_chart(places: pd.DataFrame) -> Markup:
    """Per session, the places taken (blue) against the places there are (pale)."""
    rows = []
    for r in places.itertuples(index=False):
        taken = int(r[4])
        waiting = int(r[5])
        limit = r[3]
        free = 0 if limit is None or pd.isna(limit) else max(0, int(limit) - taken)
        text = (
            f"{taken} of {int(limit)}"
            if limit is not None and not pd.isna(limit)
            else f"{taken} (no limit)"
            if r[8] == "here"
            else f"{taken} (booked elsewhere)"
        )
        if waiting:
            text += f", {waiting} waiting"
        rows.append((f"{r[0]}: {show(r[1], 'date')}", [(taken, BLUE), (free, PALE)], text))
    return _bars(rows, title="Places taken per session", heading=True, label_width=260)


# ---------------------------------------------------------------------------------------
# Drawing
