"""The summary printed for the person who ran ``equip-mailer report``: headline figures,
the funnel, the courses and the places per session, sized for an 80-column terminal (the
files hold the rest).

rich is imported inside the functions so importing the report package stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .formatting import rows_for_display, show
from .model import Report, Table

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table as RichTable

# Short headers so the summary fits an 80-column terminal; the files keep the long names.
SHORT = {
    "Unique human clickers": "Clickers",
    "Unique clickers (incl. machine)": "Clickers*",
    "Unique clickers": "Clickers",  # the comparison's summary
    "Click-through rate": "CTR",
    "Machine clicks": "Machine",
    "All clicks (raw)": "Raw",
    "Total clicks": "Clicks",
    "Opens (unreliable)": "Opens?",
    "Share of clicks": "Share",
    "Unsubscribed": "Unsub",
    "Signed up: place": "Placed",
    "Signed up: waiting": "Waiting",
    "Offered to": "Offered",
    "Signed up (recipients)": "Signed up\n(recipients)",  # the comparison's: two lines
    "Signed up (all routes)": "Signed up\n(all routes)",
}


def terminal_table(table: Table, *, max_rows: int = 20, drop: Sequence[str] = ()) -> RichTable:
    """A rich Table of ``table`` (first ``max_rows`` rows), numbers right-aligned."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    # Text(): names from the spec and the store are shown as written, never read as markup
    rt = RichTable(
        title=Text(table.title), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD
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
            min_width=None if numeric or i != keep[0] else 12,  # names stay readable
        )
    rows = rows_for_display(table)
    for i, row in enumerate(rows[:max_rows]):
        last = table.total and i == len(rows) - 1
        rt.add_row(
            *[Text(str(row[j][0])) for j in keep],
            style="bold" if last else None,
            end_section=(table.total and i == len(rows) - 2),
        )
    if len(rows) > max_rows:
        rt.caption = f"{len(rows) - max_rows} more rows in the files"
    return rt


def print_summary(report: Report, console: Console) -> None:
    """Headline figures, the funnel and the courses, for the person who ran the command."""
    console.print(f"[bold]{escape_rich(report.subject or report.campaign_id)}[/]")
    console.print(
        f"{report.campaign_id}, {escape_rich(report.date_range)}, "
        f"{'human clicks only' if report.human_only else 'all clicks (--all)'}"
    )
    for line in _headline_lines(report, console.width):
        console.print(line)
    console.print(
        terminal_table(
            report.tables["funnel"],
            drop=(
                "Opens (unreliable)",
                "Machine clicks",
                "Sign-up rate",
                "Bounced",
            ),
        )
    )
    console.print(
        terminal_table(
            report.tables["courses"], drop=("Total clicks", "Machine clicks", "Places filled")
        )
    )
    console.print(
        terminal_table(report.tables["places"], drop=("Places filled", "Booked", "Starts (London)"))
    )
    if not report.human_only:
        console.print("Clickers* include machine clicks.")
    for note in report.notes:
        console.print(f"Note: {escape_rich(note)}", soft_wrap=True)


def _headline_lines(report: Report, width: int) -> list[str]:
    """The headline figures as lines of at most ``width`` characters that break after a
    " ·" separator, never between a figure's label and its value (rich would)."""
    lines: list[list[tuple[str, str]]] = [[]]
    used = 0
    for f in report.headline:
        plain = f"{f.label} {f.value}"
        if lines[-1] and used + len(" · ") + len(plain) + len(" ·") > width:  # room to break
            lines.append([])
            used = 0
        used += len(plain) + (len(" · ") if lines[-1] else 0)
        lines[-1].append((escape_rich(f.label), escape_rich(f.value)))
    out = [" · ".join(f"{label} [bold]{value}[/]" for label, value in line) for line in lines]
    return [text + " ·" for text in out[:-1]] + out[-1:]


def print_comparison(reports: Sequence[Report], tables: dict[str, Table], console: Console) -> None:
    """The comparison in long form (one line per segment and campaign), which fits a
    terminal however many campaigns there are; the files have the side-by-side layout.
    Signed up follows the click-through rate, as in the single report and the files; its
    header says whom it counts (a segment's recipients, or every sign-up for a course), and
    a note under the tables says it in words."""
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    from .assemble import SIGNED_UP_ALL, SIGNED_UP_IN_SHORT, SIGNED_UP_RECIPIENTS

    console.print(terminal_table(tables["summary"], drop=("Subject",)))
    ids = [r.campaign_id for r in reports]
    for key, first, metrics in (
        ("segments", "Segment", ("Delivered", "Clickers", "CTR", SIGNED_UP_RECIPIENTS)),
        ("courses", "Course", ("Clickers", "Clicks", "CTR", SIGNED_UP_ALL)),
    ):
        table = tables[key]
        rt = RichTable(
            title=Text(table.title),
            title_justify="left",
            header_style="bold",
            box=box.SIMPLE_HEAD,
        )
        rt.add_column(first, overflow="fold", min_width=12)  # names stay readable
        rt.add_column("Campaign", overflow="fold")  # long ids fold at 80 columns, as above
        for m in metrics:
            rt.add_column(SHORT.get(m, m), justify="right", no_wrap=True)
        for i, name in enumerate(table.frame[first]):
            for j, cid in enumerate(ids):
                cells = [
                    show(table.frame[f"{cid} {m}"].iloc[i], table.formats[f"{cid} {m}"])
                    for m in metrics
                ]
                rt.add_row(
                    Text(str(name)) if j == 0 else "", cid, *cells, end_section=j == len(ids) - 1
                )
        console.print(rt)
    console.print(f"Note: {escape_rich(SIGNED_UP_IN_SHORT)}", soft_wrap=True)


def escape_rich(text: str) -> str:
    """Text shown as-is: a subject with [brackets] is not rich markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)
