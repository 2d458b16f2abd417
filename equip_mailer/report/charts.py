"""The report's charts as small hand-made SVG: the page must open offline and from an
email attachment, so nothing is drawn by a script or fetched from the network.

``report_charts`` and ``compare_charts`` choose which tables get a picture; the drawing
functions below them know nothing about reports and take plain rows and series.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from .formatting import BLUE, GREY, show
from .model import Report, Table

PALETTE = ("#005EB8", "#41B6E6", "#003087", "#768692", "#00A499", "#ED8B00")  # per campaign
AXIS = "#768692"


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
    practices = report.tables["practices"].frame.head(15)
    if len(practices):
        charts["practices"] = _practices_chart(practices)
    return charts


def compare_charts(reports: Sequence[Report], tables: dict[str, Table]) -> dict[str, Markup]:
    """Charts for a comparison: each campaign's rate, then rates per segment and per course
    with one bar per campaign."""
    summary = tables["summary"].frame
    ids = [r.campaign_id for r in reports]

    def rates(table: Table, first: str) -> Markup:
        frame = table.frame
        return grouped_hbar_chart(
            list(frame[first]),
            [(cid, frame[f"{cid} CTR"].to_numpy(dtype=float).tolist()) for cid in ids],
            title=f"Click-through rate per {first.lower()}, campaign by campaign",
        )

    return {
        "summary": hbar_chart(
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


def _funnel_chart(funnel: pd.DataFrame) -> Markup:
    """Click-through rate per segment (the funnel without its total row)."""
    clicker = funnel.columns[4]
    return hbar_chart(
        [
            (
                seg,
                [(0 if math.isnan(rate) else rate, BLUE)],
                "no recipients"
                if not delivered and not sent
                else f"{show(rate, 'pct')}  ({clickers} of {delivered})",
            )
            for seg, sent, delivered, clickers, rate in zip(
                funnel["Segment"],
                funnel["Sent"],
                funnel["Delivered"],
                funnel[clicker],
                funnel["Click-through rate"],
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
    return hbar_chart(
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
    panels = [time_chart(hourly, title="First 7 days: clicks per hour", unit="per hour")]
    if len(daily):
        panels.append(
            time_chart(
                daily, title="After the first week: clicks per day", unit="per day", height=170
            )
        )
    return Markup("".join(panels))


def _practices_chart(practices: pd.DataFrame) -> Markup:
    rate = practices["Click-through rate"].to_numpy(dtype=float)
    return hbar_chart(
        [
            (p, [(0 if math.isnan(r) else r, BLUE)], f"{show(r, 'pct')} of {d:,} delivered")
            for p, r, d in zip(practices["Practice"], rate, practices["Delivered"], strict=True)
        ],
        title="Click-through rate per practice",
        scale_max=max(float(np.nanmax(np.append(rate, 0))), 1e-9) * 1.05,
    )


# ---------------------------------------------------------------------------------------
# Drawing


def _svg_start(width: int, height: int, title: str) -> list[str]:
    """The opening tag and title every chart shares (the title is what a screen reader says)."""
    return [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]


def hbar_chart(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]], str]],
    *,
    title: str,
    scale_max: float | None = None,
    width: int = 720,
    label_width: int = 210,
) -> Markup:
    """Horizontal bars, one row per label; each row may stack several (value, colour) parts.

    ``rows``: (label, parts, text shown after the bar).
    """
    bar_h, gap, top = 18, 10, 6
    right_text = max(90, 7 * max([len(text) for _, _, text in rows] + [0]) + 12)
    plot_w = width - label_width - right_text
    total_max = (
        scale_max if scale_max else max([sum(v for v, _ in parts) for _, parts, _ in rows] + [0])
    )
    height = top + len(rows) * (bar_h + gap) + 4
    out = _svg_start(width, height, title)
    out.append(
        f'<line x1="{label_width}" y1="0" x2="{label_width}" y2="{height}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    for i, (label, parts, text) in enumerate(rows):
        y = top + i * (bar_h + gap)
        shown = label if len(label) <= 32 else label[:31] + "…"
        out.append(
            f'<text x="{label_width - 8}" y="{y + bar_h - 5}" text-anchor="end" '
            f'class="lbl">{escape(shown)}</text>'
        )
        x = float(label_width)
        for value, colour in parts:
            w = 0.0 if not total_max else plot_w * float(value) / total_max
            if w > 0:
                out.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" height="{bar_h}" '
                    f'fill="{colour}" rx="2"/>'
                )
            x += w
        out.append(f'<text x="{x + 6:.1f}" y="{y + bar_h - 5}" class="val">{escape(text)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def time_chart(
    series: pd.DataFrame, *, title: str, unit: str, width: int = 900, height: int = 210
) -> Markup:
    """Columns per period (human blue, machine grey stacked on top), one label per day."""
    left, bottom, top, right = 48, 34, 24, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(series)
    human = series["Human clicks"].to_numpy() if n else np.zeros(0)
    machine = series["Machine clicks"].to_numpy() if n else np.zeros(0)
    peak = int((human + machine).max()) if n else 0
    out = _svg_start(width, height, title)
    out.append(f'<text x="{left}" y="14" class="lbl" font-weight="bold">{escape(title)}</text>')
    if peak == 0:
        out.append(
            f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#F0F4F5"/>'
        )
        out.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" '
            f'class="empty">No clicks yet</text></svg>'
        )
        return Markup("".join(out))
    step = _nice_step(peak)
    ymax = step * math.ceil(peak / step)
    for k in range(int(ymax / step) + 1):
        y = top + plot_h - plot_h * (k * step) / ymax
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#E8EDEE"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">'
            f"{k * step:,.0f}</text>"
        )
    slot = plot_w / n
    bar_w = min(max(slot * 0.8, 0.8), 36)
    for i in range(n):
        x = left + i * slot + (slot - bar_w) / 2
        base = top + plot_h
        for value, colour in ((human[i], BLUE), (machine[i], GREY)):
            if value:
                h = plot_h * value / ymax
                base -= h
                out.append(
                    f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}" height="{h:.2f}" '
                    f'fill="{colour}"/>'
                )
    out += _day_labels(pd.DatetimeIndex(series["Period start"]), left, top + plot_h, plot_w)
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    out.append(f'<text x="{left}" y="{height - 3}" class="axis">clicks {unit} (UTC)</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _day_labels(starts: pd.DatetimeIndex, left: int, axis_y: int, plot_w: int) -> list[str]:
    """A tick at each midnight (and the first period) and a date label, at least 52 px apart."""
    out = []
    slot = plot_w / len(starts)
    last_label = -1e9
    for i in range(len(starts)):
        if not (starts[i].hour == 0 or i == 0):
            continue
        x = left + i * slot
        out.append(
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="{AXIS}"/>'
        )
        if x - last_label >= 52 and x < left + plot_w - 30:
            out.append(
                f'<text x="{x:.1f}" y="{axis_y + 17}" class="axis" text-anchor="start">'
                f"{starts[i].day} {starts[i]:%b}</text>"
            )
            last_label = x
    return out


def grouped_hbar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    width: int = 720,
    label_width: int = 190,
) -> Markup:
    """Rates per group (segment, course) with one bar per campaign, in a fixed palette, and
    a legend naming the campaigns. NaN (the campaign did not have it) draws no bar."""
    bar_h, inner, gap, top = 14, 2, 12, 4
    legend_h = 22
    plot_w = width - label_width - 70
    peak = max([v for _, vals in series for v in vals if not math.isnan(v)] + [0]) or 1
    per_group = len(series) * (bar_h + inner) - inner
    height = top + len(groups) * (per_group + gap) + legend_h
    out = _svg_start(width, height, title)
    for g, name in enumerate(groups):
        y0 = top + g * (per_group + gap)
        shown = name if len(name) <= 30 else name[:29] + "…"
        out.append(
            f'<text x="{label_width - 8}" y="{y0 + per_group / 2 + 4:.1f}" text-anchor="end" '
            f'class="lbl">{escape(shown)}</text>'
        )
        for k, (_label, values) in enumerate(series):
            value = values[g]
            y = y0 + k * (bar_h + inner)
            colour = PALETTE[k % len(PALETTE)]
            if math.isnan(value):
                out.append(f'<text x="{label_width + 4}" y="{y + bar_h - 3}" class="val">–</text>')
                continue
            w = plot_w * value / peak
            if w > 0:
                out.append(
                    f'<rect x="{label_width}" y="{y}" width="{max(w, 1.5):.1f}" height="{bar_h}" '
                    f'fill="{colour}" rx="2"/>'
                )
            out.append(
                f'<text x="{label_width + w + 5:.1f}" y="{y + bar_h - 3}" class="val">'
                f"{show(value, 'pct')}</text>"
            )
    out.append(
        f'<line x1="{label_width}" y1="0" x2="{label_width}" y2="{height - legend_h}" '
        f'stroke="{AXIS}"/>'
    )
    x = label_width
    for k, (label, _values) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        out.append(
            f'<rect x="{x}" y="{height - 14}" width="11" height="11" fill="{colour}" rx="2"/>'
            f'<text x="{x + 15}" y="{height - 4}" class="axis">{escape(label)}</text>'
        )
        x += 30 + 7 * len(label)
    out.append("</svg>")
    return Markup("".join(out))


def _nice_step(peak: int) -> float:
    """A round gridline step (1, 2 or 5 times a power of ten) giving about four lines."""
    raw = peak / 4
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return max(1, m * mag)
    return max(1, 10 * mag)
