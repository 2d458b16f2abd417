"""Figures per practice and role, and machine clicks beside human ones, against a store
state small enough to count by hand.

The state is described row by row in tests/support/report_fixture.py; every expected number
below is worked out from that table in the comment beside it.
"""

from __future__ import annotations

from support.report_fixture import (
    CAMPAIGN,
    expect,
)

from equip_mailer.report.assemble import build_report
from equip_mailer.report.breakdowns import reason_label
from equip_mailer.report.courses import OTHER_LINKS
from equip_mailer.report.load import load_frames


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
