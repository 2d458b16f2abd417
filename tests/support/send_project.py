"""The demo project as the send, status and cancel tests drive it: the command run with
click's CliRunner, the ledger read back from its SQLite file, the spec given a schedule."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner

from equip_mailer import synthetic
from equip_mailer.cli import main
from equip_mailer.store import ledger, open_store

CID = "2019-04-equip-training"
ROOT = Path(__file__).resolve().parents[2]
KEY = "SG.cli-test-key"


def spec(project: Path) -> str:
    return str(project / "campaigns" / f"{CID}.yaml")


def run(*args, input: str | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def outbox_files(project: Path) -> list[Path]:
    folder = project / "outbox" / CID
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def ledger_states(project: Path) -> dict[str, int]:
    engine = open_store(f"sqlite:///{project / 'equip.db'}")
    with engine.connect() as conn:
        out = dict(
            conn.execute(sa.select(ledger.c.state, sa.func.count()).group_by(ledger.c.state)).all()
        )
    engine.dispose()
    return out


def schedule(project: Path, when: dt.datetime) -> None:
    path = Path(spec(project))
    text = re.sub(
        r"sendgrid:\n(  send_at: .*\n)?",
        f"sendgrid:\n  send_at: {when.isoformat()}\n",
        path.read_text(encoding="utf-8"),
        count=1,
    )
    path.write_text(text, encoding="utf-8")


def demo_copy(root: Path, staff: int = 0, seed: int = 0) -> Path:
    """The demo's campaigns, lists and templates copied under ``root``; with ``staff``, its
    practice-staff list replaced by that many synthetic readers (the same export header)."""
    for folder in ("campaigns", "lists", "templates"):
        shutil.copytree(ROOT / folder, root / folder)
    if staff:
        synthetic.write_csv(
            root / "lists" / "practice-staff.csv",
            synthetic.people(staff, kind="staff", seed=seed),
            header=synthetic.STAFF_EXPORT_HEADER,
        )
    return root
