"""Server-side sessions: the cookie value is never stored, a revoked or expired session is
gone, and the cookie is HttpOnly, SameSite=Lax, and Secure with __Host- on https."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from starlette.responses import Response

from equip_mailer import store
from equip_mailer.team import sessions

NOW = dt.datetime(2026, 3, 2, 9, 0)


def test_a_session_lives_twelve_hours_until_revoked(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        cookie, session = sessions.start(conn, "ann@nhs.example", NOW)
        assert cookie not in conn.execute(sa.select(store.team_sessions.c.id_hash)).scalars().all()
        found = sessions.find(conn, cookie, NOW + dt.timedelta(hours=11, minutes=59))
        assert found == session and found.email_key == "ann@nhs.example"
        assert sessions.find(conn, cookie, NOW + dt.timedelta(hours=12)) is None
        assert sessions.find(conn, cookie[:-1], NOW) is None
        assert sessions.find(conn, None, NOW) is None
        sessions.revoke(conn, session, NOW + dt.timedelta(minutes=5))
        assert sessions.find(conn, cookie, NOW + dt.timedelta(minutes=6)) is None


def _set_cookie(secure: bool) -> str:
    response = Response()
    sessions.set_cookie(response, "abc", secure)
    return response.headers["set-cookie"]


def test_the_cookie_flags():
    plain = _set_cookie(secure=False)
    assert plain.startswith("equip_team=abc;")
    assert "HttpOnly" in plain and "SameSite=lax" in plain and "Secure" not in plain
    assert "Max-Age=43200" in plain and "Path=/" in plain
    https = _set_cookie(secure=True)
    assert https.startswith("__Host-equip_team=abc;") and "Secure" in https
    assert "Domain" not in https
