"""Rate limits on asking for sign-in links, kept in the store so they hold across every
process and worker serving the pages (an in-memory counter would reset on restart and
multiply by the number of workers).

Fixed windows: a counter row per (limit, hashed IP or address, window). The IP and the
address are keyed hashes; neither is stored. Incrementing is one INSERT ... ON CONFLICT DO
UPDATE, atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import team_rate_limits


@dataclass(frozen=True)
class Limit:
    name: str
    most: int  # requests allowed per window
    window: dt.timedelta


# Enough for a person retyping an address or asking again; far too few to spray addresses.
SIGN_IN_PER_IP = Limit("sign-in-ip", 10, dt.timedelta(minutes=15))
SIGN_IN_PER_ADDRESS = Limit("sign-in-address", 3, dt.timedelta(minutes=15))


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"team-rate|{kind}|{value}".encode(), hashlib.sha256).hexdigest()[:32]


def allow(conn: Connection, limit: Limit, who: str, now: dt.datetime) -> bool:
    """Count one request by ``who`` (a keyed hash) against ``limit``; False once over it."""
    seconds = int(limit.window.total_seconds())
    window = int(now.replace(tzinfo=dt.UTC).timestamp()) // seconds
    bucket = f"{limit.name}:{who}:{window}"
    expires = dt.datetime.fromtimestamp((window + 1) * seconds, dt.UTC).replace(tzinfo=None)
    conn.execute(team_rate_limits.delete().where(team_rate_limits.c.expires_at < now))
    values = {"bucket": bucket, "count": 1, "expires_at": expires}
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(team_rate_limits).values(values)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["bucket"], set_={"count": team_rate_limits.c.count + 1}
        )
    )
    count = conn.execute(
        sa.select(team_rate_limits.c.count).where(team_rate_limits.c.bucket == bucket)
    ).scalar_one()
    return bool(count <= limit.most)
