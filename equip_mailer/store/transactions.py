"""Write transactions that must not interleave: assigning the last places on a course.

A plain SQLite transaction takes the write lock only at its first write, so two of them can
both read "one place left" and then one fails (or, worse, both write). ``immediate`` starts
SQLite transactions with ``BEGIN IMMEDIATE``, which takes the write lock up front (waiting
in the busy handler, never failing at once), across processes too. PostgreSQL runs a
normal transaction in which ``lock_row`` takes the row lock (``SELECT ... FOR UPDATE``) that
every change of the same thing waits for; each later statement sees what the previous
holder committed (READ COMMITTED).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine


@contextlib.contextmanager
def immediate(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits on success and rolls back on any error, holding SQLite's
    write lock from its start (PostgreSQL: call ``lock_row`` first)."""
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        # pysqlite would open a deferred transaction itself; in AUTOCOMMIT mode it leaves the
        # BEGIN to us. The pool resets the isolation level when the connection returns.
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.exec_driver_sql("ROLLBACK")
            raise
        conn.exec_driver_sql("COMMIT")


@functools.cache
def _lock_query(table: sa.Table, for_update: bool) -> sa.Select:
    # Built once per table: every sign-up takes this lock.
    query = sa.select(table.c.id).where(table.c.id == sa.bindparam("row_id"))
    return query.with_for_update() if for_update else query


def lock_row(conn: Connection, table: sa.Table, row_id: int) -> bool:
    """Lock one row until the transaction ends (PostgreSQL; SQLite's ``immediate`` already
    holds the database). False if there is no such row."""
    query = _lock_query(table, conn.dialect.name != "sqlite")
    return conn.execute(query, {"row_id": row_id}).first() is not None
