"""The tracking service sends what its pages enqueue, in the background, and on start-up
settles what a stopped process left half sent."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from support.link_secrets import LINK_SECRET
from support.service import running_app

from equip_mailer import store
from equip_mailer.config import Settings
from equip_mailer.send.notices import Notice, enqueue
from equip_mailer.track.app import create_app


def notice(n: int) -> Notice:
    return Notice(
        key=f"team-sign-in:{n}",
        kind="team-sign-in",
        to_email=f"trainer{n}@nhs.example",
        from_email="equip@equip.example.org",
        subject="Your sign-in link",
        text="Open this link within 15 minutes.\n",
    )


def test_the_service_sends_enqueued_notices_and_recovers_half_sent_ones(sqlite_url, tmp_path):
    settings = Settings(database_url=sqlite_url, link_secret=LINK_SECRET)
    engine = store.open_store(sqlite_url)
    with engine.begin() as conn:
        enqueue(conn, notice(1))
        enqueue(conn, notice(2))
        # notice 2 was being written by a process that died before the file appeared
        conn.execute(
            store.notices.update()
            .where(store.notices.c.key == "team-sign-in:2")
            .values(state="sending", claimed_by="gone:1:1", claimed_at=dt.datetime(2019, 1, 1))
        )
    app = create_app(settings, engine, notices_outbox=tmp_path / "outbox")
    with running_app(app):  # uvicorn runs the lifespan: the worker starts, recovers, sends
        worker = app.state.service.notices
        assert worker.drain(10)
        with engine.begin() as conn:
            enqueue(conn, notice(3))
        assert worker.drain(10)
        files = sorted(p.name for p in (tmp_path / "outbox" / "notices").glob("*.eml"))
    assert files == [
        "000001-team-sign-in.eml",
        "000002-team-sign-in.eml",
        "000003-team-sign-in.eml",
    ]
    with engine.connect() as conn:
        assert set(conn.execute(sa.select(store.notices.c.state)).scalars()) == {"sent"}
