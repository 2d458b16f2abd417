"""Whole reports: a campaign with no clicks, one never sent, and quarters compared side by
side. The store states are built in tests/support/report_fixture.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from support.report_fixture import (
    CAMPAIGN,
    at,
    build_hand_computed_store,
    create_campaign,
    expect,
    insert_events,
    insert_links,
    insert_recipients,
    report_store_without_clicks,
)

from equip_mailer.report.assemble import (
    SIGNED_UP_ALL,
    SIGNED_UP_RECIPIENTS,
    build_report,
    compare,
)
from equip_mailer.report.courses import OTHER_LINKS
from equip_mailer.report.load import empty_frames, load_frames


def test_campaign_with_no_clicks_yet_reads_as_zeros(sqlite_url, names):
    engine = report_store_without_clicks(sqlite_url)
    r = build_report(load_frames(engine, CAMPAIGN), names)
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 5, 0, 0, 0, 0.0, 0, 0, 0.0, 0],
            ["Basic QI knowledge", 3, 3, 0, 0, 0, 0.0, 0, 0, 0.0, 0],
            ["Running a QI project", 3, 3, 0, 0, 0, 0.0, 0, 0, 0.0, 0],
            ["All segments", 11, 11, 0, 0, 0, 0.0, 0, 0, 0.0, 0],
        ],
    )
    assert "Opens (unreliable)" not in r.tables["funnel"].frame.columns  # none tracked
    assert r.tables["over_time"].frame.empty
    assert len(r.series) == 24 and r.series["Human clicks"].sum() == 0  # a quiet first day
    assert any(n.startswith("No clicks yet") for n in r.notes)
    assert r.headline[3].value == "0.0%"


def test_campaign_never_sent_still_gives_a_report(names):
    r = build_report(empty_frames(CAMPAIGN, "Subject"), names)
    assert r.sent is False and r.date_range == "not sent yet"
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 0, 0, 0, 0, 0, np.nan, 0, 0, np.nan, 0],
            ["Basic QI knowledge", 0, 0, 0, 0, 0, np.nan, 0, 0, np.nan, 0],
            ["Running a QI project", 0, 0, 0, 0, 0, np.nan, 0, 0, np.nan, 0],
            ["All segments", 0, 0, 0, 0, 0, np.nan, 0, 0, np.nan, 0],
        ],
    )
    # sessions come from the spec: every course has one sign-up link
    assert r.tables["sessions"].frame["Session"].tolist() == ["All sessions (one link)"] * 3
    assert r.tables["sessions"].frame["Total clicks"].sum() == 0
    assert r.headline[3].value == "–"
    assert any("not been sent yet" in n for n in r.notes)


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
    first = build_report(load_frames(engine, CAMPAIGN), names)
    second = build_report(load_frames(engine, "2019-07-equip"), names)
    tables = compare([first, second])
    # second quarter: no delivered events -> delivered = sent (2 and 1), 1 clicker of 3
    expect(
        tables["summary"],
        [
            [CAMPAIGN, first.subject, "22 Apr 2019 to 2 May 2019", 11, 10, 5, 0.5, 6],
            ["2019-07-equip", names.subject, "22 Apr 2019 to 1 Jul 2019", 3, 3, 1, 1 / 3, 0],
        ],
    )
    expect(
        tables["segments"],
        [
            ["New to QI", 4, 2, 0.5, 2, 2, 1, 0.5, 0],
            ["Basic QI knowledge", 3, 1, 1 / 3, 1, 1, 0, 0.0, 0],
            ["Running a QI project", 3, 2, 2 / 3, 1, 0, 0, np.nan, 0],
        ],
    )
    # courses: rate = clickers / the delivered readers offered the course: Basics 10, then
    #   3; In Action 6, then 1 (the one ready for action); the masterclass 3, then none
    expect(
        tables["courses"],
        [
            ["EQUIP Basics", 2, 3, 0.2, 3, 1, 1, 1 / 3, 0],
            ["EQUIP in Action", 2, 3, 2 / 6, 1, 0, 0, 0.0, 0],
            ["Data masterclass", 2, 2, 2 / 3, 2, 0, 0, np.nan, 0],
            [OTHER_LINKS, 1, 1, np.nan, None, None, None, np.nan, None],  # no sign-ups: a dash
        ],
    )
    assert list(tables["segments"].frame.columns)[1:4] == [
        f"{CAMPAIGN} Delivered",
        f"{CAMPAIGN} Clickers",
        f"{CAMPAIGN} CTR",
    ]


def test_compare_says_whom_each_signed_up_counts(frames, names):
    """A segment's sign-ups are its recipients who signed up; a course's are every sign-up,
    however it was made. In the hand-computed store two people not on the lists signed up
    without ever being sent the newsletter (one on EQUIP Basics from the open sign-up page,
    one imported onto the masterclass): the courses count them, the segments cannot, so
    the figures differ and the headers and notes say why."""
    april = dataclasses.replace(frames, campaign_id="2019-04")
    july = dataclasses.replace(frames, campaign_id="2019-07", signups=frames.signups.iloc[:0])
    tables = compare([build_report(april, names), build_report(july, names)])
    segments = tables["segments"].frame.set_index("Segment")
    courses = tables["courses"].frame.set_index("Course")
    summary = tables["summary"].frame.set_index("Campaign")

    # New to QI: recipient 1 (a place) and 2 (waiting) on Basics; recipient 3 cancelled
    assert segments.at["New to QI", f"2019-04 {SIGNED_UP_RECIPIENTS}"] == 2
    # Basics: those two and the person from the open sign-up page, who got no mail
    assert courses.at["EQUIP Basics", f"2019-04 {SIGNED_UP_ALL}"] == 3
    # Running a QI project: recipient 11; the masterclass: 11 and the one imported
    assert segments.at["Running a QI project", f"2019-04 {SIGNED_UP_RECIPIENTS}"] == 1
    assert courses.at["Data masterclass", f"2019-04 {SIGNED_UP_ALL}"] == 2
    assert segments[f"2019-04 {SIGNED_UP_RECIPIENTS}"].sum() == 4  # 1, 2, 6 and 11
    assert courses[f"2019-04 {SIGNED_UP_ALL}"].sum() == 6
    assert summary.at["2019-04", SIGNED_UP_ALL] == 6  # the campaign's: all routes, as courses
    assert summary.at["2019-07", SIGNED_UP_ALL] == 0
    assert pd.isna(courses.at[OTHER_LINKS, f"2019-04 {SIGNED_UP_ALL}"])  # not a course

    assert (SIGNED_UP_RECIPIENTS, SIGNED_UP_ALL) == (
        "Signed up (recipients)",
        "Signed up (all routes)",
    )
    assert "Signed up" not in [c.removeprefix("2019-04 ") for c in segments.columns]
    segment_note, course_note = tables["segments"].note, tables["courses"].note
    assert "the newsletter was sent to" in segment_note
    assert "people not on the campaign's lists" in segment_note.lower()
    for note in (course_note, tables["summary"].note):
        assert "a forwarded link, the open sign-up page or an import" in note
        assert "people the newsletter was not sent to" in note
