"""Values as people type them into a list: spaces, QI level spellings, pasted addresses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.lists import HEADER, write

from equip_mailer.compose.audience import read_list
from equip_mailer.compose.cell_values import (
    LEVEL_SYNONYMS,
    clean,
    clean_column,
    level_key,
    normalise_email,
)

ROOT = Path(__file__).resolve().parents[2]


def test_stray_and_non_breaking_spaces_are_trimmed(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\n  ANN.SMITH@NHS.EXAMPLE ,\u00a0Ann , Mary  Smith ,X,GP, basics \n",
    )
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert (ann.email, ann.first_name, ann.last_name, ann.qi_level) == (
        "ANN.SMITH@nhs.example",
        "Ann",
        "Mary Smith",
        "basics",
    )
    assert ann.key == "ann.smith@nhs.example"


@pytest.mark.parametrize(
    "written, level",
    [
        ("None", "none"),
        ("new to QI", "none"),
        ("basic", "basics"),
        ("Basics", "basics"),
        ("EQUIP Basics", "basics"),
        ("project", "project"),
        ("QI project", "project"),
        ("QI-Project", "project"),
    ],
)
def test_qi_level_spellings(tmp_path, written, level):
    path = write(tmp_path / "staff.csv", f"{HEADER}\nann@nhs.example,Ann,Smith,X,GP,{written}\n")
    [ann], _, _ = read_list(path, "staff.csv")
    assert ann.qi_level == level


@pytest.mark.parametrize(
    "written, normalised",
    [
        ("Ann.Smith@NHS.Example", "Ann.Smith@nhs.example"),
        ("mailto:ann@example.org", "ann@example.org"),
        ("Ann Smith <ann@example.org>", "ann@example.org"),
        ("zoë@example.org", "zoë@example.org"),
    ],
)
def test_address_forms_people_paste(written, normalised):
    assert normalise_email(written) == (normalised, "")


def test_a_local_part_over_64_characters_is_refused():
    # email-validator only enforces RFC 5321's limit in strict mode; mail servers enforce it always.
    address = "x" * 65 + "@example.org"
    assert normalise_email(address) == ("", f'email "{address[:60]}…" is not a valid address')


def test_lists_readme_names_every_level_spelling_accepted():
    """The README is where an unknown level's error sends people: it must be complete."""
    readme = (ROOT / "lists" / "README.md").read_text(encoding="utf-8")
    listed: dict[str, str] = {}
    for level, spellings in re.findall(
        r"^\| `(none|basics|project)` \| [^|]+ \| ([^|]+) \|$", readme, re.M
    ):
        for spelling in spellings.split(","):
            listed[level_key(spelling)] = level
    assert listed == LEVEL_SYNONYMS


def test_the_demo_segment_names_and_outlook_company_are_understood(tmp_path):
    """An Outlook contact export (Company for the practice), levels written as the emails
    name them."""
    path = write(
        tmp_path / "contacts.csv",
        "First Name,Last Name,Company,Job Title,E-mail Address,QI level\n"
        "Ann,Smith,Tower View Surgery,GP,ann@nhs.example,Running a QI project\n"
        "Bob,Jones,Chapel Yard Surgery,Nurse,bob@nhs.example,Basic QI knowledge\n",
    )
    readers, rejects, _ = read_list(path, "contacts.csv")
    assert rejects == []
    assert [(r.practice, r.qi_level) for r in readers] == [
        ("Tower View Surgery", "project"),
        ("Chapel Yard Surgery", "basics"),
    ]


def test_an_unknown_level_points_to_the_list_of_spellings(tmp_path):
    path = write(tmp_path / "staff.csv", f"{HEADER}\nann@nhs.example,Ann,S,X,GP,expert\n")
    _, [reject], _ = read_list(path, "staff.csv")
    assert str(reject) == (
        'staff.csv:2: qi_level "expert" is not a QI level (none, basics or project; '
        "lists/README.md lists every spelling accepted)"
    )


@pytest.mark.parametrize(
    ("cell", "kept"),
    [
        ("'=SUM(A1:A2)", "=SUM(A1:A2)"),  # as rosters and `people export` defuse it
        ("'+44 20 7946 0000", "+44 20 7946 0000"),
        ("'@home", "@home"),
        ("O'Brien", "O'Brien"),  # an apostrophe anywhere else is the name's
        ("'Tis", "'Tis"),
        ("'", "'"),
    ],
)
def test_the_apostrophe_an_export_puts_before_a_formula_sign_is_taken_off(cell, kept):
    assert clean(cell) == kept
    assert clean_column([cell, "plain"]) == [kept, "plain"]
