"""``people export``: the campaign's lists written back as one list with current QI levels,
for teams that keep the spreadsheet as the master.

The file is in the shipped list format (the columns ``lists/README.md`` describes), so it
can replace the lists it came from; two more columns say where a level higher than the
list's came from (``qi_level_why``: "after EQUIP Basics, 2019-06-27") and whether mail to the
person has stopped (``mail_stopped``: "unsubscribed 2019-05-02", "bounced ...", or "in
lists/suppressions.csv" for the campaign's suppression file). The export
keeps such people (this tool's suppressions still stop them), but a file taken into another
mailing tool must not mail them again, as Mailchimp's export marks its unsubscribed.
Rows that the lists reject stay out (``check`` names them), repeated addresses appear once,
and erased people never come back through an export: that is what would put them on next
quarter's list. Text that a spreadsheet would run as a formula is defused, as in the reports.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from equip_mailer.compose.audience import Recipient, file_suppressions, read_list
from equip_mailer.compose.campaign import Campaign, level_rank
from equip_mailer.compose.list_files import COLUMNS
from equip_mailer.report.spreadsheets import defuse
from equip_mailer.store import suppressions

from . import records

HEADER = (*COLUMNS, "qi_level_why", "mail_stopped")
# a suppression's reason as the column says it (anything else: as stored)
STOPPED = {
    "unsubscribe": "unsubscribed",
    "bounce": "bounced",
    "invalid": "invalid address",
    "spamreport": "marked as spam",
    "dropped": "dropped by SendGrid",
    "manual": "stopped by the team",
}


@dataclass(frozen=True)
class Exported:
    rows: int
    raised: int  # people written at a higher level than their list gives
    erased: int  # people on the lists left out because they were erased


def _stopped(conn: Connection) -> dict[str, str]:
    """Why and since when mail to each suppressed address stopped (erased ones left out)."""
    rows = conn.execute(
        sa.select(suppressions.c.email_key, suppressions.c.reason, suppressions.c.created_at)
    )
    return {
        r.email_key: f"{STOPPED.get(r.reason, r.reason)} {r.created_at:%Y-%m-%d}"
        for r in rows
        if not r.email_key.startswith(records.ERASED_PREFIX)
    }


def _rows(
    campaign: Campaign, people: records.PeopleRecords, stopped: dict[str, str]
) -> tuple[list[list[str]], int, int]:
    seen: set[str] = set()
    rows: list[list[str]] = []
    raised = erased = 0
    # the campaign's suppression file stops mail as the store does (load_audience)
    by_file = file_suppressions(campaign)
    in_file = f"in {campaign.lists.suppressions}"
    for shown in campaign.lists.files:
        recipients, _rejects, _count = read_list(
            campaign.path(shown), shown, sheet=campaign.lists.sheet(shown)
        )
        for r in recipients:
            if r.key in seen:
                continue
            seen.add(r.key)
            if people.erased(r.key):
                erased += 1
                continue
            rows.append(_row(r, people))
            raised += rows[-1][-1] != "list"
            rows[-1].append(stopped.get(r.key, in_file if r.key in by_file else ""))
    return rows, raised, erased


def _row(r: Recipient, people: records.PeopleRecords) -> list[str]:
    level, why = r.qi_level, "list"
    known = people.level(r.key)
    if known is not None and level_rank(known.level) > level_rank(r.qi_level):
        level, why = known.level, known.why
    return [r.email, r.first_name, r.last_name, r.practice, r.role, level, why]


def export_people(campaign: Campaign, engine: Engine, secret: bytes | None, out: Path) -> Exported:
    """Write ``out`` (.csv, UTF-8 with BOM for Excel; or .xlsx) and say what it holds."""
    with engine.connect() as conn:
        people = records.load(conn, secret)
        stopped = _stopped(conn)
    rows, raised, erased = _rows(campaign, people, stopped)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".xlsx":
        _write_xlsx(rows, out)
    else:
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\r\n")
            writer.writerow(HEADER)
            writer.writerows([defuse(v) for v in row] for row in rows)
    return Exported(rows=len(rows), raised=raised, erased=erased)


def _write_xlsx(rows: list[list[str]], out: Path) -> None:
    """One sheet ``People`` as the team works in it: bold header frozen with filter buttons,
    columns as wide as their contents (up to 50), every cell text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    sheet = wb.active
    sheet.title = "People"
    sheet.append(list(HEADER))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([defuse(v) for v in row])
        for cell in sheet[sheet.max_row]:
            cell.data_type = "s"  # never a formula
    for c, name in enumerate(HEADER, start=1):
        longest = max([len(name)] + [len(row[c - 1] or "") for row in rows[:2000]])
        sheet.column_dimensions[get_column_letter(c)].width = min(50, longest + 2)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(HEADER))}{len(rows) + 1}"
    wb.save(out)
