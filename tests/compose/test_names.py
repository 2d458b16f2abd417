"""A full name split into title, first and last name, and how a mail addresses the person:
"Dr Vik Patel" is Dr Patel, never "Dr"."""

from __future__ import annotations

import pytest

from equip_mailer.compose.names import FullName, addressed_as, split_name, title_of

CASES = [
    # full name as typed, (title, first, last), addressed as
    ("Dr Vik Patel", ("Dr", "Vik", "Patel"), "Dr Patel"),
    ("Dr Patel", ("Dr", "", "Patel"), "Dr Patel"),
    ("Vik Patel", ("", "Vik", "Patel"), "Vik"),
    ("Vik", ("", "Vik", ""), "Vik"),
    ("Dr", ("Dr", "", ""), ""),
    ("", ("", "", ""), ""),
    ("   ", ("", "", ""), ""),
    ("dr. vik patel", ("Dr", "vik", "patel"), "Dr patel"),  # the title written back, names as given
    ("DR. Vik Patel", ("Dr", "Vik", "Patel"), "Dr Patel"),
    ("  Dr   Vik \u00a0 Patel ", ("Dr", "Vik", "Patel"), "Dr Patel"),  # runs of (Excel) spaces
    ("Dr Zoë Ó Ceallaigh", ("Dr", "Zoë", "Ó Ceallaigh"), "Dr Ó Ceallaigh"),
    ("Zoë Ó Ceallaigh", ("", "Zoë", "Ó Ceallaigh"), "Zoë"),
    ("Prof. Siân Lloyd-Jones", ("Prof", "Siân", "Lloyd-Jones"), "Prof Lloyd-Jones"),
    ("Professor Ann Smith", ("Professor", "Ann", "Smith"), "Professor Smith"),
    ("Mrs Ann Smith", ("Mrs", "Ann", "Smith"), "Mrs Smith"),
    ("mr smith", ("Mr", "", "smith"), "Mr smith"),
    ("Ms. Ann Smith", ("Ms", "Ann", "Smith"), "Ms Smith"),
    ("MISS Ann Smith", ("Miss", "Ann", "Smith"), "Miss Smith"),
    ("Mx Sam Example", ("Mx", "Sam", "Example"), "Mx Example"),
    ("Rev. Ann Smith", ("Rev", "Ann", "Smith"), "Rev Smith"),
    # Sir and Dame go with the first name
    ("Sir Vik Patel", ("Sir", "Vik", "Patel"), "Sir Vik"),
    ("Dame Zoë Ó Ceallaigh", ("Dame", "Zoë", "Ó Ceallaigh"), "Dame Zoë"),
    ("Dame Zoë", ("Dame", "", "Zoë"), "Dame Zoë"),
    # a word that only starts like a title is a name
    ("Drew Patel", ("", "Drew", "Patel"), "Drew"),
    ("Missy Smith", ("", "Missy", "Smith"), "Missy"),
    ("Dr.Patel", ("", "Dr.Patel", ""), "Dr.Patel"),  # no space: one word, as written
    # several titles stay together; none is taken for the first name
    ("Rev Dr Ann Smith", ("Rev Dr", "Ann", "Smith"), "Rev Dr Smith"),
    ("Prof Sir Vik Patel", ("Prof Sir", "Vik", "Patel"), "Prof Sir Vik"),
    ("Dr Mrs Smith", ("Dr Mrs", "", "Smith"), "Dr Mrs Smith"),
    ("Doctor Vik Patel", ("Dr", "Vik", "Patel"), "Dr Patel"),
    ("Reverend Ann Smith", ("Rev", "Ann", "Smith"), "Rev Smith"),
    # after a title, a surname that begins with a particle stays whole
    ("Dr De Silva", ("Dr", "", "De Silva"), "Dr De Silva"),
    ("Mrs van der Berg", ("Mrs", "", "van der Berg"), "Mrs van der Berg"),
    ("Dr Ó Ceallaigh", ("Dr", "", "Ó Ceallaigh"), "Dr Ó Ceallaigh"),
    ("Dr Vik De Silva", ("Dr", "Vik", "De Silva"), "Dr De Silva"),
    ("Vik De Silva", ("", "Vik", "De Silva"), "Vik"),
    ("Mrs. Jane Smith-Jones", ("Mrs", "Jane", "Smith-Jones"), "Mrs Smith-Jones"),
    # NHSmail's and Outlook's address book: surname first, then a comma, the organisation
    ("Patel, Vik", ("", "Vik", "Patel"), "Vik"),
    ("PATEL, Vik (TOWER VIEW SURGERY)", ("", "Vik", "PATEL"), "Vik"),
    ("DE SILVA, Vik Anand (NHS NORTH EAST LONDON ICB - A3A8R)", ("", "Vik", "DE SILVA"), "Vik"),
    ("van der Berg, Anna", ("", "Anna", "van der Berg"), "Anna"),
    ("Patel, Dr Vik", ("Dr", "Vik", "Patel"), "Dr Patel"),
    ("Patel,", ("", "Patel", ""), "Patel"),
    ("Vik Patel (Tower View Surgery)", ("", "Vik", "Patel"), "Vik"),
    # after a whole name, a comma brings letters or a role, not a first name
    ("Vik Patel, MBE", ("", "Vik", "Patel"), "Vik"),
    ("Dr Ann Smith, GP partner", ("Dr", "Ann", "Smith"), "Dr Smith"),
    # found in review: capitals after the comma are letters or a role, not a given name
    ("JOHN SMITH, MBE", ("", "JOHN", "SMITH"), "JOHN"),
    ("ANN SMITH, PRACTICE MANAGER", ("", "ANN", "SMITH"), "ANN"),
    ("Lee, GP", ("", "Lee", ""), "Lee"),
    ("Patel, Vik, Dr", ("", "Vik", "Patel"), "Vik"),
    ("Smith, Dr", ("Dr", "", "Smith"), "Dr Smith"),
]


@pytest.mark.parametrize(("full", "parts", "address"), CASES)
def test_split_name_and_how_the_person_is_addressed(full, parts, address):
    assert split_name(full) == FullName(*parts)
    assert addressed_as(full) == address


@pytest.mark.parametrize(
    ("cell", "title"),
    [
        ("Dr", "Dr"),
        ("dr.", "Dr"),
        (" MRS ", "Mrs"),
        ("Doctor", "Dr"),
        ("Rev. Dr", "Rev Dr"),
        ("", ""),
        ("Practice Manager", ""),  # a job title in a Title column
        ("Dr Patel", ""),  # not a title alone
    ],
)
def test_a_title_column_value_is_written_back_only_when_it_is_a_title(cell, title):
    assert title_of(cell) == title
