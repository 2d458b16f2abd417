"""What a valid campaign is: the checks the models make on courses, sessions and segments,
as the commissioning manager meets them (file:line: field: sentence) in a real spec file.
"""

from __future__ import annotations

from support.spec_files import edited, problems

from equip_mailer.compose.spec import load_campaign


def test_duplicate_ids(tmp_path, demo_path):
    path = edited(
        tmp_path,
        demo_path,
        ("- id: equip-in-action", "- id: equip-basics"),
        ("- id: ready-for-action", "- id: getting-started"),
    )
    assert problems(path, allow_past=True) == [
        "52: segments[1].id: 'getting-started' is used twice (also segments[0])",
        "83: courses[1].id: 'equip-basics' is used twice (also courses[0])",
    ]


def test_a_course_no_segment_may_attend(tmp_path, demo_path):
    # One segment for everybody: its lowest reader is new to QI, so the two courses that
    # need some QI knowledge would be offered to people who cannot take them.
    text = demo_path.read_text(encoding="utf-8")
    start, end = text.index("segments:\n"), text.index("courses:\n")
    text = (
        text[:start]
        + (
            "segments:\n  - id: everyone\n    name: Everyone\n"
            "    qi_levels: [none, basics, project]\n\n"
        )
        + text[end:]
    )
    path = tmp_path / "campaigns" / "one-segment.yaml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    found = problems(path, allow_past=True)
    assert [p.split(": ", 1)[1] for p in found] == [
        "courses[1]: no segment may attend 'EQUIP in Action' (it requires 'basics', "
        "above every segment's level)",
        "courses[2]: no segment may attend 'Data masterclass' (it requires 'project', "
        "above every segment's level)",
    ]


def test_a_level_in_two_segments_is_one_problem_per_line(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("qi_levels: [basics]", "qi_levels: [basics, none]"))
    assert problems(path, allow_past=True) == [
        "47: segments: QI level 'none' is in both 'getting-started' and 'ready-for-action'; "
        "each level has one segment for all roles (give the other one 'roles:' to split by role)"
    ]


CITIZENS_SEGMENT = """segments:
  - id: citizens
    name: Citizens and service users
    qi_levels: [none]
    roles: [Citizen, service user]
    subject: "EQUIP Basics is open to you too"
"""


def test_a_segment_can_take_some_roles_before_the_levels_catch_all(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("segments:\n", CITIZENS_SEGMENT))
    campaign = load_campaign(path, allow_past=True)
    assert campaign.segment_for("none", "Service User").id == "citizens"
    assert campaign.segment_for("none", "Practice nurse").id == "getting-started"
    # a citizen who has done EQUIP Basics is judged by level: no role segment at 'basics'
    assert campaign.segment_for("basics", "Citizen").id == "ready-for-action"


def test_the_same_role_in_two_role_segments_is_a_problem(tmp_path, demo_path):
    twice = CITIZENS_SEGMENT + CITIZENS_SEGMENT.replace("segments:\n", "").replace(
        "id: citizens", "id: citizens-again"
    )
    path = edited(tmp_path, demo_path, ("segments:\n", twice))
    assert any(
        "role 'Citizen' at QI level 'none' is in both 'citizens' and 'citizens-again'" in p
        for p in problems(path, allow_past=True)
    )


def test_impossible_time(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ('end: "17:00"', 'end: "25:00"'))
    assert problems(path, allow_past=True) == [
        "79: courses[0].sessions[0].end: 25:00 is not a time (use HH:MM, e.g. 13:00)"
    ]
