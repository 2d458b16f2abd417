"""Drawing small charts as hand-made SVG: horizontal bars (single and grouped per campaign)
and a clicks-over-time line with readable hour or day labels.

These know nothing about reports: they take plain rows and series, so a chart can be tested
by what it draws. Labels wrap rather than being cut, and every text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from .formatting import BLUE, GREY, show

PALETTE = ("#005EB8", "#41B6E6", "#003087", "#768692", "#00A499", "#ED8B00")  # per campaign
AXIS = "#768692"


def svg_start(width: int, height: int, title: str, css_class: str = "chart") -> list[str]:
    """The opening tag and title every chart shares (the title is what a screen reader says).
    ``css_class`` "chart narrow" marks the phone layouts (``svg_narrow``)."""
    return [
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}">',
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
    total_max = stack_max(rows, scale_max)
    labels = [wrap_label(label, label_width - 12) for label, _, _ in rows]
    heights = [bar_h + line_h * (len(lines) - 1) for lines in labels]
    height = top + sum(h + gap for h in heights) + 4
    out = svg_start(width, height, title)
    if heading:
        out.append(f'<text x="0" y="14" class="lbl" font-weight="bold">{escape(title)}</text>')
    out.append(
        f'<line x1="{label_width}" y1="{top - 4}" x2="{label_width}" y2="{height}" '
        f'stroke="{AXIS}" stroke-width="1"/>'
    )
    y = top
    for (_label, parts, text), lines, row_h in zip(rows, labels, heights, strict=True):
        out.append(label_text(lines, label_width - 8, y + bar_h - 5, line_h))
        x = stacked_bar(out, parts, label_width, y, bar_h, plot_w / total_max if total_max else 0)
        out.append(f'<text x="{x + 6:.1f}" y="{y + bar_h - 5}" class="val">{escape(text)}</text>')
        y += row_h + gap
    out.append("</svg>")
    return Markup("".join(out))


def stack_max(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]], str]], scale_max: float | None
) -> float:
    """What a full-width bar stands for: ``scale_max`` when given, else the largest stack."""
    return scale_max or max([sum(v for v, _ in parts) for _, parts, _ in rows] + [0])


def stacked_bar(
    out: list[str],
    parts: Sequence[tuple[float, str]],
    x: float,
    y: float,
    bar_h: int,
    px_per_unit: float,
) -> float:
    """One bar of stacked (value, colour) parts from ``x``, appended to ``out``; returns where
    it ends. A part too small to see is drawn 1.5 px wide, an empty one not at all."""
    x = float(x)
    for value, colour in parts:
        w = px_per_unit * float(value)
        if w > 0:
            out.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1.5):.1f}" height="{bar_h}" '
                f'fill="{colour}" rx="2"/>'
            )
        x += w
    return x


def share_bar(
    out: list[str], value: float, x: int, y: float, bar_h: int, width: float, colour: str
) -> None:
    """One bar of a grouped chart from ``x``, ``width`` px long, with its share written after
    it, appended to ``out``; "–" alone where there is no value (NaN). A bar too small to see
    is drawn 1.5 px wide, an empty one not at all."""
    if math.isnan(value):
        out.append(f'<text x="{x + 4}" y="{y + bar_h - 3}" class="val">–</text>')
        return
    if width > 0:
        out.append(
            f'<rect x="{x}" y="{y}" width="{max(width, 1.5):.1f}" height="{bar_h}" '
            f'fill="{colour}" rx="2"/>'
        )
    out.append(
        f'<text x="{x + width + 5:.1f}" y="{y + bar_h - 3}" class="val">{show(value, "pct")}</text>'
    )


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


def label_text(
    lines: list[str], x: float, first_baseline: float, line_h: int, anchor: str = "end"
) -> str:
    """A label of one or more lines (the first on the bar's baseline), right-aligned to ``x``
    unless ``anchor`` says "start" (the phone layouts' labels above their bars)."""
    spans = "".join(
        f'<tspan x="{x}" dy="{0 if i == 0 else line_h}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return f'<text x="{x}" y="{first_baseline}" text-anchor="{anchor}" class="lbl">{spans}</text>'


def time_chart(
    series: pd.DataFrame,
    *,
    title: str,
    unit: str,
    width: int = 900,
    height: int = 210,
    narrow: bool = False,
) -> Markup:
    """Columns per period (human blue, machine grey stacked on top), one label per day.

    ``narrow``: the phone layout (``width`` about 360): the title starts at the left edge
    and names the time zone itself, as there is no room for the unit on the right, and
    hour labels are spaced out to stay apart."""
    n = len(series)
    hours = unit == "per hour" and 0 < n <= 72  # short enough to name the hours
    left, bottom, top, right = 48, 46 if hours else 34, 24, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    human = series["Human clicks"].to_numpy() if n else np.zeros(0)
    machine = series["Machine clicks"].to_numpy() if n else np.zeros(0)
    peak = int((human + machine).max()) if n else 0
    out = svg_start(width, height, title, "chart narrow" if narrow else "chart")
    out.append(
        f'<text x="0" y="14" class="lbl" font-weight="bold">{escape(title)} (UTC)</text>'
        if narrow
        else f'<text x="{left}" y="14" class="lbl" font-weight="bold">{escape(title)}</text>'
    )
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
        every = 3 if n <= 36 else 6
        # "09:00" is ~30 px wide; only narrow charts get here (and never loop for ever)
        while plot_w / n * every < 40 and every < n:
            every *= 2
        out += _hour_labels(starts, left, top + plot_h, plot_w, every=every)
        out += _day_labels(starts, left, top + plot_h + 14, plot_w, ticks=False)
    else:
        out += _day_labels(starts, left, top + plot_h, plot_w)
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        f'stroke="{AXIS}"/>'
    )
    if not narrow:
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
    out = svg_start(width, height, title)
    starts = [top + sum(b + gap for b in blocks[:g]) for g in range(len(groups))]
    for g, y0 in enumerate(starts):
        lines = labels[g]
        first = y0 + blocks[g] / 2 + 4 - line_h * (len(lines) - 1) / 2
        out.append(label_text(lines, label_width - 8, round(first, 1), line_h))
        for k, (_label, values) in enumerate(series):
            value = values[g]
            share_bar(
                out,
                value,
                label_width,
                y0 + k * (bar_h + inner),
                bar_h,
                plot_w * value / peak,
                PALETTE[k % len(PALETTE)],
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
