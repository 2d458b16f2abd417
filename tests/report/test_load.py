"""Reading a campaign from the store: only its rows, compact types, the same on SQLite and
PostgreSQL, and a plain error naming the campaigns there are when the id is wrong.

The store state is the hand-computed one in tests/support/report_fixture.py.
"""

from __future__ import annotations

import pandas as pd
import pytest
from support.report_fixture import (
    CAMPAIGN,
    T0,
    build_hand_computed_store,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.load import ReportError, load_frames


def test_loader_reads_only_this_campaign_with_compact_types(frames):
    assert len(frames.ledger) == 12
    # 10 delivered + 1 bounce + 2 opens + 13 clicks (one of them from a test send) + 1
    # unsubscribe
    assert len(frames.events) == 27
    # the live registrations (the cancelled one left out), and every session's places
    assert len(frames.signups) == 6 and set(frames.signups["status"]) == {"confirmed", "waiting"}
    assert (frames.signups["ledger_id"] == -1).sum() == 2  # not on the lists
    assert frames.places["session"].tolist() == [
        "2019-06-27",
        "2019-09-10",
        "2019-06-13",
        "2019-07-09",
        "2019-09-17",
        "2019-10-15",
    ]
    assert frames.events["event"].dtype == "category"
    assert frames.events["link_id"].dtype == "int64"
    assert (frames.events.loc[frames.events["event"] == "delivered", "link_id"] == -1).all()
    assert frames.ledger["sent_at"].min() == pd.Timestamp(T0)


def test_loader_reads_postgresql_the_same_way(db_url, names):
    r = build_report(load_frames(build_hand_computed_store(db_url), CAMPAIGN), names)
    assert r.tables["funnel"].frame.iloc[-1].tolist() == [
        "All segments",
        11,
        10,
        1,
        1,
        5,
        0.5,
        3,
        1,
        0.4,
        3,
        2,
    ]
    assert r.tables["places"].frame["Signed up: place"].tolist() == [2, 0, 1, 1, 1, 2]
    assert r.tables["over_time"].frame["Period start (UTC)"].iloc[0] == pd.Timestamp(
        "2019-04-22 10:00"
    )


def test_unknown_campaign_id_names_the_known_ones(sqlite_url):
    engine = build_hand_computed_store(sqlite_url)
    with pytest.raises(ReportError) as err:
        load_frames(engine, "2020-01-nope")
    assert str(err.value) == "there is no campaign '2020-01-nope' in the database"
    assert err.value.hint == "Campaigns in the database: 2019-04-equip-training."
