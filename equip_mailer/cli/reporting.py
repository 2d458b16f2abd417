"""``equip-mailer report``: a campaign's click-through report (or several side by side) read
from the store and written as HTML, Excel and CSV, with a summary on screen.

Reports only read: a store that does not exist yet is not created, and a campaign that was
never sent still gets a report that says so.
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

    from equip_mailer.report.model import Frames, Names, Report


@main.command()
@click.argument("campaigns", nargs=-1, required=True, metavar="CAMPAIGN...")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the files [default: report/<campaign id>/, or report/compare/].",
)
@click.option(
    "--human-only/--all",
    "human_only",
    default=True,
    help="Headline figures from human clicks only (the default), or from every click "
    "including mail scanners. Machine and raw figures are always shown beside.",
)
@click.option(
    "--compare",
    is_flag=True,
    help="Set two or more campaigns side by side, per segment and per course.",
)
@friendly_errors
def report(
    campaigns: tuple[str, ...], out_dir: Path | None, human_only: bool, compare: bool
) -> None:
    """Click-through report for a campaign: report.html (self-contained, prints on A4),
    report.xlsx and a CSV per table, plus a summary here.

    CAMPAIGN is the campaign spec (campaigns/....yaml) or a campaign id from the database.
    A campaign that was never sent still gets a report that says so.

    \b
    Example:
      equip-mailer report campaigns/2019-04-equip-training.yaml
      equip-mailer report 2019-04-equip-training --all --out board-paper/
      equip-mailer report --compare 2019-01-equip-training 2019-04-equip-training
    """
    from equip_mailer.report.assemble import build_report

    _check_campaign_args(campaigns, compare)
    cfg = settings(_spec_path(campaigns[0]))
    engine = _report_engine(cfg.database_url)
    reports = cfg.project.path("report") if cfg.project is not None else Path("report")
    built = []
    for arg in campaigns:
        frames, names = _report_input(arg, engine)
        built.append(build_report(frames, names, human_only=human_only))
    if compare:
        target = out_dir or reports / "compare"
        paths = _write_comparison(built, target)
    else:
        target = out_dir or reports / built[0].campaign_id
        paths = _write_one(built[0], target)
    _files_written(paths)


def _spec_path(arg: str) -> Path | None:
    """The campaign spec an argument names (its project is the report's), or None for an id."""
    path = Path(arg)
    return path if path.suffix.lower() in (".yaml", ".yml") and path.is_file() else None


def _check_campaign_args(campaigns: tuple[str, ...], compare: bool) -> None:
    """One campaign, or --compare with two or more, none named twice."""
    if compare and len(campaigns) < 2:
        raise EquipError(
            "--compare needs two or more campaigns",
            hint="e.g. equip-mailer report --compare 2019-01-equip 2019-04-equip",
        )
    if len(set(campaigns)) < len(campaigns):
        raise EquipError("a campaign is named twice; name each campaign once")
    if not compare and len(campaigns) > 1:
        raise EquipError(
            f"give one campaign, not {len(campaigns)}",
            hint="Use --compare to set several campaigns side by side.",
        )


def _write_one(rep: Report, target: Path) -> list[Path]:
    """One campaign's files, and its summary (or a 'not sent yet') on screen."""
    from equip_mailer.report.files import write_report
    from equip_mailer.report.terminal import print_summary

    try:
        paths = write_report(rep, target)
    except (FileExistsError, NotADirectoryError):
        raise not_a_folder(target) from None
    if not rep.sent:
        console.print(
            f"Campaign {rep.campaign_id} has not been sent yet, so there is "
            "nothing to count; the report says so.",
            markup=False,
            soft_wrap=True,
        )
    else:
        print_summary(rep, console)
    return paths


def _write_comparison(built: list[Report], target: Path) -> list[Path]:
    """The side-by-side files, and the comparison in long form on screen."""
    from equip_mailer.report.assemble import compare
    from equip_mailer.report.files import write_comparison
    from equip_mailer.report.terminal import print_comparison

    tables = compare(built)
    try:
        paths = write_comparison(built, tables, target)
    except (FileExistsError, NotADirectoryError):
        raise not_a_folder(target) from None
    print_comparison(built, tables, console)
    return paths


def _report_engine(url: str) -> Engine | None:
    """The store, or None when its SQLite file does not exist: a report only reads, so it
    must not leave an empty database behind."""
    from equip_mailer.store.engine import open_store

    if sqlite_file_missing(url):
        return None
    return open_store(url)  # an invalid URL raises the plain StoreError


def _report_input(arg: str, engine: Engine | None) -> tuple[Frames, Names | None]:
    """Frames and display names for one CAMPAIGN argument: a spec file or a campaign id.

    A spec gives the names (and a 'not sent yet' report when the store has never seen the
    campaign); a bare id is read from the store alone, borrowing names from the spec the
    send recorded when that file is still there.
    """
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.report.load import ReportError, empty_frames, load_frames
    from equip_mailer.report.model import names_from_spec
    from equip_mailer.report.stored import names_from_recorded_spec, refresh_machine_flags

    path = Path(arg)
    if path.suffix.lower() in (".yaml", ".yml") or path.is_file():
        spec = load_campaign(path, allow_past=True)  # reports look back: past dates are fine
        names = names_from_spec(spec)
        try:
            if engine is None:
                raise ReportError("no database yet")
            refresh_machine_flags(engine, spec.id)
            return load_frames(engine, spec.id), names
        except ReportError:
            return empty_frames(spec.id, spec.subject), names
    if engine is None:
        raise ReportError(
            f"there is no campaign {arg!r} in the database",
            hint="There is no database yet, so nothing has been sent. "
            "Give the campaign spec (campaigns/....yaml) for a "
            "'not sent yet' report.",
        )
    refresh_machine_flags(engine, arg)
    return load_frames(engine, arg), names_from_recorded_spec(engine, arg)


def _files_written(paths: list[Path]) -> None:
    html = [p for p in paths if p.suffix == ".html"]
    others = [p for p in paths if p.suffix != ".html"]
    for p in html:
        console.print(f"Report: {p}", markup=False, soft_wrap=True)
    if others:
        console.print(
            f"Also: {', '.join(p.name for p in others)} in {others[0].parent}",
            markup=False,
            soft_wrap=True,
        )
