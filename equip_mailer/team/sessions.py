"""Server-side sessions for signed-in team members, so signing out really ends one.

The cookie holds a random id and the store its SHA-256: a stolen cookie stops working the
moment its session is revoked (sign-out) or expires (12 hours), and a copy of the database
holds no usable cookie. The cookie is HttpOnly and SameSite=Lax; when the public URL is
https it is also Secure and takes the ``__Host-`` prefix, which browsers only accept from a
secure origin, for the whole host and no subdomain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from starlette.responses import Response

from equip_mailer.store import team_sessions

LIFETIME = dt.timedelta(hours=12)
COOKIE = "equip_team"
KEEP_ENDED = dt.timedelta(days=30)  # ended sessions are deleted after this


@dataclass(frozen=True)
class Session:
    id_hash: str
    email_key: str
    expires_at: dt.datetime


def cookie_name(secure: bool) -> str:
    return f"__Host-{COOKIE}" if secure else COOKIE


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start(conn: Connection, email_key: str, now: dt.datetime) -> tuple[str, Session]:
    """A new session for ``email_key``: the cookie value (never stored) and its row."""
    conn.execute(team_sessions.delete().where(team_sessions.c.expires_at < now - KEEP_ENDED))
    session_id = secrets.token_urlsafe(32)
    session = Session(_hash(session_id), email_key, now + LIFETIME)
    conn.execute(
        team_sessions.insert().values(
            id_hash=session.id_hash,
            email_key=email_key,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
    return session_id, session


def find(conn: Connection, session_id: str | None, now: dt.datetime) -> Session | None:
    """The live session this cookie value names, or None (unknown, revoked or expired)."""
    if not session_id or len(session_id) > 100:
        return None
    row = conn.execute(
        sa.select(team_sessions.c.email_key, team_sessions.c.expires_at).where(
            team_sessions.c.id_hash == _hash(session_id),
            team_sessions.c.revoked_at.is_(None),
            team_sessions.c.expires_at > now,
        )
    ).first()
    return Session(_hash(session_id), row.email_key, row.expires_at) if row else None


def revoke(conn: Connection, session: Session, now: dt.datetime) -> None:
    conn.execute(
        team_sessions.update()
        .where(team_sessions.c.id_hash == session.id_hash, team_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def set_cookie(response: Response, session_id: str, secure: bool) -> None:
    response.set_cookie(
        cookie_name(secure),
        session_id,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="lax",
    )


def clear_cookie(response: Response, secure: bool) -> None:
    response.delete_cookie(
        cookie_name(secure), path="/", secure=secure, httponly=True, samesite="lax"
    )
