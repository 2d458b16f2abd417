"""The bar charts laid out for a phone: each label on a line of its own above a bar as wide
as the chart, so a 360 px screen draws the text at its real size.

The desktop charts (``svg``) keep their labels in a column left of the bars; squeezed into a
phone's width the whole picture shrinks to half and its 13 px labels to 6 px. The page
carries both and shows one (``templates/report_styles.css.j2``: these below 640 px on a
screen, the desktop ones above it and in print), with the same figures, texts and colours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from .svg import PALETTE, label_text, share_bar, stack_max, stacked_bar, svg_start, wrap_label

WIDTH = 360  # a phone's width in CSS pixels, less the page's margins, near enough
LINE_H = 15  # one line of 13 px label text
VALUE_PX = 7  # a character of the 12 px value text, generously (as ``hbar_chart``)


def stacked_bar_chart(
    rows: Sequence[tuple[str, Sequence[tuple[float, str]], str]],
    *,
    title: str,
    scale_max: float | None = None,
    width: int = WIDTH,
    heading: bool = False,
) -> Markup:
    """``hbar_chart``'s rows (label, stacked (value, colour) parts, text) for a phone: the
    label on the left above its bar, the text on the right of the same line when both fit
    (the label wraps to leave room), else on a line of its own under the label."""
    bar_h, gap = 14, 12
    total_max = stack_max(rows, scale_max)
    body: list[str] = []
    y = 24 if heading else 2
    if heading:
        body.append(f'<text x="0" y="14" class="lbl" font-weight="bold">{escape(title)}</text>')
    for label, parts, text in rows:
        text_px = VALUE_PX * len(text) + 10
        beside = width - text_px >= 110  # room for a label of at least ~16 characters
        lines = wrap_label(label, width - text_px if beside else width)
        baseline = y + 12
        body.append(label_text(lines, 0, baseline, LINE_H, anchor="start"))
        text_y = baseline if beside else baseline + LINE_H * len(lines)
        body.append(
            f'<text x="{width}" y="{text_y}" text-anchor="end" class="val">{escape(text)}</text>'
        )
        y = baseline + LINE_H * (len(lines) - (1 if beside else 0)) + 5  # under the last line
        stacked_bar(body, parts, 0, y, bar_h, width / total_max if total_max else 0)
        y += bar_h + gap
    return Markup("".join([*svg_start(width, y, title, "chart narrow"), *body, "</svg>"]))


def stacked_grouped_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    width: int = WIDTH,
) -> Markup:
    """``grouped_hbar_chart`` for a phone: each group's name on a line above its bars (one
    per campaign, the rate after it), and a legend whose entries wrap onto more lines."""
    bar_h, inner, gap = 14, 3, 12
    plot_w = width - 52  # room for "100.0%" after the longest bar
    peak = max([v for _, vals in series for v in vals if not math.isnan(v)] + [0]) or 1
    body: list[str] = []
    y = 2
    for g, name in enumerate(groups):
        lines = wrap_label(name, width)
        body.append(label_text(lines, 0, y + 12, LINE_H, anchor="start"))
        y += LINE_H * len(lines) + 3
        for k, (_label, values) in enumerate(series):
            value = values[g]
            share_bar(body, value, 0, y, bar_h, plot_w * value / peak, PALETTE[k % len(PALETTE)])
            y += bar_h + inner
        y += gap
    x = 0
    for k, (label, _values) in enumerate(series):
        entry = 30 + VALUE_PX * len(label)
        if x and x + entry - 15 > width:  # the next entry on a line of its own
            x, y = 0, y + 18
        body.append(
            f'<rect x="{x}" y="{y}" width="11" height="11" fill="{PALETTE[k % len(PALETTE)]}" '
            f'rx="2"/><text x="{x + 15}" y="{y + 10}" class="axis">{escape(label)}</text>'
        )
        x += entry
    height = y + 16
    return Markup("".join([*svg_start(width, height, title, "chart narrow"), *body, "</svg>"]))
