"""Report files: one self-contained HTML page, an Excel workbook, CSVs and a terminal summary.

Every writer takes the same ``report.Table``s, so a figure reads the same in the browser, in
Excel and in the terminal. The HTML must open offline and from an email attachment, so the
charts are SVG drawn here and the CSS is inline: nothing is fetched. Text that goes into a
spreadsheet is defused first: a practice named ``=HYPERLINK(...)`` must stay text, not
become a live formula in someone's Excel.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape

from .compute import Report, Table

BLUE = "#005EB8"  # NHS blue: bars for human clicks, headings
DARK_BLUE = "#003087"
GREY = "#AEB7BD"  # machine clicks: present but not the story
TEXT = "#212B32"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# ---------------------------------------------------------------------------------------
# Values


def defuse(value):
    """Text a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV
    injection advice); numbers and other values pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def missing(value) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


def show(value, fmt: str, period: str | None = None) -> str:
    """A value as the reader sees it in the HTML and the terminal."""
    if missing(value):
        return "–"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "pct":
        return f"{float(value):.1%}"
    if fmt in ("datetime", "date"):
        when = pd.Timestamp(value)
        if period == "day" or fmt == "date":
            return f"{when:%a} {when.day} {when:%b %Y}"
        return f"{when:%a} {when.day} {when:%b %H:%M}"
    return str(value)


def _rows_for_display(table: Table) -> list[list[tuple[str, str]]]:
    """Each cell as (text, css class); numbers right-aligned."""
    frame = table.frame
    periods = frame["Period"].tolist() if "Period" in frame.columns else [None] * len(frame)
    rows = []
    for i, record in enumerate(frame.itertuples(index=False, name=None)):
        cells = []
        for col, value in zip(frame.columns, record):
            fmt = table.formats.get(col, "text")
            cells.append((show(value, fmt, periods[i]), "num" if fmt in ("int", "pct") else ""))
        rows.append(cells)
    return rows


# ---------------------------------------------------------------------------------------
# Charts: small hand-made SVG, so the page needs nothing from the network


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
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{label_width}" y1="0" x2="{label_width}" y2="{height}" stroke="#768692" stroke-width="1"/>',
    ]
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
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{left}" y="14" class="lbl" font-weight="bold">{escape(title)}</text>',
    ]
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
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{k * step:,.0f}</text>'
        )
    starts = pd.DatetimeIndex(series["Period start"])
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
                    f'<rect x="{x:.2f}" y="{base:.2f}" width="{bar_w:.2f}" height="{h:.2f}" fill="{colour}"/>'
                )
    # x labels at each midnight (and the first period), at least 52 px apart
    last_label = -1e9
    for i in range(n):
        if not (starts[i].hour == 0 or i == 0):
            continue
        x = left + i * slot
        out.append(
            f'<line x1="{x:.1f}" y1="{top + plot_h}" x2="{x:.1f}" y2="{top + plot_h + 4}" stroke="#768692"/>'
        )
        if x - last_label >= 52 and x < left + plot_w - 30:
            out.append(
                f'<text x="{x:.1f}" y="{top + plot_h + 17}" class="axis" text-anchor="start">'
                f"{starts[i].day} {starts[i]:%b}</text>"
            )
            last_label = x
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#768692"/>'
    )
    out.append(f'<text x="{left}" y="{height - 3}" class="axis">clicks {unit} (UTC)</text>')
    out.append("</svg>")
    return Markup("".join(out))


PALETTE = ("#005EB8", "#41B6E6", "#003087", "#768692", "#00A499", "#ED8B00")


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
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
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
        f'<line x1="{label_width}" y1="0" x2="{label_width}" y2="{height - legend_h}" stroke="#768692"/>'
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
    raw = peak / 4
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return max(1, m * mag)
    return max(1, 10 * mag)


def report_charts(report: Report) -> dict[str, Markup]:
    """An SVG chart for the tables that read better as a picture."""
    charts: dict[str, Markup] = {}
    if not report.sent:
        return charts  # nothing to draw; the banner and tables say so
    funnel = report.tables["funnel"].frame.iloc[:-1]
    clicker = funnel.columns[4]
    if len(funnel):
        charts["funnel"] = hbar_chart(
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
    courses = report.tables["courses"].frame
    if len(courses) and courses["Total clicks"].sum() + courses["Machine clicks"].sum() > 0:
        total = courses["Total clicks"].to_numpy()
        machine = courses["Machine clicks"].to_numpy()
        human = total if report.human_only else total - machine
        charts["courses"] = hbar_chart(
            [
                (name, [(h, BLUE), (m, GREY)], f"{h:,} human, {m:,} machine")
                for name, h, m in zip(courses["Course"], human, machine)
            ],
            title="Clicks per course, human and machine",
        )
    series = report.series
    hourly = series[series["Period"] == "hour"].reset_index(drop=True)
    daily = series[series["Period"] == "day"].reset_index(drop=True)
    # Two panels, each with its own scale: a day's clicks on the hourly scale would dwarf
    # every hour before it.
    panels = [time_chart(hourly, title="First 7 days: clicks per hour", unit="per hour")]
    if len(daily):
        panels.append(
            time_chart(
                daily, title="After the first week: clicks per day", unit="per day", height=170
            )
        )
    charts["over_time"] = Markup("".join(panels))
    practices = report.tables["practices"].frame.head(15)
    if len(practices):
        rate = practices["Click-through rate"].to_numpy(dtype=float)
        charts["practices"] = hbar_chart(
            [
                (p, [(0 if math.isnan(r) else r, BLUE)], f"{show(r, 'pct')} of {d:,} delivered")
                for p, r, d in zip(practices["Practice"], rate, practices["Delivered"])
            ],
            title="Click-through rate per practice",
            scale_max=max(float(np.nanmax(np.append(rate, 0))), 1e-9) * 1.05,
        )
    return charts


# ---------------------------------------------------------------------------------------
# HTML


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("equip_mailer.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _section(
    table: Table, chart: Markup | None = None, legend: bool = False, campaigns: Sequence[str] = ()
) -> dict:
    """What the template needs for one table. With ``campaigns`` (a comparison), columns
    named "<campaign> <metric>" get a header row naming each campaign once above its metrics."""
    columns = [
        (c, "num" if table.formats.get(c) in ("int", "pct") else "") for c in table.frame.columns
    ]
    groups = []
    if campaigns:
        for cid in campaigns:
            mine = [c for c, _ in columns if c.startswith(cid + " ")]
            if mine:
                groups.append((cid, len(mine)))
        if groups:
            groups.insert(0, ("", len(columns) - sum(n for _, n in groups)))
            columns = [
                (
                    next(
                        (c.removeprefix(cid + " ") for cid in campaigns if c.startswith(cid + " ")),
                        c,
                    ),
                    cls,
                )
                for c, cls in columns
            ]
    return {
        "key": table.key,
        "title": table.title,
        "chart": chart,
        "legend": legend,
        "groups": groups,
        "columns": columns,
        "rows": _rows_for_display(table),
        "total": table.total and len(table.frame) > 0,
        "note": table.note,
        "empty": len(table.frame) == 0,
    }


def render_html(report: Report, generated: dt.datetime | None = None) -> str:
    charts = report_charts(report)
    t = report.tables
    sections = [
        _section(t["funnel"], charts.get("funnel")),
        _section(t["courses"], charts.get("courses"), legend=True),
        _section(t["sessions"]),
        {**_section(t["days"], charts.get("over_time"), legend=True), "title": "Clicks over time"},
        _section(t["practices"], charts.get("practices")),
        _section(t["roles"]),
        _section(t["machine"]),
    ]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            kind="report",
            heading=report.title or report.subject or report.campaign_id,
            subject=report.subject,
            campaign_id=report.campaign_id,
            date_range=report.date_range,
            mode="human clicks only"
            if report.human_only
            else "all clicks, including machine clicks",
            generated=(generated or dt.datetime.now(dt.UTC)).strftime("%d %b %Y %H:%M UTC"),
            not_sent=not report.sent,
            cards=report.headline,
            sections=sections,
            notes=report.notes,
        )
    )


def render_compare_html(
    reports: Sequence[Report], tables: dict[str, Table], generated: dt.datetime | None = None
) -> str:
    summary = tables["summary"].frame
    chart = hbar_chart(
        [
            (cid, [(0 if math.isnan(r) else r, BLUE)], f"{show(r, 'pct')}  ({c:,} of {d:,})")
            for cid, r, c, d in zip(
                summary["Campaign"],
                summary["Click-through rate"],
                summary["Unique clickers"],
                summary["Delivered"],
            )
        ],
        title="Click-through rate per campaign",
        scale_max=max(
            float(np.nanmax(np.append(summary["Click-through rate"].to_numpy(dtype=float), 0))),
            1e-9,
        )
        * 1.05,
    )
    ids = [r.campaign_id for r in reports]

    def rates(table: Table, first: str) -> Markup:
        frame = table.frame
        return grouped_hbar_chart(
            list(frame[first]),
            [(cid, frame[f"{cid} CTR"].to_numpy(dtype=float)) for cid in ids],
            title=f"Click-through rate per {first.lower()}, campaign by campaign",
        )

    sections = [
        _section(tables["summary"], chart),
        _section(tables["segments"], rates(tables["segments"], "Segment"), campaigns=ids),
        _section(tables["courses"], rates(tables["courses"], "Course"), campaigns=ids),
    ]
    human_only = all(r.human_only for r in reports)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            kind="compare",
            heading="EQUIP newsletters compared",
            subject=f"{len(reports)} campaigns side by side",
            campaign_id=", ".join(r.campaign_id for r in reports),
            date_range=f"{reports[0].date_range.split(' to ')[0]} to {reports[-1].date_range.split(' to ')[-1]}",
            mode="human clicks only" if human_only else "all clicks, including machine clicks",
            generated=(generated or dt.datetime.now(dt.UTC)).strftime("%d %b %Y %H:%M UTC"),
            not_sent=False,
            cards=[],
            sections=sections,
            notes=[
                "Each campaign's rate is its unique clickers divided by its delivered.",
                "Segments and courses are matched by their id in the campaign spec.",
            ],
        )
    )


# ---------------------------------------------------------------------------------------
# CSV and Excel


def _sheet_frame(table: Table, for_csv: bool) -> pd.DataFrame:
    """The frame with text defused; in CSV, rates become percentages (Excel shows 0.5 as 0.5)."""
    out = {}
    for col in table.frame.columns:
        fmt = table.formats.get(col, "text")
        values = table.frame[col]
        if fmt == "text":
            out[col] = values.astype("object").map(defuse)
        elif fmt == "pct" and for_csv:
            out[f"{col} (%)"] = (values.astype("float64") * 100).round(1)
        elif fmt in ("datetime", "date") and for_csv:
            out[col] = pd.to_datetime(values).dt.strftime(
                "%Y-%m-%d %H:%M" if fmt == "datetime" else "%Y-%m-%d"
            )
        else:
            out[col] = values
    return pd.DataFrame(out, columns=list(out))


def write_csv(table: Table, path: Path) -> Path:
    """UTF-8 with a byte-order mark, so Excel on Windows reads the accents right."""
    frame = _sheet_frame(table, for_csv=True)
    frame.to_csv(
        path, index=False, encoding="utf-8-sig", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
    )
    return path


def write_xlsx(
    tables: Sequence[Table], path: Path, *, summary: list[tuple[str, str]] | None = None
) -> Path:
    """A sheet per table: bold header, sensible widths, percentages and dates formatted."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    wb.remove(wb.active)
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor=BLUE.lstrip("#"))
    if summary:
        ws = wb.create_sheet("Summary")
        for r, (label, value) in enumerate(summary, start=1):
            a = ws.cell(row=r, column=1, value=defuse(label))
            b = ws.cell(row=r, column=2, value=defuse(value))
            a.data_type = b.data_type = "s"
            a.font = Font(bold=True)
            b.alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions["A"].width = 24
        ws.column_dimensions["B"].width = 100
    for table in tables:
        ws = wb.create_sheet(_sheet_title(table.title))
        frame = _sheet_frame(table, for_csv=False)
        for c, col in enumerate(frame.columns, start=1):
            cell = ws.cell(row=1, column=c, value=col)
            cell.font, cell.fill = header_font, header_fill
            cell.alignment = Alignment(wrap_text=True, vertical="center")
        last = len(frame) + 1
        for r, record in enumerate(frame.itertuples(index=False, name=None), start=2):
            for c, (col, value) in enumerate(zip(frame.columns, record), start=1):
                fmt = table.formats.get(col, "text")
                value = _cell_value(value)
                cell = ws.cell(row=r, column=c, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever it starts with
                if fmt == "pct":
                    cell.number_format = "0.0%"
                elif fmt == "int":
                    cell.number_format = "#,##0"
                elif fmt == "datetime":
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif fmt == "date":
                    cell.number_format = "yyyy-mm-dd"
                if table.total and r == last:
                    cell.font = Font(bold=True)
        for c, col in enumerate(frame.columns, start=1):
            fmt = table.formats.get(col, "text")
            longest = max([len(str(col))] + [len(show(v, fmt)) for v in table.frame[col].head(500)])
            ws.column_dimensions[get_column_letter(c)].width = min(60, max(10, longest + 2))
        ws.freeze_panes = "A2"
        ws.row_dimensions[1].height = 30
    wb.save(path)
    return path


def _cell_value(value):
    if missing(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _sheet_title(title: str) -> str:
    cleaned = "".join(ch for ch in title if ch not in "[]:*?/\\")
    return cleaned[:31]


# ---------------------------------------------------------------------------------------
# Whole reports


def write_report(report: Report, out_dir: Path) -> list[Path]:
    """report.html, report.xlsx and one CSV per table in ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    html = out_dir / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    written.append(html)
    tables = list(report.tables.values())
    summary = [
        ("Campaign", report.campaign_id),
        ("Subject", report.subject or ""),
        ("Dates", report.date_range),
    ]
    summary += [
        (f.label, f"{f.value} ({f.detail})" if f.detail else f.value) for f in report.headline
    ]
    summary += [("Note", n) for n in report.notes]
    written.append(write_xlsx(tables, out_dir / "report.xlsx", summary=summary))
    for table in tables:
        written.append(write_csv(table, out_dir / f"{table.key}.csv"))
    return written


def write_comparison(
    reports: Sequence[Report], tables: dict[str, Table], out_dir: Path
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / "report.html"
    html.write_text(render_compare_html(reports, tables), encoding="utf-8")
    written = [html, write_xlsx(list(tables.values()), out_dir / "report.xlsx")]
    for table in tables.values():
        written.append(write_csv(table, out_dir / f"compare-{table.key}.csv"))
    return written


# Short headers so the summary fits an 80-column terminal; the files keep the long names.
SHORT = {
    "Unique human clickers": "Clickers",
    "Unique clickers (incl. machine)": "Clickers*",
    "Click-through rate": "CTR",
    "Machine clicks": "Machine",
    "All clicks (raw)": "Raw",
    "Total clicks": "Clicks",
    "Opens (unreliable)": "Opens?",
    "Share of clicks": "Share",
}


def terminal_table(table: Table, *, max_rows: int = 20, drop: Sequence[str] = ()):
    """A rich Table of ``table`` (first ``max_rows`` rows), numbers right-aligned."""
    from rich import box
    from rich.table import Table as RichTable

    rt = RichTable(
        title=table.title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
    )
    keep = [i for i, col in enumerate(table.frame.columns) if col not in drop]
    for i in keep:
        col = table.frame.columns[i]
        numeric = table.formats.get(col) in ("int", "pct")
        rt.add_column(
            SHORT.get(col, col),
            justify="right" if numeric else "left",
            no_wrap=numeric,
            overflow="fold",
        )
    rows = _rows_for_display(table)
    for i, row in enumerate(rows[:max_rows]):
        last = table.total and i == len(rows) - 1
        rt.add_row(
            *[row[j][0] for j in keep],
            style="bold" if last else None,
            end_section=(table.total and i == len(rows) - 2),
        )
    if len(rows) > max_rows:
        rt.caption = f"{len(rows) - max_rows} more rows in the files"
    return rt


def print_summary(report: Report, console) -> None:
    """Headline figures, the funnel and the courses, for the person who ran the command."""
    console.print(f"[bold]{escape_rich(report.subject or report.campaign_id)}[/]")
    console.print(
        f"{report.campaign_id}, {escape_rich(report.date_range)}, "
        f"{'human clicks only' if report.human_only else 'all clicks (--all)'}"
    )
    console.print(" · ".join(f"{f.label} [bold]{f.value}[/]" for f in report.headline))
    console.print(
        terminal_table(report.tables["funnel"], drop=("Opens (unreliable)", "All clicks (raw)"))
    )
    console.print(terminal_table(report.tables["courses"]))
    if not report.human_only:
        console.print("Clickers* include machine clicks.")
    for note in report.notes:
        console.print(f"Note: {escape_rich(note)}", soft_wrap=True)


def print_comparison(reports: Sequence[Report], tables: dict[str, Table], console) -> None:
    """The comparison in long form (one line per segment and campaign), which fits a
    terminal however many campaigns there are; the files have the side-by-side layout."""
    from rich import box
    from rich.table import Table as RichTable

    console.print(terminal_table(tables["summary"], drop=("Subject",)))
    ids = [r.campaign_id for r in reports]
    for key, first, metrics in (
        ("segments", "Segment", ("Delivered", "Clickers", "CTR")),
        ("courses", "Course", ("Clickers", "Clicks", "CTR")),
    ):
        table = tables[key]
        rt = RichTable(
            title=table.title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
        )
        rt.add_column(first)
        rt.add_column("Campaign", no_wrap=True)
        for m in metrics:
            rt.add_column(m, justify="right", no_wrap=True)
        for i, name in enumerate(table.frame[first]):
            for j, cid in enumerate(ids):
                cells = [
                    show(table.frame[f"{cid} {m}"].iloc[i], table.formats[f"{cid} {m}"])
                    for m in metrics
                ]
                rt.add_row(str(name) if j == 0 else "", cid, *cells, end_section=j == len(ids) - 1)
        console.print(rt)


def escape_rich(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)
