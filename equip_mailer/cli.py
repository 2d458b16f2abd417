"""The ``equip-mailer`` command: thin click commands over the library.

Every expected failure is an EquipError, printed as one plain sentence (plus a hint), never
a traceback. Real work lives in the modules named in each command.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console

from .config import load_settings
from .errors import EquipError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def friendly_errors(fn):
    """Turn EquipError (and a few OS errors) into a plain message and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EquipError as exc:
            err_console.print(f"[bold red]Error:[/] {exc}", markup=True, soft_wrap=True)
            if exc.hint:
                err_console.print(f"Hint: {exc.hint}", soft_wrap=True)
            sys.exit(1)
        except PermissionError as exc:
            err_console.print(f"Error: permission denied: {exc.filename}")
            sys.exit(1)
        except KeyboardInterrupt:
            err_console.print("Stopped. Run the same command again to carry on.")
            sys.exit(130)
    return wrapper


campaign_arg = click.argument("campaign", type=click.Path(dir_okay=False, path_type=Path))
allow_past_opt = click.option("--allow-past", is_flag=True,
                              help="Accept sessions dated before today (needed for the 2019 demo).")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="equip-mailer")
def main() -> None:
    """EQUIP course-menu newsletters: check, preview, send, track and report.

    \b
    Example:
      equip-mailer check campaigns/2019-04-equip-training.yaml --allow-past
    """


def settings():
    return load_settings()
