"""Which project a command works on: the folder holding ``campaigns/``, found the way git
finds its repository.

Relative places (the default SQLite store, the outbox, previews, reports) are resolved
against this root and never against the current folder, so ``send`` run from anywhere uses
the project's one store, and ``serve`` started from another folder does not quietly make an
empty one whose every link is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

PROJECT_FILE = "equip-mailer.toml"
CAMPAIGNS = "campaigns"


@dataclass(frozen=True)
class Project:
    """A project root (absolute) and its ``equip-mailer.toml`` when there is one."""

    root: Path
    file: Path | None = None

    def path(self, value: str | Path) -> Path:
        """``value`` as an absolute path, a relative one taken from the project root."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.root / p


def is_root(folder: Path) -> bool:
    """A folder is a project root when it holds ``campaigns/`` or ``equip-mailer.toml``."""
    return (folder / CAMPAIGNS).is_dir() or (folder / PROJECT_FILE).is_file()


def _project(root: Path) -> Project:
    file = root / PROJECT_FILE
    return Project(root=root, file=file if file.is_file() else None)


def find_project(start: Path | None = None) -> Project | None:
    """The nearest project root at or above ``start`` (default: the current folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if is_root(folder):
            return _project(folder)
    return None


def project_for_spec(spec_path: str | Path) -> Project:
    """The project a campaign spec belongs to: the nearest root at or above its folder
    (``campaigns/x.yaml`` -> the folder holding ``campaigns/``); a spec outside any project
    is its own project, rooted in its folder."""
    folder = Path(spec_path).resolve().parent
    return find_project(folder) or _project(folder)


def require_project(start: Path | None = None) -> Project:
    """The project at or above ``start``, or a plain error saying how to name one."""
    found = find_project(start)
    if found is None:
        here = (start or Path.cwd()).resolve()
        raise ConfigError(
            f"no equip-mailer project in {here} or any folder above it (a project is the "
            f"folder holding {CAMPAIGNS}/ or {PROJECT_FILE})",
            hint=f"Run the command inside the project folder (the one holding {CAMPAIGNS}/), "
            f"or, on a server without the campaigns, create {PROJECT_FILE} in the folder "
            "to work from (it may hold only database_url and public_url).",
        )
    return found
