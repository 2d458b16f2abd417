"""Opening the store: an engine tuned per backend, with the schema brought up to date.

SQLite file by default (WAL, so the tracking service can read while a send writes);
PostgreSQL through the same code when ``EQUIP_DATABASE_URL`` names it. Failures become one
plain sentence (``StoreError``), never a driver traceback.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from equip_mailer.errors import StoreError

from .migrations import migrate


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL and a busy timeout so the tracking
    service and a send can share the file."""
    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"EQUIP_DATABASE_URL is not a database URL: {url!r}",
            hint="Use e.g. sqlite:///equip-mailer.db or postgresql://host/db",
        ) from None
    if sa_url.drivername in ("postgres", "postgresql"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    if sa_url.get_backend_name() == "sqlite":
        folder = Path(sa_url.database or ".").parent
        if sa_url.database and sa_url.database != ":memory:" and not folder.is_dir():
            # Never made silently: a mistyped folder would be a new, empty store.
            raise StoreError(f"the folder {folder} for the SQLite database does not exist")
        engine = sa.create_engine(sa_url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Waiting (busy_timeout) rather than failing when the service and a send write at
            # once; WAL so readers never block. synchronous=FULL because with NORMAL a commit
            # can roll back after a power loss, and a claim or a "sent" lost that way would
            # mean a second copy.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = sa.create_engine(sa_url, pool_pre_ping=True)
    return engine


def open_store(url: str) -> Engine:
    """Engine with the schema up to date. Connection failures become one plain sentence."""
    engine = make_engine(url)
    try:
        migrate(engine)
    except sa.exc.DBAPIError as exc:  # unreachable server, not a database file, ...
        raise StoreError(
            f"cannot open the database {engine.url.render_as_string(hide_password=True)} "
            f"({exc.orig})"
        ) from None
    return engine
