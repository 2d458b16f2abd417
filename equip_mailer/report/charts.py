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
    clicker = next(c for c in funnel.columns if c.startswith("Unique"))
    return hbar_chart(
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
    return hbar_chart(
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
        rows.append((f"{r[0]}: {r[1]}", [(taken, BLUE), (free, PALE)], text))
    return hbar_chart(rows, title="Places taken per session", heading=True, label_width=260)


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
    heading: bool = False,
) -> Markup:
    """Horizontal bars, one row per label; each row may stack several (value, colour) parts.

    ``rows``: (label, parts, text shown after the bar). Long labels wrap onto more lines
    (the row grows), never cut. ``heading``: the title is also drawn above the bars.
    """
    bar_h, gap, line_h = 18, 10, 15
    top = 24 if heading else 6
    right_text = max(90, 7 * max([len(text) for _, _, text in rows] + [0]) + 12)
    plot_w = width - label_width - right_text
    total_max = (
        scale_max if scale_max else max([sum(v for v, _ in parts) for _, parts, _ in rows] + [0])
    )
    labels = [wrap_label(label, label_width - 12) for label, _, _ in rows]
    heights = [bar_h + line_h * (len(lines) - 1) for lines in labels]
    height = top + sum(h + gap for h in heights) + 4
    out = _svg_start(width, height, title)
    if heading:
        out.append(f'<text x="0" y="14" class="lbl" font-weight="bold">{escape(title)}</text>')
    out.append(
        f'<line x1="{label_width}" y1="{top - 4}" x2="{label_width}" y2="{height}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    y = top
    for (_label, parts, text), lines, row_h in zip(rows, labels, heights, strict=True):
        out.append(_label_text(lines, label_width - 8, y + bar_h - 5, line_h))
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
        y += row_h + gap
    out.append("</svg>")
    return Markup("".join(out))


def wrap_label(label: str, width_px: float, char_px: float = 6.9) -> list[str]:
    """A label in lines that fit ``width_px`` at the charts' 13 px Arial (about 6.9 px a
    character, wide letters included): words kept whole, never cut short with an ellipsis;
    a word longer than a line is split at its hyphens, else where the line ends."""
    per_line = max(8, int(width_px / char_px))
    lines: list[str] = []
    current = ""
    for word in label.split():
        pieces = [word]
        if len(word) > per_line:
            pieces = [p + "-" for p in word.split("-")[:-1]] + [word.split("-")[-1]]
            pieces = [
                chunk[i : i + per_line] for chunk in pieces for i in range(0, len(chunk), per_line)
            ]
        for piece in pieces:
            joined = (
                f"{current} {piece}" if current and not current.endswith("-") else (current + piece)
            )
            if current and len(joined) > per_line:
                lines.append(current)
                current = piece
            else:
                current = joined
    if current or not lines:
        lines.append(current)
    return lines


def _label_text(lines: list[str], x: float, first_baseline: float, line_h: int) -> str:
    """A right-aligned label of one or more lines (the first on the bar's baseline)."""
    spans = "".join(
        f'<tspan x="{x}" dy="{0 if i == 0 else line_h}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text x="{x}" y="{first_baseline}" text-anchor="end" class="lbl">{spans}</text>'


def time_chart(
    series: pd.DataFrame, *, title: str, unit: str, width: int = 900, height: int = 210
) -> Markup:
    """Columns per period (human blue, machine grey stacked on top), one label per day."""
    n = len(series)
    hours = unit == "per hour" and 0 < n <= 72  # short enough to name the hours
    left, bottom, top, right = 48, 46 if hours else 34, 24, 10
    plot_w, plot_h = width - left - right, height - top - bottom
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
    starts = pd.DatetimeIndex(series["Period start"])
    if hours:
        out += _hour_labels(starts, left, top + plot_h, plot_w, every=3 if n <= 36 else 6)
        out += _day_labels(starts, left, top + plot_h + 14, plot_w, ticks=False)
    else:
        out += _day_labels(starts, left, top + plot_h, plot_w)
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    out.append(
        f'<text x="{left + plot_w}" y="14" class="axis" text-anchor="end">'
        f"clicks {unit} (UTC)</text>"
    )
    out.append("</svg>")
    return Markup("".join(out))


def _hour_labels(
    starts: pd.DatetimeIndex, left: int, axis_y: int, plot_w: int, every: int
) -> list[str]:
    """A tick and an ``09:00`` label under every ``every``-th hour, centred on its column."""
    out = []
    slot = plot_w / len(starts)
    for i, start in enumerate(starts):
        if start.hour % every:
            continue
        x = left + (i + 0.5) * slot
        out.append(
            f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" stroke="{AXIS}"/>'
            f'<text x="{x:.1f}" y="{axis_y + 15}" class="axis" text-anchor="middle">'
            f"{start:%H:%M}</text>"
        )
    return out


def _day_labels(
    starts: pd.DatetimeIndex, left: int, axis_y: int, plot_w: int, ticks: bool = True
) -> list[str]:
    """A tick at each midnight (and the first period) and a date label, at least 52 px apart."""
    out = []
    slot = plot_w / len(starts)
    last_label = -1e9
    for i in range(len(starts)):
        if not (starts[i].hour == 0 or i == 0):
            continue
        x = left + i * slot
        if ticks:
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
    line_h = 15
    labels = [wrap_label(name, label_width - 12) for name in groups]
    per_group = len(series) * (bar_h + inner) - inner
    blocks = [max(per_group, line_h * len(lines)) for lines in labels]
    height = top + sum(b + gap for b in blocks) + legend_h
    out = _svg_start(width, height, title)
    starts = [top + sum(b + gap for b in blocks[:g]) for g in range(len(groups))]
    for g, y0 in enumerate(starts):
        lines = labels[g]
        first = y0 + blocks[g] / 2 + 4 - line_h * (len(lines) - 1) / 2
        out.append(_label_text(lines, label_width - 8, round(first, 1), line_h))
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
