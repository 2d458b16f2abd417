"""How often the open sign-up page mails a link: per address and per (hashed) IP.

The open page sends mail to any address typed into it, so it is limited, from the store so
that every worker and server sharing the database counts the same: at most
``PER_ADDRESS`` links to one address a day (nobody's inbox is flooded by someone else) and
``PER_IP`` an hour from one IP (as a keyed hash; the IP itself is never stored).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import signup_invites

PER_ADDRESS = 3  # per day
PER_IP = 10  # per hour


def _count(conn: Connection, column: sa.Column, value: str, since: dt.datetime) -> int:
    return conn.execute(
        sa.select(sa.func.count()).where(column == value, signup_invites.c.created_at >= since)
    ).scalar_one()


def allowed(conn: Connection, email: str, ip_hash: str | None, now: dt.datetime) -> bool:
    """Whether one more link may be mailed now."""
    key = email.strip().lower()
    if _count(conn, signup_invites.c.email_key, key, now - dt.timedelta(days=1)) >= PER_ADDRESS:
        return False
    if (
        ip_hash
        and _count(conn, signup_invites.c.ip_hash, ip_hash, now - dt.timedelta(hours=1)) >= PER_IP
    ):
        return False
    return True
