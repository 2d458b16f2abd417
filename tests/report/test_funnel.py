"""The funnel per segment, against a store state small enough to count by hand
(tests/support/report_fixture.py; every expected number is worked out beside it)."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from support.report_fixture import (
    CAMPAIGN,
    RECIPIENTS,
    build_hand_computed_store,
    expect,
    report_store_without_clicks,
)

from equip_mailer import store
from equip_mailer.report.assemble import build_report
from equip_mailer.report.load import load_frames


def test_funnel_per_segment_human_only(frames, names):
    r = build_report(frames, names)
    # sent: getting-started 1-5 = 5; ready-for-action 6-8 (9 failed) = 3; project-leads 10-12 = 3
    # delivered: getting-started loses 5 (bounce) = 4; others 3 and 3
    # human clickers: GS {1, 2} (3 clicked only as a machine); RFA {6} (7 machine only); PL {10, 11}
    # rate: 2/4, 1/3, 2/3; total 5/10
    # machine clicks: GS 2 (recipients 2 and 3), RFA 1 (7), PL 0
    # (raw clicks, in the machine table: GS 1x3 + 2x2 + 3x1 = 6; RFA 6x2 + 7x1 = 3; PL
    #   10x1 + 11x2 = 3; the ledger-id-0 test click counts nowhere)
    # opens: 1 (GS) and 6 (RFA)
    # unsubscribed: 4 (GS)
    # signed up: GS 1 with a place, 2 waiting (2 of 4 delivered); RFA 6 (1/3); PL 11 (1/3);
    #   3 (cancelled) and the two people not on the lists count in no segment
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 4, 1, 1, 2, 2 / 4, 1, 1, 2 / 4, 2, 1],
            ["Basic QI knowledge", 3, 3, 0, 0, 1, 1 / 3, 1, 0, 1 / 3, 1, 1],
            ["Running a QI project", 3, 3, 0, 0, 2, 2 / 3, 1, 0, 1 / 3, 0, 0],
            ["All segments", 11, 10, 1, 1, 5, 5 / 10, 3, 1, 4 / 10, 3, 2],
        ],
    )
    assert list(r.tables["funnel"].frame.columns)[4:10] == [
        "Unsubscribed",
        "Unique human clickers",
        "Click-through rate",
        "Signed up: place",
        "Signed up: waiting",
        "Sign-up rate",
    ]
    assert [(f.label, f.value, f.detail) for f in r.headline][2:] == [
        ("Unique clickers", "5", "human only"),
        ("Click-through rate", "50.0%", "unique clickers / delivered"),
        ("Clicks", "9", "3 machine clicks left out"),  # 12 raw - 3 machine = 9 human
        ("Signed up", "6", "5 with a place, 1 waiting"),  # the cancelled one left out
    ]
    assert [(f.label, f.value) for f in r.headline][:2] == [("Sent", "11"), ("Delivered", "10")]
    assert (
        "2 sign-ups came from people not on the campaign's lists (1 from the open sign-up "
        "page, 1 imported from a booking tool): counted per course and session, not per "
        "segment." in r.notes
    )
    assert any("1 event did not match" in n for n in r.notes)
    assert any("Opens are unreliable" in n for n in r.notes)


def test_the_sign_up_card_says_how_many_people_hold_the_places(sqlite_url, names):
    """Recipient 1, with a place on EQUIP Basics, takes the Data masterclass too: seven
    sign-ups, by six people. The funnel counts each person once whatever they hold."""
    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:
        basics = conn.execute(
            sa.select(store.registrations).where(store.registrations.c.ledger_id == 1)
        ).one()
        course_row, session_row = conn.execute(
            sa.select(store.signup_sessions.c.signup_course_id, store.signup_sessions.c.id).where(
                store.signup_sessions.c.session_key == "2019-10-15"
            )
        ).one()
        row = {k: v for k, v in basics._mapping.items() if k != "id"}
        conn.execute(
            store.registrations.insert().values(
                {
                    **row,
                    "signup_course_id": course_row,
                    "session_id": session_row,
                    "course_id": "data-masterclass",
                    "queue_seq": 99,
                }
            )
        )
    r = build_report(load_frames(engine, CAMPAIGN), names)
    assert (r.headline[-1].label, r.headline[-1].value, r.headline[-1].detail) == (
        "Signed up",
        "7",
        "6 with a place, 1 waiting; 6 people",
    )
    funnel = r.tables["funnel"].frame
    assert funnel.loc[funnel["Segment"] == "All segments", "Signed up: place"].item() == 3


def test_all_clicks_counts_machines_in_the_headline(frames, names):
    r = build_report(frames, names, human_only=False)
    # clickers now include machine-only recipients 3 (GS) and 7 (RFA): 3/4, 2/3, 2/3; 7/10
    expect(
        r.tables["funnel"],
        [
            ["New to QI", 5, 4, 1, 1, 3, 3 / 4, 1, 1, 2 / 4, 2, 1],
            ["Basic QI knowledge", 3, 3, 0, 0, 2, 2 / 3, 1, 0, 1 / 3, 1, 1],
            ["Running a QI project", 3, 3, 0, 0, 2, 2 / 3, 1, 0, 1 / 3, 0, 0],
            ["All segments", 11, 10, 1, 1, 7, 7 / 10, 3, 1, 4 / 10, 3, 2],
        ],
    )
    assert "Unique clickers (incl. machine)" in r.tables["funnel"].frame.columns
    assert r.headline[4].value == "12"


def test_segment_with_no_recipients_is_listed_with_a_dash_for_its_rate(sqlite_url, names):
    no_leads = [r for r in RECIPIENTS if r[1] != "project-leads"]
    engine = report_store_without_clicks(sqlite_url, no_leads)
    r = build_report(load_frames(engine, CAMPAIGN), names)
    row = r.tables["funnel"].frame.iloc[2].tolist()
    assert row[:6] == ["Running a QI project", 0, 0, 0, 0, 0]
    assert np.isnan(row[6])
