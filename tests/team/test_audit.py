"""The audit log: entries newest first, per campaign when asked."""

from __future__ import annotations

import datetime as dt

from equip_mailer import store
from equip_mailer.team import audit

NOW = dt.datetime(2026, 3, 2, 9, 0)


def test_entries_come_back_newest_first_and_per_campaign(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        audit.record(conn, "ann@nhs.example", "signed in", "Signed in.", at=NOW)
        audit.record(
            conn,
            "ann@nhs.example",
            "marked attended",
            "Ann S. attended EQUIP Basics on 27 Jun 2019.",
            campaign_id="2019-04-equip-training",
            target=("registration", "42"),
            at=NOW + dt.timedelta(minutes=1),
        )
    with engine.connect() as conn:
        everything = audit.recent(conn)
        one = audit.recent(conn, campaign_id="2019-04-equip-training")
        row = conn.execute(store.team_audit.select().where(store.team_audit.c.target_id == "42"))
        assert row.one().target_kind == "registration"
    assert [e.action for e in everything] == ["marked attended", "signed in"]
    assert [e.summary for e in one] == ["Ann S. attended EQUIP Basics on 27 Jun 2019."]
    assert one[0].actor == "ann@nhs.example" and one[0].at == NOW + dt.timedelta(minutes=1)
