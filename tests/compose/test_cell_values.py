"""Values as people type them into a list: spaces, QI level spellings, pasted addresses."""

from __future__ import annotations

import pytest
from support.lists import HEADER, write

from equip_mailer.compose.audience import read_list
from equip_mailer.compose.cell_values import normalise_email


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
