"""``equip-mailer roster``: who is coming to each session, as files for the trainer and the
team (XLSX and CSV in the roster contract, a printable A4 sign-in sheet), with places
filled against capacity on screen.

Only reads the store: a database that does not exist yet is not created.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from equip_mailer.cli.common import (
    console,
    friendly_errors,
    main,
    not_a_folder,
    settings,
    sqlite_file_missing,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from equip_mailer.signup.roster import SessionRoster


@main.command()
@click.argument("campaign", metavar="CAMPAIGN")
@click.option(
    "--session",
    "session",
    metavar="ID",
    help="Only this session: its date (2019-06-27), or course@date "
    "(equip-basics@2019-06-27) when two courses meet that day.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files [default: rosters/<campaign id>/].",
)
@friendly_errors
def roster(campaign: str, session: str | None, out_dir: Path | None) -> None:
    """Rosters for a campaign's sessions: per session an Excel file and a CSV (name,
    practice, role, QI level, access needs, confirmed or waiting, when they signed up, an
    Attended column to fill in) and an A4 sign-in sheet to print, plus places filled here.

    CAMPAIGN is the campaign spec (campaigns/....yaml) or a campaign id from the database.
    Run it again at any time: the files are rewritten with the latest sign-ups.

    \b
    Example:
      equip-mailer roster campaigns/2019-04-equip-training.yaml
      equip-mailer roster 2019-04-equip-training --session 2019-06-27 --out today/
    """
    import datetime as dt

    from equip_mailer.signup.catalogue import LONDON
    from equip_mailer.signup.roster import UnknownSession, campaign_rosters, write_roster

    campaign_id, spec = campaign_id_of(campaign)
    engine = store_with_campaign(campaign_id, spec)
    with engine.connect() as conn:
        try:
            rosters = campaign_rosters(conn, campaign_id, session)
        except UnknownSession as exc:
            raise EquipError(
                f"campaign {campaign_id} has no session {exc.wanted!r}",
                hint="Its sessions: " + ", ".join(exc.known) + "." if exc.known else None,
            ) from None
    if not rosters:
        console.print(
            f"Campaign {campaign_id} has no course that takes sign-ups here, and none were "
            "imported, so there is no roster to write.",
            markup=False,
            soft_wrap=True,
        )
        return
    target = out_dir or Path("rosters") / campaign_id
    if target.exists() and not target.is_dir():
        raise not_a_folder(target)
    made_at = dt.datetime.now(LONDON).replace(tzinfo=None)
    for r in rosters:
        try:
            write_roster(r, target, made_at)
        except (FileExistsError, NotADirectoryError):
            raise not_a_folder(target) from None
    print_rosters(campaign_id, rosters)
    console.print(
        f"Files: {len(rosters)} session{'s' if len(rosters) != 1 else ''} "
        f"(.xlsx, .csv and _sign-in.html each) in {target}",
        markup=False,
        soft_wrap=True,
    )


def print_rosters(campaign_id: str, rosters: list[SessionRoster]) -> None:
    """Places filled against capacity, per session."""
    from rich.table import Table

    table = Table(title=f"Rosters of {campaign_id}", title_justify="left")
    table.add_column("Course")
    table.add_column("Session")
    table.add_column("Starts")
    table.add_column("Places filled", justify="right")
    table.add_column("Waiting", justify="right")
    table.add_column("Access needs", justify="right")
    for r in rosters:
        needs = sum(1 for p in r.confirmed + r.waiting if p.access_needs)
        table.add_row(
            r.course.name,
            r.session.key + (f" ({r.day})" if r.day else ""),
            r.starts[-5:],
            r.filled,
            str(r.free.waiting),
            str(needs),
        )
    console.print(table)


def campaign_id_of(arg: str) -> tuple[str, Path | None]:
    """A campaign spec's id and path, or the argument itself (an id) and None.

    The path decides the project (and so the store) when the command is run from another
    folder; an id is looked up in the project at or above the current folder."""
    from equip_mailer.compose.spec import load_campaign

    path = Path(arg)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        # past dates are what rosters look at
        return load_campaign(path, allow_past=True).id, path
    return arg, None


def store_with_campaign(campaign_id: str, spec: Path | None = None) -> Engine:
    """The store of the project holding ``spec`` (else the one at or above the current
    folder), which must exist and know the campaign (reading never creates one)."""
    import sqlalchemy as sa

    from equip_mailer.store.engine import open_store
    from equip_mailer.store.schema import campaigns

    url = settings(spec).database_url
    if sqlite_file_missing(url):
        raise EquipError(
            f"campaign {campaign_id} has not been sent yet (there is no database)",
            hint="Sign-ups start once the campaign is sent.",
        )
    engine = open_store(url)
    with engine.connect() as conn:
        known = [r[0] for r in conn.execute(sa.select(campaigns.c.id).order_by(campaigns.c.id))]
    if campaign_id not in known:
        raise EquipError(
            f"there is no campaign {campaign_id!r} in the database",
            hint=(
                "Campaigns in the database: " + ", ".join(known) + "."
                if known
                else "Nothing has been sent yet; sign-ups start once a campaign is sent."
            ),
        )
    return engine
