"""A person's full name, as one line of text, split into title, first and last name; and how
a mail addresses them.

Names arrive whole in two places: a mailing list with only a Name column (``audience``) and
a registration's name (``signup``). GP-practice staff often give their title with it
("Dr Vik Patel"), and a first word taken as the first name then greets them "Dear Dr,".
Both places split here, so a title is recognised the same way in both.

The titles are the common UK ones, with or without a dot and in any case ("dr.", "DR");
they are written back in their usual British form, without the dot ("Dr"). A title is
addressed with the surname ("Dear Dr Patel,", the normal British form), except Sir and Dame,
which go with the first name ("Dear Sir Vik,": "Sir Patel" is a known mistake), as do Lady
and Lord. Several titles are kept together ("Dear Rev Dr Smith,").
"""

from __future__ import annotations

import re
from typing import NamedTuple

# casefolded, without a trailing dot -> the title as written back
TITLES = {t.casefold(): t for t in ("Dr", "Prof", "Professor", "Mr", "Mrs", "Ms", "Miss", "Mx")}
TITLES |= {t.casefold(): t for t in ("Sir", "Dame", "Rev", "Revd", "Canon", "Lady", "Lord")}
TITLES |= {"doctor": "Dr", "reverend": "Rev"}
_WITH_FIRST_NAME = {"Sir", "Dame", "Lady", "Lord"}
# Words that begin a surname: after a title, "Dr De Silva" is Dr De Silva, not Dr Silva
# with the first name "De". (Without a title "Vik De Silva" splits as ever: Vik, De Silva.)
PARTICLES = frozenset(
    "al ap bin da das de del della den der di dos du el ibn la le mac mc o ó st st. van von".split()
)


class FullName(NamedTuple):
    title: str  # "Dr", or "" when the name has none
    first: str  # "" when only a title and a surname were given ("Dr Patel")
    last: str  # every word after the first name: "Ó Ceallaigh"


def split_name(full: str) -> FullName:
    """``Dr Vik Patel`` -> (Dr, Vik, Patel); ``Vik Patel`` -> ("", Vik, Patel).

    Leading words are titles while they are in ``TITLES`` ("Rev Dr Ann Smith" -> "Rev Dr").
    After a title, a single word is the surname ("Dr Patel", "Mrs Smith"), and so is
    everything when its first word begins a surname ("Dr De Silva"); otherwise the first
    word is the first name and the rest is the surname, so a surname of two words
    ("Ó Ceallaigh") stays whole. Any run of spaces counts as one.

    Directory forms are read too: NHSmail and Outlook's address book write
    "PATEL, Vik (TOWER SURGERY)", surname first, so a surname before a comma is the
    surname ("Dear Vik,", never "Dear PATEL,,"); a trailing "(organisation)" is left out,
    and so is what follows the comma after a whole name ("Vik Patel, MBE")."""
    full = _IN_BRACKETS_AT_END.sub("", full) or full
    before, comma, after = full.partition(",")
    if comma:
        surname, given = before.split(), after.partition(",")[0].split()
        if _is_surname(surname) and _is_given(given):
            titles, words = _titles(given)
            return FullName(" ".join(titles), words[0] if words else "", " ".join(surname))
        full = before  # "Vik Patel, MBE", "Lee, GP": letters or a role after the name
    titles, words = _titles(full.split())
    title = " ".join(titles)
    if title and (len(words) == 1 or (words and words[0].casefold() in PARTICLES)):
        return FullName(title, "", " ".join(words))
    return FullName(title, words[0] if words else "", " ".join(words[1:]))


# "PATEL, Vik (TOWER SURGERY)": the organisation NHSmail's address book adds to a name
_IN_BRACKETS_AT_END = re.compile(r"\s*\([^()]*\)\s*$")


def _titles(words: list[str]) -> tuple[list[str], list[str]]:
    """The leading words that are titles (written back), and the words after them."""
    titles: list[str] = []
    while words and (title := TITLES.get(words[0].rstrip(".").casefold())):
        titles.append(title)
        words = words[1:]
    return titles, words


def _is_given(words: list[str]) -> bool:
    """Whether the words after a surname's comma are a given name ("Vik", "Dr Vik") rather
    than letters or a role in capitals ("MBE", "GP", "PRACTICE MANAGER"): the address book
    writes the given name in mixed case."""
    if not words:
        return False
    return words[0].rstrip(".").casefold() in TITLES or any(ch.islower() for w in words for ch in w)


def _is_surname(words: list[str]) -> bool:
    """Whether the words before a comma are a surname ("Patel", "DE SILVA", "van der Berg")
    rather than a whole name followed by letters or a role ("Vik Patel, MBE")."""
    if not words:
        return False
    return len(words) == 1 or words[0].casefold() in PARTICLES or " ".join(words).isupper()


def title_of(text: str) -> str:
    """A Title column's value written back ("dr." -> "Dr", "Rev. Dr" -> "Rev Dr"); "" unless
    every word is a title: exports also put job titles there ("Practice Manager"), and
    "Dear Practice Manager Patel," would be worse than "Dear colleague,"."""
    title, first, last = split_name(text)
    return "" if first or last else title


def addressed_as(full: str) -> str:
    """How a mail addresses this person after "Dear": ``Dr Patel`` with a title (``Sir Vik``
    for Sir and Dame), else the first name; "" when there is no name to use (blank, or a
    title alone), so the caller falls back to its own word ("colleague")."""
    title, first, last = split_name(full)
    if first and _WITH_FIRST_NAME.intersection(title.split()):
        return f"{title} {first}"
    if title and last:
        return f"{title} {last}"
    return first
