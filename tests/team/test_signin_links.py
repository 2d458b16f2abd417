"""Sign-in links: stored only as a hash, used once, dead after 15 minutes, bound to the
address they were mailed to."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from equip_mailer import store
from equip_mailer.team import signin_links

NOW = dt.datetime(2026, 3, 2, 9, 0)


def test_a_link_signs_in_its_own_address_once(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        token = signin_links.issue(conn, "ann@nhs.example", NOW)
        other = signin_links.issue(conn, "bob@nhs.example", NOW)
    with engine.begin() as conn:
        stored = conn.execute(sa.select(store.team_signin_links.c.token_hash)).scalars().all()
        assert token not in stored and signin_links.token_hash(token) in stored
        assert signin_links.usable(conn, token, NOW + dt.timedelta(minutes=1))
        assert signin_links.redeem(conn, token, NOW + dt.timedelta(minutes=1)) == "ann@nhs.example"
        assert signin_links.redeem(conn, token, NOW + dt.timedelta(minutes=2)) is None  # used
        assert not signin_links.usable(conn, token, NOW + dt.timedelta(minutes=2))
        assert signin_links.redeem(conn, other, NOW) == "bob@nhs.example"  # its own address


def test_a_link_expires_after_fifteen_minutes(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        token = signin_links.issue(conn, "ann@nhs.example", NOW)
        assert not signin_links.usable(conn, token, NOW + dt.timedelta(minutes=15))
        assert signin_links.redeem(conn, token, NOW + dt.timedelta(minutes=15)) is None
        assert signin_links.redeem(conn, token + "x", NOW) is None  # altered: unknown
        assert signin_links.redeem(conn, token, NOW + dt.timedelta(minutes=14)) is not None


def test_old_links_are_purged_when_new_ones_are_made(sqlite_url):
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        signin_links.issue(conn, "ann@nhs.example", NOW)
        signin_links.issue(conn, "ann@nhs.example", NOW + dt.timedelta(days=2))
        left = conn.execute(sa.select(sa.func.count()).select_from(store.team_signin_links))
        assert left.scalar() == 1
