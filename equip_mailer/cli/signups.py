"""``equip-mailer signups import``: places booked in another tool (an Eventbrite attendee
export, a Microsoft Forms workbook) recorded as registrations, so rosters and reports count
them. Safe to run again with the same or a newer export: nobody is registered twice."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from equip_mailer.cli.common import console, friendly_errors, main, settings
from equip_mailer.cli.rosters import campaign_id_of, store_with_campaign
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from equip_mailer.compose.list_files import Table
    from equip_mailer.signup.catalogue import CourseInfo
    from equip_mailer.signup.imports import ImportResult, ImportRow


@main.group()
def signups() -> None:
    """Sign-ups made elsewhere, brought in so rosters and reports count them.

    \b
    Example:
      equip-mailer signups import campaigns/2019-04-equip-training.yaml \\
          lists/imports/eventbrite-data-masterclass.csv
    """


class _DryRun(Exception):
    """Raised inside the import's transaction so a dry run writes nothing."""


@signups.command("import")
@click.argument("campaign", metavar="CAMPAIGN")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--course",
    "course_id",
    metavar="ID",
    help="The course the file's people booked (its id or name) [default: the course the "
    "file names, or the campaign's only course booked elsewhere].",
)
@click.option("--dry-run", is_flag=True, help="Show what would be imported; change nothing.")
@friendly_errors
def import_(campaign: str, file: Path, course_id: str | None, dry_run: bool) -> None:
    """Import an attendee export from another booking tool: an Eventbrite attendee CSV, a
    Microsoft Forms XLSX, or any CSV/XLSX with an email column (name, practice, role,
    date and access needs are read when there).

    People are matched to the campaign's recipients by address (any case). People who are
    not on its lists are imported too, and listed so you can check them. Rows marked
    cancelled or refunded are left out (and listed apart when an earlier import gave them a
    place, which stays until cancelled on the team's roster page), and so are people erased
    with `forget` (listed by row). Importing the same file again changes nothing.
    A row that cannot be read stops the import before anything is saved, naming the row;
    so does a file whose event or course column names none of the campaign's courses
    (--course says which course it is, when that is meant).

    \b
    Example:
      equip-mailer signups import campaigns/2019-04-equip-training.yaml \\
          lists/imports/eventbrite-data-masterclass.csv
      equip-mailer signups import 2019-04-equip-training \\
          lists/imports/forms-data-masterclass.xlsx --course data-masterclass --dry-run
    """
    from equip_mailer import store
    from equip_mailer.signup.imports import import_rows, parse_rows, read_export
    from equip_mailer.store import identity

    campaign_id, spec = campaign_id_of(campaign)
    table, source = read_export(file)
    engine = store_with_campaign(campaign_id, spec)
    cfg = settings(spec)
    secret = cfg.require_link_secret()
    with engine.connect() as conn:  # erased people are known by their hash under it
        identity.check(conn, secret, cfg.where("link_secret"))
    result = None
    try:
        with store.immediate(engine) as conn:
            course = _course(conn, campaign_id, course_id, table)
            rows, problems = parse_rows(table, course)
            if problems:
                raise EquipError(
                    f"{file}: {len(problems)} row{'s' if len(problems) != 1 else ''} cannot be "
                    "imported, so nothing was:\n"
                    + "\n".join(problems[:50])
                    + (f"\n... and {len(problems) - 50} more" if len(problems) > 50 else ""),
                    hint="Fix those rows in the file (or delete them), then run the same "
                    "command again.",
                )
            result = import_rows(
                conn,
                campaign_id,
                course,
                source,
                rows,
                store.utcnow(),
                secret,
            )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    assert result is not None
    print_import(result, file, dry_run)


def _course(conn: Connection, campaign_id: str, wanted: str | None, table: Table) -> CourseInfo:
    """The course named by --course, else by the file, else the only one booked elsewhere."""
    import sqlalchemy as sa

    from equip_mailer.signup.catalogue import load_course
    from equip_mailer.signup.imports import course_named_in, course_names
    from equip_mailer.store import signup_courses

    ids = conn.execute(
        sa.select(signup_courses.c.id)
        .where(signup_courses.c.campaign_id == campaign_id, signup_courses.c.active.is_(True))
        .order_by(signup_courses.c.id)
    ).scalars()
    courses = [c for c in (load_course(conn, i) for i in ids) if c is not None]
    listing = ", ".join(f"{c.course_id} ({c.name})" for c in courses)
    if not courses:
        raise EquipError(
            f"campaign {campaign_id} has no courses in the database",
            hint="Run equip-mailer check or send for the campaign first.",
        )
    if wanted:
        found = [
            c for c in courses if wanted.casefold() in (c.course_id.casefold(), c.name.casefold())
        ]
        if not found:
            raise EquipError(
                f"campaign {campaign_id} has no course {wanted!r}",
                hint=f"Its courses: {listing}.",
            )
        return found[0]
    named = course_named_in(table, courses)
    if named is not None:
        return named
    said = course_names(table)
    if said:  # the file names its event, and it is none (or more than one) of ours
        shown = ", ".join(repr(n[:60]) for n in said[:3]) + (" …" if len(said) > 3 else "")
        raise EquipError(
            f"the file's event or course column says {shown}, which is not one course of "
            f"campaign {campaign_id}, so nothing was imported",
            hint=f"If these are its people, name the course with --course; the campaign's "
            f"courses: {listing}.",
        )
    elsewhere = [c for c in courses if not c.hosted]
    if len(elsewhere) == 1:
        return elsewhere[0]
    raise EquipError(
        "the file does not say which course its people booked",
        hint=f"Name it with --course; the campaign's courses: {listing}.",
    )


def print_import(result: ImportResult, file: Path, dry_run: bool) -> None:
    """What happened to each kind of row; the rows to check, listed."""
    from equip_mailer.config import mask_email

    new, existing = result.having("new"), result.having("existing")
    verb = "Would import" if dry_run else "Imported"
    console.print(
        f"{verb} {file.name} ({result.source}) for {result.course.name}: "
        f"{len(new)} new sign-up{'s' if len(new) != 1 else ''}, "
        f"{len(existing)} already registered.",
        markup=False,
        soft_wrap=True,
    )

    def listed(title: str, rows: list[ImportRow], why: bool = False) -> None:
        if not rows:
            return
        console.print(f"{title} ({len(rows)}):", markup=False, soft_wrap=True)
        for r in rows:
            extra = f" ({r.detail})" if why and r.detail else ""
            console.print(
                f"  {r.where}: {r.name or '(no name)'} <{mask_email(r.email)}>{extra}",
                markup=False,
                soft_wrap=True,
            )

    listed("Not on the campaign's lists, imported all the same", result.not_on_list)
    listed("Already registered, left as they were", existing, why=True)
    listed("Cancelled or refunded in the booking tool, not imported", result.having("cancelled"))
    listed(
        "Cancelled or refunded in the booking tool, but still holding a place here from an "
        "earlier import (cancel it on the team's roster page if the booking tool is right)",
        result.having("still_held"),
        why=True,
    )
    erased = result.having("erased")
    if erased:
        console.print(
            f"Erased at their request (equip-mailer forget), not imported ({len(erased)}): "
            + ", ".join(r.where for r in erased[:10])
            + (" …" if len(erased) > 10 else ""),
            markup=False,
            soft_wrap=True,
        )
        console.print(
            "  If one of them booked again since, they sign up afresh on the course's open "
            "sign-up page.",
            markup=False,
            soft_wrap=True,
        )
    duplicates = result.having("duplicate")
    if duplicates:
        console.print(
            f"Same address as an earlier row, imported once ({len(duplicates)}):", markup=False
        )
        for r in duplicates:
            console.print(
                f"  {r.where}: {r.name or '(no name)'} <{mask_email(r.email)}>, as {r.detail}",
                markup=False,
                soft_wrap=True,
            )
    if dry_run:
        console.print("Dry run: nothing was saved.", markup=False)
