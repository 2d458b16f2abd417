"""Report figures against a store state small enough to count by hand.

The state is described row by row in tests/support/report_fixture.py; every expected number
below is worked out from that table in the comment beside it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from support.report_fixture import (
    CAMPAIGN,
    RECIPIENTS,
    T0,
    at,
    build_hand_computed_store,
    create_campaign,
    insert_events,
    insert_links,
    insert_recipients,
)

from equip_mailer.compose.spec import load_campaign
from equip_mailer.report import compute as report


@pytest.fixture
def names(demo_path):
    return report.names_from_spec(load_campaign(demo_path, allow_past=True))


@pytest.fixture
def frames(sqlite_url):
    return report.load_frames(build_hand_computed_store(sqlite_url), CAMPAIGN)


def expect(table: report.Table, rows: list[list]) -> None:
    """The table's rows equal ``rows`` (rates compared to 1e-9, NaN equal to NaN)."""
    got = table.frame.astype("object").where(table.frame.notna(), None).values.tolist()
    assert len(got) == len(rows), f"{table.key}: {got}"
    for got_row, want_row in zip(got, rows):
        assert len(got_row) == len(want_row), f"{table.key}: {got_row}"
        for value, want in zip(got_row, want_row):
            if isinstance(want, float) and np.isnan(want):
                assert value is None or np.isnan(value), f"{table.key}: {got_row}"
            elif isinstance(want, float):
                assert value == pytest.approx(want, abs=1e-9), f"{table.key}: {got_row}"
            else:
                assert value == want, f"{table.key}: {got_row}"


def test_loader_reads_only_this_campaign_with_compact_types(frames):
    assert len(frames.ledger) == 12
    # 10 delivered + 1 bounce + 2 opens + 13 clicks (one of them from a test send)
    assert len(frames.events) == 26
    assert frames.events["event"].dtype == "category"
    assert frames.events["link_id"].dtype == "int64"
    assert (frames.events.loc[frames.events["event"] == "delivered", "link_id"] == -1).all()
    assert frames.ledger["sent_at"].min() == pd.Timestamp(T0)


def test_loader_reads_postgresql_the_same_way(db_url, names):
    r = report.build_report(report.load_frames(build_hand_computed_store(db_url), CAMPAIGN), names)
    assert r.tables["funnel"].frame.iloc[-1].tolist() == [
        "All segments",
        11,
        10,
        1,
        5,
        0.5,
        3,
        12,
        2,
    ]
    assert r.tables["over_time"].frame["Period start"].iloc[0] == pd.Timestamp("2019-04-22 10:00")


def test_funnel_per_segment_human_only(frames, names):
    r = report.build_report(frames, names)
    # sent: getting-started 1-5 = 5; ready-for-action 6-8 (9 failed) = 3; project-leads 10-12 = 3
    # delivered: getting-started loses 5 (bounce) = 4; others 3 and 3
    # human clickers: GS {1, 2} (3 clicked only as a machine); RFA {6} (7 machine only); PL {10, 11}
    # rate: 2/4, 1/3, 2/3; total 5/10
    # machine clicks: GS 2 (recipients 2 and 3), RFA 1 (7), PL 0
    # raw clicks: GS 1x3 + 2x2 + 3x1 = 6; RFA 6x2 + 7x1 = 3; PL 10x1 + 11x2 = 3; the
    #   ledger-id-0 test click counts nowhere
    # opens: 1 (GS) and 6 (RFA)
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 4, 1, 2, 2 / 4, 2, 6, 1],
            ["Basic QI knowledge", 3, 3, 0, 1, 1 / 3, 1, 3, 1],
            ["Running a QI project", 3, 3, 0, 2, 2 / 3, 0, 3, 0],
            ["All segments", 11, 10, 1, 5, 5 / 10, 3, 12, 2],
        ],
    )
    assert list(r.tables["funnel"].frame.columns)[4:6] == [
        "Unique human clickers",
        "Click-through rate",
    ]
    assert [(f.label, f.value) for f in r.headline] == [
        ("Sent", "11"),
        ("Delivered", "10"),
        ("Unique clickers", "5"),
        ("Click-through rate", "50.0%"),
        ("Clicks", "9"),
    ]  # 12 raw - 3 machine = 9 human
    assert any("1 event did not match" in n for n in r.notes)
    assert any("Opens are unreliable" in n for n in r.notes)


def test_all_clicks_counts_machines_in_the_headline(frames, names):
    r = report.build_report(frames, names, human_only=False)
    # clickers now include machine-only recipients 3 (GS) and 7 (RFA): 3/4, 2/3, 2/3; 7/10
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 4, 1, 3, 3 / 4, 2, 6, 1],
            ["Basic QI knowledge", 3, 3, 0, 2, 2 / 3, 1, 3, 1],
            ["Running a QI project", 3, 3, 0, 2, 2 / 3, 0, 3, 0],
            ["All segments", 11, 10, 1, 7, 7 / 10, 3, 12, 2],
        ],
    )
    assert "Unique clickers (incl. machine)" in r.tables["funnel"].frame.columns
    assert r.headline[4].value == "12"


def test_clicks_per_course_and_session(frames, names):
    r = report.build_report(frames, names)
    # Basics (links 1, 2): human 1x2 on link 1, 2x1 on link 2 -> 2 people, 3 clicks; machine 2, 3 on link 1
    # In Action (link 3): 6x2, 11x1 -> 2 people, 3 clicks; machine 7
    # Masterclass (link 4): 10, 11 -> 2 people, 2 clicks
    # about (link 5, no course): 1 -> 1 person, 1 click
    # rate = unique clickers / 10 delivered
    expect(
        r.tables["courses"],
        [
            ["EQUIP Basics", 2, 3, 0.2, 2],
            ["EQUIP in Action", 2, 3, 0.2, 1],
            ["Data masterclass", 2, 2, 0.2, 0],
            [report.OTHER_LINKS, 1, 1, 0.1, 0],
        ],
    )
    expect(
        r.tables["sessions"],
        [
            ["EQUIP Basics", "Thu 27 Jun 2019", 1, 2, 2],
            ["EQUIP Basics", "Tue 10 Sep 2019", 1, 1, 0],
            ["EQUIP in Action", "All sessions (one link)", 2, 3, 1],
            ["Data masterclass", "All sessions (one link)", 2, 2, 0],
        ],
    )


def test_clicks_per_practice_and_role_keep_recipient_counts_beside(frames, names):
    r = report.build_report(frames, names)
    # Practice A: 1, 2, 6, 10 all sent and delivered, all clicked as humans; clicks 3+1+2+1 = 7;
    #   machine: recipient 2's scanner click = 1
    # Practice B: 3, 4, 7, 11 sent and delivered; only 11 clicked (2 clicks); machine: 3 and 7
    # Practice C: 5 (bounced), 8, 12 sent (9 failed); delivered 8 and 12; no clicks
    expect(
        r.tables["practices"],
        [
            ["Practice A", 4, 4, 4, 7, 1.0, 1],
            ["Practice B", 4, 4, 1, 2, 0.25, 2],
            ["Practice C", 3, 2, 0, 0, 0.0, 0],
        ],
    )
    # GP: 1, 4, 6, 11 sent (9 failed); clickers 1, 6, 11 with 3+2+2 clicks
    # Practice manager: 5 (bounced) and 10: 1 delivered, 1 clicker -> 100 %
    # Nurse: 2, 7, 12; clicker 2 (1 click); machine clicks by 2 and 7
    # Pharmacist 8 and Receptionist 3 (one machine click): no human clicks
    expect(
        r.tables["roles"],
        [
            ["GP", 4, 4, 3, 7, 0.75, 0],
            ["Practice manager", 2, 1, 1, 1, 1.0, 0],
            ["Nurse", 3, 3, 1, 1, 1 / 3, 2],
            ["Pharmacist", 1, 1, 0, 0, 0.0, 0],
            ["Receptionist", 1, 1, 0, 0, 0.0, 1],
        ],
    )


def test_clicks_over_time_hourly_for_a_week_then_daily(frames, names):
    r = report.build_report(frames, names)
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


def test_machine_and_human_clicks_side_by_side(frames, names):
    r = report.build_report(frames, names)
    # 9 human clicks by 5 people; after-delivery: 2 and 3; ua:mimecast: 7 (most clicks first)
    expect(
        r.tables["machine"],
        [
            ["Human", 9, 9 / 12, 5],
            ["Machine: clicked within seconds of delivery", 2, 2 / 12, 2],
            ["Machine: mimecast", 1, 1 / 12, 1],
            ["All clicks", 12, 1.0, 7],
        ],
    )


def test_report_works_from_the_store_alone_with_ids_for_names(frames):
    r = report.build_report(frames)  # no spec: ids instead of names, sorted
    assert list(r.tables["funnel"].frame["Segment"]) == [
        "getting-started",
        "project-leads",
        "ready-for-action",
        "All segments",
    ]
    assert r.subject == "EQUIP QI training: three ways to start or grow your QI journey"
    assert list(r.tables["courses"].frame["Course"]) == [
        "data-masterclass",
        "equip-basics",
        "equip-in-action",
        report.OTHER_LINKS,
    ]


def test_sendgrid_clicks_are_ignored_when_the_tracker_counted_them(sqlite_url, names):
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:  # SendGrid saw recipient 4 click too (both trackers on)
        insert_events(conn, [("click", at(4, 22, 12), 4, None, None)], source="webhook")
    r = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    assert r.tables["funnel"].frame.iloc[-1].tolist()[4] == 5  # unchanged
    assert any("1 SendGrid click events were left out" in n for n in r.notes)


def test_sendgrid_clicks_count_when_they_are_the_only_clicks(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url)
    with engine.begin() as conn:  # link 3 matched by the tracking code; one not matched
        insert_events(
            conn,
            [("click", at(4, 22, 12), 6, 3, None), ("click", at(4, 22, 13), 7, None, None)],
            source="webhook",
        )
    r = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    # all 11 sent are delivered here (no bounce), so each rate is 1/11
    expect(
        r.tables["courses"],
        [
            ["EQUIP Basics", 0, 0, 0.0, 0],
            ["EQUIP in Action", 1, 1, 1 / 11, 0],
            ["Data masterclass", 0, 0, 0.0, 0],
            [report.UNKNOWN_LINK, 1, 1, 1 / 11, 0],
        ],
    )


def report_store_without_clicks(url, recipients=RECIPIENTS, delivered=True):
    from equip_mailer import store

    engine = store.open_store(url)
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn, recipients)
        if delivered:
            insert_events(
                conn,
                [
                    ("delivered", T0 + dt.timedelta(minutes=1), r[0], None, None)
                    for r in recipients
                    if r[4] == "sent"
                ],
            )
    return engine


# --- empty cases -----------------------------------------------------------------------


def test_campaign_with_no_clicks_yet_reads_as_zeros(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url)
    r = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 5, 0, 0, 0.0, 0, 0],
            ["Basic QI knowledge", 3, 3, 0, 0, 0.0, 0, 0],
            ["Running a QI project", 3, 3, 0, 0, 0.0, 0, 0],
            ["All segments", 11, 11, 0, 0, 0.0, 0, 0],
        ],
    )
    assert "Opens (unreliable)" not in r.tables["funnel"].frame.columns  # none tracked
    assert r.tables["over_time"].frame.empty
    assert len(r.series) == 1 and r.series["Human clicks"].sum() == 0
    assert any(n.startswith("No clicks yet") for n in r.notes)
    assert r.headline[3].value == "0.0%"


def test_segment_with_no_recipients_is_listed_with_a_dash_for_its_rate(sqlite_url, names):
    no_leads = [r for r in RECIPIENTS if r[1] != "project-leads"]
    engine = report_store_without_clicks(sqlite_url, no_leads)
    r = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    row = r.tables["funnel"].frame.iloc[2].tolist()
    assert row[:5] == ["Running a QI project", 0, 0, 0, 0]
    assert np.isnan(row[5])


def test_outbox_send_without_delivery_events_falls_back_to_sent(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url, delivered=False)
    r = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    assert r.tables["funnel"].frame.iloc[-1].tolist()[1:3] == [11, 11]
    assert any("SendGrid reported no deliveries" in n for n in r.notes)
    assert "no delivery data" in r.headline[1].detail


def test_campaign_never_sent_still_gives_a_report(names):
    r = report.build_report(report.empty_frames(CAMPAIGN, "Subject"), names)
    assert r.sent is False and r.date_range == "not sent yet"
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 0, 0, 0, 0, np.nan, 0, 0],
            ["Basic QI knowledge", 0, 0, 0, 0, np.nan, 0, 0],
            ["Running a QI project", 0, 0, 0, 0, np.nan, 0, 0],
            ["All segments", 0, 0, 0, 0, np.nan, 0, 0],
        ],
    )
    # sessions come from the spec: Basics has a link per date, the others one course link
    assert r.tables["sessions"].frame["Session"].tolist() == [
        "Thu 27 Jun 2019",
        "Tue 10 Sep 2019",
        "All sessions (one link)",
        "All sessions (one link)",
    ]
    assert r.tables["sessions"].frame["Total clicks"].sum() == 0
    assert r.headline[3].value == "–"
    assert any("not been sent yet" in n for n in r.notes)


def test_unknown_campaign_id_names_the_known_ones(sqlite_url):
    engine = build_hand_computed_store(sqlite_url)
    with pytest.raises(report.ReportError) as err:
        report.load_frames(engine, "2020-01-nope")
    assert str(err.value) == "there is no campaign '2020-01-nope' in the database"
    assert err.value.hint == "Campaigns in the database: 2019-04-equip-training."


def test_compare_sets_quarters_side_by_side(sqlite_url, names):
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:
        # a second quarter: recipients 101-103 in two segments, one human click on Basics
        create_campaign(conn, "2019-07-equip", "Summer menu")
        insert_links(conn, "2019-07-equip", id_offset=100)
        insert_recipients(
            conn,
            [
                (1, "getting-started", "Practice A", "GP", "sent"),
                (2, "getting-started", "Practice B", "Nurse", "sent"),
                (3, "ready-for-action", "Practice C", "GP", "sent"),
            ],
            campaign_id="2019-07-equip",
            id_offset=100,
        )
        insert_events(conn, [("click", at(7, 1, 9), 101, 101, None)], campaign_id="2019-07-equip")
    first = report.build_report(report.load_frames(engine, CAMPAIGN), names)
    second = report.build_report(report.load_frames(engine, "2019-07-equip"), names)
    tables = report.compare([first, second])
    # second quarter: no delivered events -> delivered = sent (2 and 1), 1 clicker of 3
    expect(
        tables["summary"],
        [
            [CAMPAIGN, first.subject, "22 Apr 2019 to 2 May 2019", 11, 10, 5, 0.5],
            ["2019-07-equip", names.subject, "22 Apr 2019 to 1 Jul 2019", 3, 3, 1, 1 / 3],
        ],
    )
    expect(
        tables["segments"],
        [
            ["New to QI", 4, 2, 0.5, 2, 1, 0.5],
            ["Basic QI knowledge", 3, 1, 1 / 3, 1, 0, 0.0],
            ["Running a QI project", 3, 2, 2 / 3, 0, 0, np.nan],
        ],
    )
    # courses: rate = clickers / the campaign's delivered (10, then 3)
    expect(
        tables["courses"],
        [
            ["EQUIP Basics", 2, 3, 0.2, 1, 1, 1 / 3],
            ["EQUIP in Action", 2, 3, 0.2, 0, 0, 0.0],
            ["Data masterclass", 2, 2, 0.2, 0, 0, 0.0],
            [report.OTHER_LINKS, 1, 1, 0.1, None, None, np.nan],
        ],
    )
    assert list(tables["segments"].frame.columns)[1:4] == [
        f"{CAMPAIGN} Delivered",
        f"{CAMPAIGN} Clickers",
        f"{CAMPAIGN} CTR",
    ]
