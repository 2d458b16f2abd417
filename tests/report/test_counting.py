"""The counting rules every table shares: which clicks count when both SendGrid and our
tracker saw them, and what 'delivered' means when SendGrid reported no deliveries.

The store state is the hand-computed one in tests/support/report_fixture.py.
"""

from __future__ import annotations

import numpy as np
from support.report_fixture import (
    CAMPAIGN,
    at,
    build_hand_computed_store,
    expect,
    insert_events,
    report_store_without_clicks,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.counting import ledger_positions
from equip_mailer.report.courses import UNKNOWN_LINK
from equip_mailer.report.load import load_frames


def test_sendgrid_clicks_are_ignored_when_the_tracker_counted_them(sqlite_url, names):
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:  # SendGrid saw recipient 4 click too (both trackers on)
        insert_events(conn, [("click", at(4, 22, 12), 4, None, None)], source="webhook")
    r = build_report(load_frames(engine, CAMPAIGN), names)
    assert r.tables["funnel"].frame["Unique human clickers"].iloc[-1] == 5  # unchanged
    assert any("1 SendGrid click events were left out" in n for n in r.notes)


def test_sendgrid_clicks_count_when_they_are_the_only_clicks(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url)
    with engine.begin() as conn:  # link 3 matched by the tracking code; one not matched
        insert_events(
            conn,
            [("click", at(4, 22, 12), 6, 3, None), ("click", at(4, 22, 13), 7, None, None)],
            source="webhook",
        )
    r = build_report(load_frames(engine, CAMPAIGN), names)
    # all 11 sent are delivered here (no bounce); Basics is offered to all 11, In Action to
    # the 6 with basic QI or a project, the masterclass to the 3 with a project
    expect(
        r.tables["courses"],
        [
            ["EQUIP Basics", 11, 0, 0.0, 0, 0, 0, 0, None, np.nan],
            ["EQUIP in Action", 6, 1, 1 / 6, 1, 0, 0, 0, None, np.nan],
            ["Data masterclass", 3, 0, 0.0, 0, 0, 0, 0, None, np.nan],
            [UNKNOWN_LINK, None, 1, np.nan, 1, 0, None, None, None, np.nan],
        ],
    )


def test_outbox_send_without_delivery_events_falls_back_to_sent(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url, delivered=False)
    r = build_report(load_frames(engine, CAMPAIGN), names)
    assert r.tables["funnel"].frame.iloc[-1].tolist()[1:3] == [11, 11]
    assert any("SendGrid reported no deliveries" in n for n in r.notes)
    assert "no delivery data" in r.headline[1].detail


def test_ledger_positions_finds_rows_by_id_with_or_without_a_lookup_array():
    ids = np.array([10, 11, 12])
    wanted = np.array([12, 0, 10, -1, 99])  # 0: a test send; -1: no ledger id
    assert ledger_positions(ids, wanted).tolist() == [2, -1, 0, -1, -1]
    far = 60_000_000  # ids this sparse would make a huge lookup array, so they are hashed
    assert ledger_positions(ids + far, wanted + far).tolist() == [2, -1, 0, -1, -1]
    assert ledger_positions(np.array([], dtype=np.int64), wanted).tolist() == [-1] * 5
