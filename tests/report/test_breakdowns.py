"""Figures per segment (the funnel), course, session, practice and role, and machine
clicks beside human ones, against a store state small enough to count by hand.

The state is described row by row in tests/support/report_fixture.py; every expected number
below is worked out from that table in the comment beside it.
"""

from __future__ import annotations

import numpy as np
from support.report_fixture import (
    CAMPAIGN,
    RECIPIENTS,
    expect,
    report_store_without_clicks,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.breakdowns import OTHER_LINKS, reason_label
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
            ["EQUIP Basics", "Thu 27 Jun 2019", "13:00", 2, 2, 1, 1.0, 0, "here"],
            ["EQUIP Basics", "Tue 10 Sep 2019", "13:00", 30, 0, 0, 0.0, 30, "here"],
            ["EQUIP in Action", "Thu 13 Jun 2019", "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["EQUIP in Action", "Tue 9 Jul 2019", "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["EQUIP in Action", "Tue 17 Sep 2019", "09:00", 16, 1, 0, 1 / 16, 15, "here"],
            ["Data masterclass", "Tue 15 Oct 2019", "09:00", None, 2, 0, np.nan, None,
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


def test_clicks_per_practice_and_role_keep_recipient_counts_beside(frames, names):
    r = build_report(frames, names)
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


def test_report_works_from_the_store_alone_with_ids_for_names(frames):
    r = build_report(frames)  # no spec: ids instead of names, sorted
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
        OTHER_LINKS,
    ]


def test_segment_with_no_recipients_is_listed_with_a_dash_for_its_rate(sqlite_url, names):
    no_leads = [r for r in RECIPIENTS if r[1] != "project-leads"]
    engine = report_store_without_clicks(sqlite_url, no_leads)
    r = build_report(load_frames(engine, CAMPAIGN), names)
    row = r.tables["funnel"].frame.iloc[2].tolist()
    assert row[:6] == ["Running a QI project", 0, 0, 0, 0, 0]
    assert np.isnan(row[6])


def test_machine_click_reasons_read_in_plain_words():
    assert reason_label("ua:http-client") == "link scanner (a program, not a browser)"
    assert reason_label("ua:microsoft-safelinks") == "link scanner (Microsoft Safe Links)"
    assert reason_label("head") == "link checker (checked the link without opening the page)"
    assert reason_label("ua:new-gateway") == "link scanner (new gateway)"
    assert reason_label(None) == "no reason given"


def test_machine_and_human_clicks_side_by_side(frames, names):
    r = build_report(frames, names)
    # 9 human clicks by 5 people; after-delivery: 2 and 3; ua:mimecast: 7 (most clicks first)
    expect(
        r.tables["machine"],
        [
            ["Human", 9, 9 / 12, 5],
            ["Machine: link scanner (opened the link within seconds of delivery)", 2, 2 / 12, 2],
            ["Machine: link scanner (Mimecast)", 1, 1 / 12, 1],
            ["All clicks", 12, 1.0, 7],
        ],
    )


def test_people_with_no_practice_are_named_so(sqlite_url, names):

    from support.report_fixture import build_hand_computed_store

    from equip_mailer import store
    from equip_mailer.report.breakdowns import NO_PRACTICE

    engine = build_hand_computed_store(sqlite_url)
    with engine.begin() as conn:  # citizens: a blank practice in the list, stored as ''
        conn.execute(
            store.ledger.update().where(store.ledger.c.id.in_([8, 12])).values(practice="")
        )
    r = build_report(load_frames(engine, CAMPAIGN), names)
    practices = r.tables["practices"].frame
    assert sorted(practices["Practice"]) == [NO_PRACTICE, "Practice A", "Practice B", "Practice C"]
    assert practices.set_index("Practice").loc[NO_PRACTICE, "Recipients"] == 2
