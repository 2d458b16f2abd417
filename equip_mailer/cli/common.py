"""What every command shares: the ``main`` click group they register on, the consoles they
print to, the wrapper that turns failures into one plain sentence, common arguments and
options, settings, confirmation, the progress bar and read-only store checks.

Kept light on imports so that ``equip-mailer --help`` stays fast: heavier modules are
imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from equip_mailer.config import load_settings
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from rich.progress import Progress
    from sqlalchemy.engine import Engine

    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.config import Settings

P = ParamSpec("P")
R = TypeVar("R")

# emoji=False: "lists/x.csv:100:" must not print as an emoji
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="equip-mailer")
def main() -> None:
    """EQUIP course-menu newsletters: check, preview, send, track and report.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """


def settings(campaign: Path | None = None) -> Settings:
    """The settings of the project a command works on: the one holding ``campaign``, else
    the one at or above the current folder. Relative places (the default SQLite store, the
    outbox) are taken from that root, never from the current folder. The first call in a
    command prints which project and store it uses, as the command's first line."""
    from equip_mailer.project import find_project, project_for_spec, require_project

    if campaign is not None and not campaign.exists():
        # before guessing a project from a path that is not there (its folder's
        # "store" would be named in an error about a database, not the missing file)
        raise missing_spec(campaign)
    project = project_for_spec(campaign) if campaign is not None else find_project()
    cfg = load_settings(project=project)
    if project is None and "database_url" not in cfg.source:
        # no project and no store named: a default store here would be a new, empty one
        require_project()
    _announce(cfg)
    return cfg


def missing_spec(campaign: Path) -> EquipError:
    """The error for a campaign file that is not there, with the spec it probably meant: a
    campaign id typed instead of its file, or a path given from another folder."""
    from equip_mailer.errors import SpecError
    from equip_mailer.project import CAMPAIGNS, find_project

    project = find_project()
    names = [campaign.name, f"{campaign.name}.yaml", f"{campaign.name}.yml"]
    found = [project.root / CAMPAIGNS / n for n in names] if project is not None else []
    meant = next((p for p in found if p.is_file()), None)
    if meant is not None:
        try:
            shown = str(meant.relative_to(Path.cwd()))
        except ValueError:
            shown = str(meant)
        hint = f"Did you mean {shown}?"
    else:
        hint = (
            f"Give the path of the campaign's .yaml file as seen from this folder "
            f"({Path.cwd()}), e.g. campaigns/2019-04-equip-training.yaml inside the project."
        )
    return SpecError([f"{campaign}: no such campaign file"], hint=hint)


def _announce(cfg: Settings) -> None:
    """``Project /srv/equip · store sqlite:////srv/equip/equip-mailer.db``, once per command,
    on stderr (so piped output stays the command's own); the password is masked."""
    from equip_mailer.settings_values import masked_url

    ctx = click.get_current_context(silent=True)
    meta = ctx.find_root().meta if ctx is not None else {}
    if meta.get("equip_mailer.announced"):
        return
    meta["equip_mailer.announced"] = True
    root = str(cfg.project.root) if cfg.project is not None else "(none: store named by setting)"
    err_console.print(
        f"Project {root} · store {masked_url(cfg.database_url)}", markup=False, soft_wrap=True
    )


def open_campaign(campaign_path: Path, allow_past: bool) -> tuple[Campaign, Settings, Engine]:
    """Spec, settings and store (created or migrated): what commands about one campaign's
    sending start from."""
    from equip_mailer.store.engine import open_store

    cfg = settings(campaign_path)
    spec = load_spec(campaign_path, allow_past)
    return spec, cfg, open_store(cfg.database_url)


def open_campaign_if_sent(
    campaign_path: Path, allow_past: bool
) -> tuple[Campaign, Settings, Engine | None]:
    """As ``open_campaign``, with no store (None) when it is a SQLite file not made yet:
    nothing was ever sent from it, and a command that only reads (status, cancel, a dry
    run) must not leave an empty database behind."""
    from equip_mailer.store.engine import open_store

    cfg = settings(campaign_path)
    spec = load_spec(campaign_path, allow_past)
    if sqlite_file_missing(cfg.database_url):
        return spec, cfg, None
    return spec, cfg, open_store(cfg.database_url)


def load_spec(campaign_path: Path, allow_past: bool) -> Campaign:
    from equip_mailer.compose.spec import load_campaign

    return load_campaign(campaign_path, allow_past=allow_past)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into a plain message and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except EquipError as exc:
            err_console.print(
                f"[bold red]Error:[/] {escape(str(exc))}", markup=True, soft_wrap=True
            )
            if exc.hint:
                err_console.print(f"Hint: {exc.hint}", markup=False, soft_wrap=True)
            sys.exit(1)
        except PermissionError as exc:
            err_console.print(f"Error: permission denied: {exc.filename}", markup=False)
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("Stopped. Run the same command again to carry on.")
            sys.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            err_console.print(f"Error: {exc.strerror or exc}{where}.", markup=False, soft_wrap=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence for a non-programmer
            from equip_mailer import crash_reports

            saved = crash_reports.write(exc)  # no personal data: stack and types only
            err_console.print(
                f"Error: something unexpected went wrong ({type(exc).__name__}). "
                "Nothing was lost: run the same command again to carry on."
                + (f" Details for the developers are in {saved}." if saved else ""),
                markup=False,
                soft_wrap=True,
            )
            sys.exit(1)

    return wrapper


campaign_arg = click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
allow_past_opt = click.option(
    "--allow-past",
    is_flag=True,
    help="Accept sessions dated before today (needed for the 2019 demo).",
)


def confirmed(question: str, *, refusal: str, hint: str) -> bool:
    """Ask on the terminal before doing something that cannot be undone; with no terminal to
    ask on (a pipe, cron), refuse with ``refusal`` and a hint naming the --yes flag."""
    if not sys.stdin.isatty():
        raise EquipError(refusal, hint=hint)
    return click.confirm(question, default=False)


def not_a_folder(path: Path) -> EquipError:
    """The error for an --out that names a file."""
    return EquipError(f"{path} is a file, not a folder", hint="Choose another --out.")


def sqlite_file_missing(database_url: str) -> bool:
    """True when the URL names a SQLite file that does not exist yet: commands that only
    read the store must then not open it, or they would leave an empty database behind."""
    import sqlalchemy as sa

    try:
        url = sa.engine.make_url(database_url)
    except sa.exc.ArgumentError:
        return False
    database = url.database
    return (
        url.get_backend_name() == "sqlite"
        and bool(database)
        and database != ":memory:"
        and not Path(str(database)).exists()
    )


def progress_bar(label: str) -> Progress | None:
    """A rich progress bar (done, rate, ETA) on a terminal; nothing when output is piped."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    if not console.is_terminal:
        return None
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8} /s"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
