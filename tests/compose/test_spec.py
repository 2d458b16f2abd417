"""Reading a campaign spec, as the commissioning manager meets its errors: file:line: field:
sentence.

Each test edits the demo campaign the way a person might, in a real file, and checks the
exact lines reported. What a valid campaign is, field by field, is in test_campaign.py.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from support.spec_files import edited, problems

from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import SpecError


def test_the_demo_loads_with_allow_past(demo_path):
    campaign = load_campaign(demo_path, allow_past=True)
    assert [s.id for s in campaign.segments] == [
        "getting-started",
        "ready-for-action",
        "project-leads",
    ]
    assert campaign.segment_for_level("basics").id == "ready-for-action"
    assert campaign.courses[1].sessions[0].start == dt.time(9, 0)
    assert (
        campaign.path("lists/suppressions.csv")
        == demo_path.parent.parent / "lists" / "suppressions.csv"
    )


def test_past_sessions_need_allow_past_and_each_is_named(demo_path):
    with pytest.raises(SpecError) as exc:
        load_campaign(demo_path)
    shown = [p.removeprefix(f"{demo_path}:") for p in exc.value.problems]
    assert shown[0] == "79: courses[0].sessions[0].date: 2019-06-27 is in the past"
    assert len(shown) == 6
    assert "--allow-past" in exc.value.hint


def test_impossible_date(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("date: 2019-06-27", "date: 2019-06-31"))
    assert problems(path, allow_past=True) == [
        "79: courses[0].sessions[0].date: 2019-06-31 is not a date (use YYYY-MM-DD)"
    ]


def test_unknown_key_suggests_the_nearest(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("  utm_source:", "  utm_sorce:"))
    assert problems(path, allow_past=True) == [
        "126: tracking: unknown key 'utm_sorce' (did you mean 'utm_source'?)"
    ]


def test_misspelt_required_key_is_both_missing_and_unknown(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("preheader:", "preheadr:"))
    assert problems(path, allow_past=True) == [
        "4: preheader: is required",
        "7: unknown key 'preheadr' (did you mean 'preheader'?)",
    ]


COLON = (
    "a colon YAML cannot place here: put a value that holds ': ' in quotes "
    '(title: "Wave 3: QI training"); otherwise check this line\'s indentation, and that the '
    "line above ends with ':' if it opens a section"
)
OUT_OF_STEP = (
    "this line is indented out of step with the lines above it: give keys of the same "
    "level (and the '- ' items of one list) the same number of spaces"
)
OPEN_QUOTE = (
    "unexpected text: a quote on this line or the one above is not closed, or text follows "
    "a closing quote (inside '...' write an apostrophe twice: '')"
)


@pytest.mark.parametrize(
    "old, broken, line, reason",
    [
        ("language: en-GB", "language: en-GB: fr", 10, COLON),
        ("language: en-GB", "language: en-GB\n  stray: indent", 11, COLON),
        ('subject: "EQUIP QI training:', "subject: EQUIP QI training:", 6, COLON),
        (
            "  files:",
            "  files",
            39,
            "no colon after 'files': write 'files:', with a colon, as every key has",
        ),
        (
            "  - id: equip-basics",
            "  - id equip-basics",
            62,
            "no colon after 'id': write 'id:', with a colon, as every key has",
        ),
        (
            "language: en-GB",
            "\tlanguage: en-GB",
            10,
            "a tab character: indent with spaces only (YAML does not allow tabs)",
        ),
        ('    subject: "EQUIP Basics', '      subject: "EQUIP Basics', 51, OUT_OF_STEP),
        ("  - id: ready-for-action", " - id: ready-for-action", 52, OUT_OF_STEP),
        ('subject: "EQUIP QI training: three', "subject: 'Don't miss: three", 6, OPEN_QUOTE),
        (
            "preheader: ",
            "preheader:",
            7,
            "no colon after the key: write 'key: value', with a space after ':'",
        ),
        (
            "qi_levels: [none]",
            "qi_levels: [none",
            51,
            "a [ ... ] list is not closed with ] (on this line or the one above)",
        ),
        (
            'signature: "Primary',
            "signature: @Primary",
            27,
            "a value cannot start with @: put the value in quotes",
        ),
    ],
)
def test_yaml_syntax_error_names_the_line_in_plain_words(
    tmp_path, demo_path, old, broken, line, reason
):
    path = edited(tmp_path, demo_path, (old, broken))
    assert problems(path, allow_past=True) == [f"{line}: not valid YAML: {reason}"]


@pytest.mark.parametrize(
    "old, blank, line, field",
    [
        (
            'subject: "EQUIP QI training: three ways to start or grow your QI journey"',
            "subject:",
            6,
            "subject",
        ),
        ("qi_levels: [none]", "qi_levels:", 50, "segments[0].qi_levels"),
        ("  sandbox: false", "  sandbox:", 132, "sendgrid.sandbox"),
    ],
)
def test_a_key_left_without_a_value_is_said_to_be_empty(
    tmp_path, demo_path, old, blank, line, field
):
    # YAML reads a key with nothing after it as null; the manager never wrote "None".
    path = edited(tmp_path, demo_path, (old, blank))
    assert problems(path, allow_past=True) == [
        f"{line}: {field}: is empty: write its value after the colon"
    ]


def test_duplicate_yaml_key(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("language: en-GB", "language: en-GB\nlanguage: fr"))
    assert problems(path, allow_past=True) == ["11: language: appears twice"]


def test_unquoted_times_stay_times(tmp_path, demo_path):
    # YAML 1.1 reads 13:00 as the number 780 (base 60); people write it unquoted anyway.
    path = edited(
        tmp_path,
        demo_path,
        ('start: "13:00", end: "17:00"', "start: 13:00, end: 17:00"),
        ('start: "9:00"', "start: 9:00"),
        ('start: "9:00"', "start: 9.30"),
    )
    campaign = load_campaign(path, allow_past=True)
    assert (campaign.courses[0].sessions[0].start, campaign.courses[0].sessions[0].end) == (
        dt.time(13, 0),
        dt.time(17, 0),
    )
    assert campaign.courses[1].sessions[0].start == dt.time(9, 0)
    assert campaign.courses[1].sessions[1].start == dt.time(9, 30)  # YAML read 9.3


@pytest.mark.parametrize(
    "old, new, expected",
    [
        (
            "qi_levels: [none]",
            "qi_levels: none",
            ["50: segments[0].qi_levels: none should be a list (one '- item' per line)"],
        ),
        (
            "sandbox: false",
            'sandbox: "yes please"',
            ["132: sendgrid.sandbox: yes please should be true or false"],
        ),
        (
            "max_reject_share: 0.05",
            "max_reject_share: lots",
            ["43: lists.max_reject_share: lots should be a number"],
        ),
        (
            "  files:\n",
            "  files: lists/practice-staff.csv\n  old_files:\n",
            [
                "39: lists.files: lists/practice-staff.csv should be a list "
                "(one '- item' per line)",
                "40: lists: unknown key 'old_files' (did you mean 'files'?)",
            ],
        ),
        (
            'title: "Our latest',
            'title: 2019\nold_title: "Our latest',
            [
                "5: title: 2019 should be text (put it in quotes)",
                "6: unknown key 'old_title' (did you mean 'title'?)",
            ],
        ),
        (
            "footer:\n",
            "footer: EQUIP\nold_footer:\n",
            [
                "33: footer: EQUIP should be a set of 'key: value' lines",
                "34: unknown key 'old_footer' (did you mean 'footer'?)",
            ],
        ),
        (
            'start: "13:00"',
            "start: 9",
            ["79: courses[0].sessions[0].start: 9 is not a time (use HH:MM, e.g. 13:00)"],
        ),
        (
            'end: "17:00"',
            'end: "17:00Z"',
            [
                "79: courses[0].sessions[0].end: 17:00:00+00:00 has a time zone; "
                "give the local time alone (HH:MM)"
            ],
        ),
    ],
)
def test_type_confusions(tmp_path, demo_path, old, new, expected):
    path = edited(tmp_path, demo_path, (old, new))
    assert problems(path, allow_past=True) == expected


def test_every_problem_is_reported_at_once(tmp_path, demo_path):
    path = edited(
        tmp_path,
        demo_path,
        ("date: 2019-06-27", "date: 2019-06-31"),
        ("sandbox: false", "sandbox: maybe"),
        ("qi_levels: [project]", "qi_levels: [expert]"),
    )
    assert problems(path, allow_past=True) == [
        "58: segments[2].qi_levels[0]: expert is not one of 'none', 'basics' or 'project'",
        "79: courses[0].sessions[0].date: 2019-06-31 is not a date (use YYYY-MM-DD)",
        "132: sendgrid.sandbox: maybe should be true or false",
    ]


def test_missing_and_non_utf8_files(tmp_path):
    assert problems(tmp_path / "nope.yaml") == ["no such campaign file"]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("id: x\ntitle: Zo\xeb\n".encode("latin-1"))
    assert problems(latin) == [
        "2: is not UTF-8 text at 'ë' (saved as Windows-1252 or ANSI?); save the file as UTF-8"
    ]
    unicode_text = tmp_path / "utf16.yaml"
    unicode_text.write_text("id: x\n", encoding="utf-16")
    assert problems(unicode_text) == ["is UTF-16 text (Unicode text); save it as UTF-8"]


def test_a_spec_saved_by_notepad_as_ansi_names_the_line_with_the_pound_sign(tmp_path, demo_path):
    text = demo_path.read_text(encoding="utf-8").replace(
        "Dear {first_name},", "Dear {first_name}, the course costs \u00a30"
    )
    path = tmp_path / "ansi.yaml"
    path.write_bytes(text.encode("cp1252"))
    [problem] = problems(path, allow_past=True)
    assert problem.startswith("13: is not UTF-8 text at '\u00a3'")


def test_a_yaml_alias_bomb_is_refused_at_the_key_that_expands(tmp_path):
    # Nine lines standing for 9**9 values; before, loading ran for minutes.
    path = tmp_path / "bomb.yaml"
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, name in zip("abcdefg", "bcdefgh", strict=True):
        anchor = f"&{name} " if name != "h" else ""
        lines.append(f"{name}: {anchor}[" + ", ".join([f"*{prev}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert problems(path) == [
        "6: the file expands to too many values (YAML aliases); write the values out"
    ]


def test_a_few_yaml_aliases_still_work(tmp_path, demo_path):
    path = edited(
        tmp_path,
        demo_path,
        ("categories: [equip-newsletter]", "categories: &cats [equip-newsletter]"),
        ("  sandbox: false", "  sandbox: false\nx_copy: *cats"),
    )
    assert problems(path, allow_past=True) == ["133: unknown key 'x_copy'"]


def test_a_device_pipe_or_huge_file_given_as_the_spec_is_refused_by_name(tmp_path):
    # Before: /dev/zero as the campaign file was read until memory ran out.
    assert problems(Path("/dev/zero")) == [
        "is not a file (a device or pipe); give the path of a campaign .yaml file"
    ]
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert problems(fifo)[0].startswith("is not a file")
    big = tmp_path / "big.yaml"
    big.write_text("notes: |\n" + "  many words\n" * 90_000, encoding="utf-8")
    assert problems(big) == [
        "is over 1,000,000 characters long; a campaign file is a few thousand "
        "(is this the right file?)"
    ]


def test_absurdly_deep_nesting_is_a_plain_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("id: x\nlinks: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_campaign(path)
    assert "nested too deeply" in str(err.value)


def test_a_list_id_must_be_a_plain_label(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, ("language: en-GB", "language: en-GB\nlist_id: EQUIP news"))
    assert problems(path, allow_past=True) == [
        "11: list_id: EQUIP news should be lower-case letters, digits and dashes"
    ]


def test_an_id_that_is_too_long_says_so(tmp_path, demo_path):
    """Found in the audit: an 81-character id of letters and dashes was said to need
    "lower-case letters, digits and dashes", which it had; the length was the problem."""
    long_id = "2019-04-" + "equip-training-" * 5 + "x" * 8
    path = edited(tmp_path, demo_path, ("id: 2019-04-equip-training", f"id: {long_id}"))
    assert problems(path, allow_past=True) == [
        f"4: id: {long_id} is {len(long_id)} characters long; at most 80"
    ]
    path = edited(tmp_path, demo_path, ("language: en-GB", "language: en-GB\nlist_id: " + "n" * 64))
    assert problems(path, allow_past=True) == [
        f"11: list_id: {'n' * 64} is 64 characters long; at most 63"
    ]


def test_two_or_more_sessions_must_say_how_they_are_attended(tmp_path, demo_path):
    """A forgotten attend_all would say "Choose a date" above three days everyone attends."""
    path = edited(tmp_path, demo_path, ("    schedule: attend_all\n", ""))
    assert problems(path, allow_past=True) == [
        "83: courses[1]: has 3 sessions: add schedule: choose_one (each reader picks one "
        "date) or schedule: attend_all (readers come to every date)"
    ]


MASTERCLASS_SESSIONS = (
    "    sessions:\n"
    '      - {date: 2019-10-15, start: "9:00", end: "17:00", '
    'venue: "Example Training Rooms, London E1"}\n'
)


def test_a_course_may_have_dates_to_be_confirmed(tmp_path, demo_path):
    path = edited(tmp_path, demo_path, (MASTERCLASS_SESSIONS, "    dates_tbc: true\n"))
    masterclass = load_campaign(path, allow_past=True).course("data-masterclass")
    assert masterclass.dates_tbc and masterclass.sessions == []
    forgotten = edited(tmp_path, demo_path, (MASTERCLASS_SESSIONS, ""))
    assert problems(forgotten, allow_past=True) == [
        "105: courses[2]: has no sessions: give its sessions, or write dates_tbc: true for a "
        "course whose dates are to be confirmed"
    ]


def test_a_course_signed_up_for_here_needs_its_dates(tmp_path, demo_path):
    basics = (
        "    sessions:\n"
        '      - {date: 2019-06-27, start: "13:00", end: "17:00", '
        'venue: "Example Community Centre, London E1", places: 30}\n'
        '      - {date: 2019-09-10, start: "13:00", end: "17:00", '
        'venue: "Example Community Centre, London E1", places: 30}\n'
    )
    path = edited(tmp_path, demo_path, (basics, "    dates_tbc: true\n"))
    assert problems(path, allow_past=True) == [
        "62: courses[0]: has dates to be confirmed, so readers cannot take a place yet: give "
        "a sign_up_url where they register their interest (instead of sign_up: equip)"
    ]


def test_an_unknown_placeholder_is_named_with_its_line(tmp_path, demo_path):
    path = edited(
        tmp_path,
        demo_path,
        ('subject: "EQUIP Basics: start', 'subject: "{frist_name}, EQUIP Basics: start'),
        ('signature: "Primary', 'signature: "{name}, Primary'),
    )
    known = "the placeholders are {first_name}, {practice}, {open_courses} and {open_count}"
    assert problems(path, allow_past=True) == [
        f"27: signature: {{name}} is not a placeholder; {known}",
        f"51: segments[0].subject: {{frist_name}} is not a placeholder; {known}",
    ]


# What the security review found (issue 10, item 5): each refused at its line.


def test_a_line_break_in_the_sender_name_or_a_subject_is_refused_at_its_line(tmp_path, demo_path):
    """It passed check, then the outbox refused the header half way through a send and left
    recipients 'uncertain'."""
    path = edited(
        tmp_path,
        demo_path,
        ("from: {name: EQUIP Tower Hamlets,", 'from: {name: "EQUIP\\r\\nBcc: all@nhs.example",'),
        (
            'subject: "EQUIP QI training: three ways',
            'subject: "EQUIP QI training:\\nX-Injected: 1\\nthree ways',
        ),
        ('    subject: "EQUIP Basics: start', '    subject: "EQUIP Basics:\\rstart'),
    )
    assert problems(path, allow_past=True) == [
        "6: subject: contains a line break ('\\n'); this text must be on one line (it goes "
        "into a mail header or a table row)",
        "8: from.name: contains a line break ('\\r'); this text must be on one line (it goes "
        "into a mail header or a table row)",
        "51: segments[0].subject: contains a line break ('\\r'); this text must be on one "
        "line (it goes into a mail header or a table row)",
    ]


def test_a_control_character_in_a_course_name_is_refused_at_its_line(tmp_path, demo_path):
    """It gave a misleading MJML error, and crashed report."""
    path = edited(tmp_path, demo_path, ("    name: EQUIP Basics", '    name: "EQUIP\\x07 Basics"'))
    assert problems(path, allow_past=True) == [
        "63: courses[0].name: contains the control character '\\x07', which cannot be "
        "shown; delete it (it often comes with text pasted from another program)"
    ]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (
            "https://equip.example.org\\\\@evil.example/x",
            "contains a backslash (\\), which browsers read as /",
        ),
        (
            "https://equip.example.org@evil.example/x",
            "has a user name before @ in its address, which sends readers to the host after "
            "the @; give the plain address",
        ),
    ],
)
def test_a_spec_url_that_would_open_another_site_is_refused(tmp_path, demo_path, url, why):
    """https://equip.example.org\\@evil.example/x passed the checks and redirected off-site."""
    text = demo_path.read_text(encoding="utf-8")
    old = next(line for line in text.splitlines() if "sign_up_url:" in line)
    key = old.partition("sign_up_url:")[0]
    path = edited(tmp_path, demo_path, (old, f'{key}sign_up_url: "{url}"'))
    [problem] = problems(path, allow_past=True)
    # the YAML's "\\\\" is one backslash, shown as Python shows it: '...org\\\\@evil...'
    assert problem == f"119: courses[2].sign_up_url: {url.replace(chr(92) * 2, chr(92))!r} {why}"
