"""Shared fixtures: an isolated environment, a real SQLite file, and PostgreSQL when reachable."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.link_secrets import LINK_SECRET

from equip_mailer.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "campaigns" / "2019-04-equip-training.yaml"
SHARED = ROOT.parent / "shared"
PG_ADMIN_URL = os.environ.get("EQUIP_TEST_PG_URL", "postgresql+psycopg://127.0.0.1:5432/test")

ENV_VARS = (
    "SENDGRID_API_KEY",
    "SENDGRID_API_HOST",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "EQUIP_DATABASE_URL",
    "EQUIP_LINK_SECRET",
    "EQUIP_PUBLIC_URL",
    "EQUIP_CONFIG",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """No test reads the developer's real config, key or database."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'equip.db'}"


def _pg_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not _pg_reachable():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    name = f"equip_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Run a store test against both backends (PostgreSQL skipped when not reachable)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'equip.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def settings(sqlite_url) -> Settings:
    return Settings(
        database_url=sqlite_url,
        link_secret=LINK_SECRET,
        public_url="http://127.0.0.1:8025",
    )


@pytest.fixture
def demo_path() -> Path:
    return DEMO


@pytest.fixture
def demo_project(tmp_path, monkeypatch) -> Path:
    """A copy of the demo project (spec, lists, templates) that a test may edit, with its
    own SQLite file, link secret and public URL; the working folder moves there."""
    import shutil

    for folder in ("campaigns", "lists", "templates"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    monkeypatch.setenv("EQUIP_DATABASE_URL", f"sqlite:///{tmp_path / 'equip.db'}")
    monkeypatch.setenv("EQUIP_LINK_SECRET", LINK_SECRET)
    monkeypatch.setenv("EQUIP_PUBLIC_URL", "https://equip.example.org")
    monkeypatch.chdir(tmp_path)
    return tmp_path
