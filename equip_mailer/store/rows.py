"""Small writes every stage needs: idempotent inserts, suppressions, the campaign row.

Times are naive UTC everywhere (SQLite keeps no zone): ``utcnow`` is the one clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.errors import StoreError

from .schema import campaigns, suppressions


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@functools.cache
def _sqlite_insert_ignore(table: sa.Table, index_elements: tuple[str, ...]) -> sa.Insert:
    # Built once per table: a statement and its cache key cost more to make than one row
    # takes to insert (each sign-up's mail is one).
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=list(index_elements))


def insert_ignore(
    conn: Connection, table: sa.Table, rows: Iterable[dict], index_elements: list[str]
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns rows inserted."""
    rows = list(rows)
    if not rows:
        return 0
    name = conn.dialect.name
    if name == "sqlite":
        # executemany of one cached statement: compiling a 1,000-row multi-VALUES insert
        # costs more than running it. sqlite3 sums rowcount over executemany.
        return conn.execute(_sqlite_insert_ignore(table, tuple(index_elements)), rows).rowcount
    if name != "postgresql":  # pragma: no cover - only the two supported backends
        raise StoreError(f"unsupported database backend {name}")
    from sqlalchemy.dialects.postgresql import insert

    # One multi-VALUES statement per chunk, counting RETURNING rows: rowcount is -1 on psycopg.
    chunk = max(1, 30000 // max(1, len(rows[0])))
    inserted = 0
    for start in range(0, len(rows), chunk):
        stmt = (
            insert(table)
            .values(rows[start : start + chunk])
            .on_conflict_do_nothing(index_elements=index_elements)
            .returning(table.c[index_elements[0]])
        )
        inserted += len(conn.execute(stmt).all())
    return inserted


def suppressed_keys(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(suppressions.c.email_key))}


def add_suppression(
    conn: Connection,
    email: str,
    reason: str,
    source: str | None = None,
    campaign_id: str | None = None,
) -> bool:
    """Idempotent: returns True if the address was not suppressed before."""
    return (
        insert_ignore(
            conn,
            suppressions,
            [
                {
                    "email_key": email.strip().lower(),
                    "email": email.strip(),
                    "reason": reason,
                    "source": source,
                    "campaign_id": campaign_id,
                    "created_at": utcnow(),
                }
            ],
            ["email_key"],
        )
        > 0
    )


def ensure_campaign(
    conn: Connection,
    campaign_id: str,
    subject: str,
    spec_path: str | None = None,
    spec_hash: str | None = None,
) -> None:
    """Create the campaign row, or refresh its subject/spec on a later run."""
    now = utcnow()
    found = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
    if found:
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == campaign_id)
            .values(subject=subject, spec_path=spec_path, spec_hash=spec_hash, updated_at=now)
        )
    else:
        conn.execute(
            campaigns.insert().values(
                id=campaign_id,
                subject=subject,
                spec_path=spec_path,
                spec_hash=spec_hash,
                created_at=now,
                updated_at=now,
            )
        )
