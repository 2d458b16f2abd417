"""The report as one self-contained HTML page (template in ``templates/report.html.j2``).

The page must open offline, from an email attachment and print on A4, so the CSS is inline
and the charts are SVG: nothing is fetched. Rendering returns a string and writes nothing:
``report_context`` is the page's content as plain data, so the team's browser pages can
show the same sections inside their own layout instead of building them a second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from .charts import compare_charts, report_charts
from .formatting import rows_for_display
from .model import Report, Table

TEMPLATE = "report.html.j2"


def render_html(report: Report, generated: dt.datetime | None = None) -> str:
    """One campaign's report page; ``generated`` is the time printed on it (default: now)."""
    return _environment().get_template(TEMPLATE).render(**report_context(report, generated))


def render_compare_html(
    reports: Sequence[Report], tables: dict[str, Table], generated: dt.datetime | None = None
) -> str:
    """Several campaigns side by side (``tables`` from ``assemble.compare``)."""
    context = compare_context(reports, tables, generated)
    return _environment().get_template(TEMPLATE).render(**context)


def report_context(report: Report, generated: dt.datetime | None = None) -> dict[str, Any]:
    """What the page shows for one campaign: heading, cards, sections (table + chart), notes."""
    charts = report_charts(report)
    t = report.tables
    sections = [
        section(t["funnel"], charts.get("funnel")),
        section(t["courses"], charts.get("courses"), legend=True),
        section(t["places"], charts.get("places")),
        section(t["segment_courses"], campaigns=_course_groups(t["segment_courses"])),
        section(t["sessions"]),
        {**section(t["days"], charts.get("over_time"), legend=True), "title": "Clicks over time"},
        section(t["practices"], charts.get("practices")),
        section(t["roles"]),
        section(t["machine"]),
    ]
    return {
        "kind": "report",
        "heading": report.title or report.subject or report.campaign_id,
        "subject": report.subject,
        "campaign_id": report.campaign_id,
        "date_range": report.date_range,
        "mode": "human clicks only"
        if report.human_only
        else "all clicks, including machine clicks",
        "generated": _made_at(generated),
        "not_sent": not report.sent,
        "cards": report.headline,
        "sections": sections,
        "notes": report.notes,
    }


def _course_groups(table: Table) -> list[str]:
    """The course names heading the segment x course table's column pairs."""
    return list(
        dict.fromkeys(
            c.rsplit(" ", 2)[0] if c.endswith(" signed up") else c.rsplit(" ", 1)[0]
            for c in table.frame.columns[1:]
        )
    )


def compare_context(
    reports: Sequence[Report], tables: dict[str, Table], generated: dt.datetime | None = None
) -> dict[str, Any]:
    """What the comparison page shows: the campaigns' rates, then segments and courses with
    a header naming each campaign above its columns."""
    charts = compare_charts(reports, tables)
    ids = [r.campaign_id for r in reports]
    sections = [
        section(tables["summary"], charts["summary"]),
        section(tables["segments"], charts["segments"], campaigns=ids),
        section(tables["courses"], charts["courses"], campaigns=ids),
    ]
    human_only = all(r.human_only for r in reports)
    first = reports[0].date_range.split(" to ")[0]
    last = reports[-1].date_range.split(" to ")[-1]
    return {
        "kind": "compare",
        "heading": "EQUIP newsletters compared",
        "subject": f"{len(reports)} campaigns side by side",
        "campaign_id": ", ".join(r.campaign_id for r in reports),
        "date_range": f"{first} to {last}",
        "mode": "human clicks only" if human_only else "all clicks, including machine clicks",
        "generated": _made_at(generated),
        "not_sent": False,
        "cards": [],
        "sections": sections,
        "notes": [
            "Each campaign's rate is its unique clickers divided by its delivered.",
            "Segments and courses are matched by their id in the campaign spec.",
        ],
    }


def section(
    table: Table, chart: Markup | None = None, legend: bool = False, campaigns: Sequence[str] = ()
) -> dict[str, Any]:
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
        "rows": rows_for_display(table),
        "total": table.total and len(table.frame) > 0,
        "note": table.note,
        "empty": len(table.frame) == 0,
    }


def _made_at(generated: dt.datetime | None) -> str:
    return (generated or dt.datetime.now(dt.UTC)).strftime("%d %b %Y %H:%M UTC")


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("equip_mailer.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
