"""``equip-mailer attendance``, ``people export`` and ``people level``: the QI journey
(attendance moves people along none → basics → project); ``person``, ``forget`` and
``purge``: what the store holds about a person, erasing it, and the retention limit."""

from __future__ import annotations

import getpass
from pathlib import Path

import click

from equip_mailer.cli.common import (
    campaign_arg,
    console,
    friendly_errors,
    main,
    open_campaign,
    settings,
)
from equip_mailer.errors import EquipError


def _who() -> str:
    """Who ran the command, for the history ("cli: ann"); no address."""
    try:
        return f"cli: {getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@main.command()
@campaign_arg
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@friendly_errors
def attendance(campaign: Path, sheet: Path) -> None:
    """Import a completed sign-in sheet: who attended which session.

    SHEET is the roster file (CSV or XLSX) with its Attended column filled in (yes/no; also
    y/n, x, ✓, 1/0, attended/absent; rows left blank are not marked yet), or a plain list
    with the columns email and session (one row per session attended). Rows are matched by
    Registration, else by email and session. Every row is checked first: if any is wrong,
    all are named and nothing is recorded. Importing the same sheet twice changes nothing;
    a later sheet saying "no" where an earlier said "yes" is recorded as a correction.

    Completing a course (every day of an attend-all course, one of a choose-one course)
    raises the person to the QI level it leads to, and the next campaign's check and send
    put them in that segment.

    \b
    Example:
      equip-mailer attendance campaigns/2019-04-equip-training.yaml rosters/basics-06-27.xlsx
    """
    from equip_mailer.people.sheets import import_sheet, summary
    from equip_mailer.signup.catalogue import register_courses
    from equip_mailer.store import utcnow

    spec, _cfg, engine = open_campaign(campaign, allow_past=True)  # sessions are over by now
    with engine.begin() as conn:
        register_courses(conn, spec)  # the store knows each course's leads_to
    result = import_sheet(engine, spec.id, sheet, str(sheet), _who(), utcnow())
    for line in summary(result):
        console.print(line, markup=False, soft_wrap=True)


@main.group()
def people() -> None:
    """QI levels as training moved them: export a list, set a level by hand.

    \b
    Example:
      equip-mailer people export campaigns/2019-04-equip-training.yaml --out lists/people.csv
      equip-mailer people level ann@nhs.example basics --reason "did EQUIP Basics in 2018"
    """


@people.command("export")
@campaign_arg
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The list to write (.csv or .xlsx).",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@friendly_errors
def export(campaign: Path, out: Path, force: bool) -> None:
    """Write the campaign's lists as one list, in the shipped list format, with each
    person's current QI level (the higher of the list's and the one training gave them),
    for teams that keep the spreadsheet as the master. Erased people are left out;
    suppressed ones stay (the suppression list still stops them).

    \b
    Example:
      equip-mailer people export campaigns/2019-04-equip-training.yaml --out people.csv
    """
    from equip_mailer.people.export import export_people

    spec, cfg, engine = open_campaign(campaign, allow_past=True)
    if out.exists() and not force:
        raise EquipError(f"{out} exists already", hint="Choose another --out, or add --force.")
    secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
    written = export_people(spec, engine, secret, out)
    console.print(
        f"Wrote {written.rows:,} people to {out}: {written.raised:,} at a higher QI level "
        f"than their list says, {written.erased:,} erased left out.",
        markup=False,
        soft_wrap=True,
    )


@people.command("level")
@click.argument("email")
@click.argument("level", type=click.Choice(["none", "basics", "project"]))
@click.option("--reason", required=True, help="Why, in a few words (kept in the history).")
@friendly_errors
def level(email: str, level: str, reason: str) -> None:
    """Set a person's QI level by hand, with a reason (kept in their history; the next
    check and send use the higher of it and their list's level).

    \b
    Example:
      equip-mailer people level ann@nhs.example project --reason "leads her practice's QI project"
    """
    from equip_mailer.compose.cell_values import normalise_email
    from equip_mailer.config import mask_email
    from equip_mailer.people.levels import set_level
    from equip_mailer.store import open_store, utcnow

    address, problem = normalise_email(email.strip())
    if problem:
        raise EquipError(f"{email!r}: {problem}")
    engine = open_store(settings().database_url)
    with engine.begin() as conn:
        change = set_level(conn, address, level, reason, _who(), utcnow())
    was = f" (was {change.previous_level})" if change.previous_level else ""
    console.print(f"{mask_email(address)} is now at {level}{was}.", markup=False)
