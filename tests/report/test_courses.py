"""Clicks and sign-ups per course and session, and the segment × course table, against
the hand-counted store of tests/support/report_fixture.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
from support.report_fixture import (
    expect,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.courses import OTHER_LINKS


def test_clicks_per_course_and_session(frames, names):
    r = build_report(frames, names)
    # Basics (links 1, 2): human 1x2 on link 1, 2x1 on link 2 -> 2 people, 3 clicks;
    #   machine 2, 3 on link 1
    # In Action (link 3): 6x2, 11x1 -> 2 people, 3 clicks; machine 7
    # Masterclass (link 4): 10, 11 -> 2 people, 2 clicks
    # about (link 5, no course): 1 -> 1 person, 1 click
    # offered to: Basics every segment (10 delivered); In Action needs basic QI: RFA and PL
    #   (3 + 3); the masterclass a QI project: PL (3). Rate = clickers / offered to.
    # signed up: Basics 1 and the open sign-up confirmed, 2 waiting, 3 cancelled; places
    #   2 + 30 = 32; In Action 6 of 16 (one registration, all days); masterclass 11 and one
    #   import, booked elsewhere (no places)
    expect(
        r.tables["courses"],
        [
            ["EQUIP Basics", 10, 2, 0.2, 3, 2, 2, 1, 32, 2 / 32],
            ["EQUIP in Action", 6, 2, 2 / 6, 3, 1, 1, 0, 16, 1 / 16],
            ["Data masterclass", 3, 2, 2 / 3, 2, 0, 2, 0, None, np.nan],
            [OTHER_LINKS, None, 1, np.nan, 1, 0, None, None, None, np.nan],
        ],
    )
    expect(
        r.tables["places"],
        [
            ["EQUIP Basics", pd.Timestamp("2019-06-27"), "13:00", 2, 2, 1, 1.0, 0, "here"],
            ["EQUIP Basics", pd.Timestamp("2019-09-10"), "13:00", 30, 0, 0, 0.0, 30, "here"],
            ["EQUIP in Action", pd.Timestamp("2019-06-13"), "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["EQUIP in Action", pd.Timestamp("2019-07-09"), "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["EQUIP in Action", pd.Timestamp("2019-09-17"), "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["Data masterclass", pd.Timestamp("2019-10-15"), "09:00", None, 2, 0, np.nan, None,
             "elsewhere (imported)"],
        ],
    )  # fmt: skip
    expect(
        r.tables["sessions"],
        [
            ["EQUIP Basics", "Thu 27 Jun 2019", 1, 2, 2],
            ["EQUIP Basics", "Tue 10 Sep 2019", 1, 1, 0],
            ["EQUIP in Action", "All sessions (one link)", 2, 3, 1],
            ["Data masterclass", "All sessions (one link)", 2, 2, 0],
        ],
    )


def test_segments_by_courses(frames, names):
    r = build_report(frames, names)
    # human clickers: GS 1 and 2 on Basics; RFA 6 on In Action; PL 10, 11 on the masterclass
    #   and 11 on In Action. Signed up (listed people): GS 1 and 2 (waiting) on Basics;
    #   RFA 6 on In Action; PL 11 on the masterclass. New to QI is offered Basics only and
    #   Basic QI knowledge not the masterclass: dashes, where nobody clicked either.
    table = r.tables["segment_courses"]
    assert list(table.frame.columns) == [
        "Segment",
        "EQUIP Basics clickers",
        "EQUIP Basics signed up",
        "EQUIP in Action clickers",
        "EQUIP in Action signed up",
        "Data masterclass clickers",
        "Data masterclass signed up",
    ]
    expect(
        table,
        [
            ["New to QI", 2, 2, None, None, None, None],
            ["Basic QI knowledge", 0, 0, 1, 1, None, None],
            ["Running a QI project", 0, 0, 1, 0, 2, 1],
            ["All segments", 2, 2, 2, 1, 2, 1],
        ],
    )
