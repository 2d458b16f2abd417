"""How often the open sign-up page mails a link: per address and per (hashed) IP.

The open page sends mail to any address typed into it, so it is limited, from the store so
that every worker and server sharing the database counts the same: at most
``PER_ADDRESS`` links to one address a day (nobody's inbox is flooded by someone else) and
``PER_IP`` an hour from one IP (as a keyed hash; the IP itself is never stored).

The per-IP figure is generous on purpose: NHS practices reach the internet through HSCN's
shared gateways, so a whole practice (or more) shares one IP, and a "Share this course"
mail forwarded round a practice brings its staff to the page within the same hour. Each
answer says which limit it met, since their waits differ (a day against an hour).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import signup_invites

PER_ADDRESS = 3  # per day
PER_IP = 30  # per hour


def _count(conn: Connection, column: sa.Column, value: str, since: dt.datetime) -> int:
    return conn.execute(
        sa.select(sa.func.count()).where(column == value, signup_invites.c.created_at >= since)
    ).scalar_one()


def refused(
    conn: Connection, email: str, ip_hash: str | None, now: dt.datetime
) -> Literal["address", "network"] | None:
    """Which limit one more link would pass ("address": that inbox has had its links for
    the day; "network": too many from where the request came, this hour); None: mail it."""
    key = email.strip().lower()
    if _count(conn, signup_invites.c.email_key, key, now - dt.timedelta(days=1)) >= PER_ADDRESS:
        return "address"
    if (
        ip_hash
        and _count(conn, signup_invites.c.ip_hash, ip_hash, now - dt.timedelta(hours=1)) >= PER_IP
    ):
        return "network"
    return None
