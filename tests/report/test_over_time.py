"""When the clicks came: hourly for a week, then daily, against the hand-computed store in
tests/support/report_fixture.py.
"""

from __future__ import annotations

import pandas as pd
from support.report_fixture import (
    expect,
)

from equip_mailer.report.assemble import build_report


def test_clicks_over_time_hourly_for_a_week_then_daily(frames, names):
    r = build_report(frames, names)
    # 22 Apr 10:00 hour: humans 10:30, 10:45; machines 10:00:30, 10:00:40, 10:01
    # 22 Apr 14:00: 1; 23 Apr 09:00: 1; 24 Apr 08:00: 2 (08:05, 08:06)
    # from 29 Apr (7 days after the send date) daily: 30 Apr 1; 2 May 2
    expect(
        r.tables["over_time"],
        [
            [pd.Timestamp("2019-04-22 10:00"), "hour", 2, 3],
            [pd.Timestamp("2019-04-22 14:00"), "hour", 1, 0],
            [pd.Timestamp("2019-04-23 09:00"), "hour", 1, 0],
            [pd.Timestamp("2019-04-24 08:00"), "hour", 2, 0],
            [pd.Timestamp("2019-04-30 00:00"), "day", 1, 0],
            [pd.Timestamp("2019-05-02 00:00"), "day", 2, 0],
        ],
    )
    # per calendar day: the 22nd has 10:30, 10:45 and 14:20 (people 1 and 2) and the three
    # machine clicks; 23rd person 1; 24th person 6 twice; 30th person 10; 2 May person 11 twice
    expect(
        r.tables["days"],
        [
            [pd.Timestamp("2019-04-22"), 2, 3, 3],
            [pd.Timestamp("2019-04-23"), 1, 1, 0],
            [pd.Timestamp("2019-04-24"), 1, 2, 0],
            [pd.Timestamp("2019-04-30"), 1, 1, 0],
            [pd.Timestamp("2019-05-02"), 1, 2, 0],
        ],
    )
    series = r.series
    # the full series keeps empty periods: 10:00 on the 22nd to 23:00 on the 28th is 158
    # hours, then 29 Apr, 30 Apr, 1 May, 2 May
    assert len(series) == 158 + 4
    assert (series["Period"] == "hour").sum() == 158
    assert series["Human clicks"].sum() == 9 and series["Machine clicks"].sum() == 3


def test_clicks_that_all_fell_in_one_hour_get_a_whole_quiet_day_around_them(sqlite_url, names):
    from support.report_fixture import CAMPAIGN, at, insert_events, report_store_without_clicks

    from equip_mailer.report.load import load_frames

    engine = report_store_without_clicks(sqlite_url)
    with engine.begin() as conn:
        insert_events(conn, [("click", at(4, 22, 10, m), 1, 1, None) for m in (5, 9, 30)])
    series = build_report(load_frames(engine, CAMPAIGN), names).series
    assert len(series) == 24 and series["Human clicks"].tolist() == [3] + [0] * 23
