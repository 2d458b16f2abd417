"""Single-use sign-in links: mailed to a team address, valid for 15 minutes, used once.

Only a hash of the token is stored, so the database cannot be mined for working links. A
link is bound to the address it was mailed to: using it signs in as that address and no
other, and only while the address is still on the team. Using it is a conditional UPDATE
(unused and unexpired, in one statement), so two browsers racing with the same link cannot
both win.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import team_signin_links

LIFETIME = dt.timedelta(minutes=15)
KEEP_USED = dt.timedelta(days=1)  # used and expired links are deleted after this


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue(conn: Connection, email_key: str, now: dt.datetime) -> str:
    """A new link token for ``email_key`` (the caller mails it); old dead links are purged."""
    conn.execute(team_signin_links.delete().where(team_signin_links.c.expires_at < now - KEEP_USED))
    token = secrets.token_urlsafe(32)
    conn.execute(
        team_signin_links.insert().values(
            token_hash=token_hash(token),
            email_key=email_key,
            created_at=now,
            expires_at=now + LIFETIME,
        )
    )
    return token


def _usable(token: str, now: dt.datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        team_signin_links.c.token_hash == token_hash(token),
        team_signin_links.c.used_at.is_(None),
        team_signin_links.c.expires_at > now,
    )


def usable(conn: Connection, token: str, now: dt.datetime) -> bool:
    """Whether ``token`` would still sign someone in (for the page before the button)."""
    return (
        conn.execute(sa.select(team_signin_links.c.email_key).where(_usable(token, now))).first()
        is not None
    )


def redeem(conn: Connection, token: str, now: dt.datetime) -> str | None:
    """Use the link: the address it was mailed to, or None if it is unknown, used or expired."""
    if len(token) > 100:
        return None
    used = conn.execute(team_signin_links.update().where(_usable(token, now)).values(used_at=now))
    if used.rowcount != 1:
        return None
    return conn.execute(
        sa.select(team_signin_links.c.email_key).where(
            team_signin_links.c.token_hash == token_hash(token)
        )
    ).scalar_one()
