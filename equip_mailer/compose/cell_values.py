"""What one cell of a mailing list may say, and the one form each value is kept in.

People type the same thing many ways: ``Basic QI``, ``level 1`` and ``basics`` are one QI
level; ``mailto:Ann <ann@NHS.net>`` is an address; Excel leaves non-breaking and zero-width
spaces. Each function here turns one such value into its canonical form, or into the plain
sentence that rejects its row. Checking 100,000 rows must take about a second, so the common
case (plain ASCII) takes a fast path that a test holds to the slow, general one.
"""

from __future__ import annotations

import re

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

# normalised QI level value (``level_key``) -> campaign.QI_LEVELS; every one is listed in
# lists/README.md (tests/compose/test_cell_values.py holds the two together)
LEVEL_SYNONYMS: dict[str, str] = {}
for _level, _names in {
    "none": ["none", "no", "nil", "new", "newtoqi", "noqi", "beginner", "0", "level0"],
    "basics": [
        "basics",
        "basic",
        "basicqi",
        "basicqiknowledge",
        "equipbasics",
        "1",
        "level1",
        "qibasics",
    ],
    "project": [
        "project",
        "projects",
        "qiproject",
        "hasproject",
        "qiprojectlead",
        "basicqiknowledgeandaqiproject",
        "equipinaction",
        "runningaqiproject",
        "runningqiproject",
        "2",
        "level2",
    ],
}.items():
    for _name in _names:
        LEVEL_SYNONYMS[_name] = _level

# Longest value kept for a text column. Longer values are almost always a paste gone wrong
# (a whole e-mail body in a name cell) and would break the layout of the newsletter.
MAX_FIELD = {
    "first_name": 200,
    "last_name": 200,
    "practice": 200,
    "role": 200,
    "qi_level": 200,
    "email": 320,
}

# A conservative subset of what email-validator accepts, checked with one compiled regex so
# 100,000 ordinary addresses do not each pay for a full validation (~20 µs each). Anything
# outside it (unicode, quoted local parts, odd domains) goes through email-validator itself;
# a test checks the two agree on what the regex accepts. A label with "--" in its third and
# fourth characters is left to email-validator: it is reserved for IDNA ("xn--"), which
# email-validator checks (and refuses otherwise).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
FAST_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@)(?:{_ATOM}(?:\.{_ATOM})*)@(?=.{{1,253}}$)"
    rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}"
)
_SPECIAL_TLDS = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"


def level_key(value: str) -> str:
    """A QI level cell as LEVEL_SYNONYMS keys it: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", value.lower())


def shown_value(value: str, limit: int = 60) -> str:
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return value if len(value) <= limit else value[:limit] + "…"


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
CONTROL_RE = re.compile(_CONTROL)


# What makes a cell a formula in a spreadsheet: the ASCII signs, their full-width forms
# (Excel and LibreOffice read ＝SUM(1) as =SUM(1) in East Asian locales), and the characters
# a spreadsheet skips before them. The files this tool writes (rosters, reports, `people
# export`) put an apostrophe before such a value (report/spreadsheets.py ``defuse``).
FORMULA_SIGNS = "=+-@\uff1d\uff0b\uff0d\uff20"
SKIPPED_FIRST = "\x00\t\r\n "


def clean(value: str) -> str:
    """Trim and collapse whitespace, including Excel's non-breaking and zero-width spaces.

    str.split() also counts line breaks inside a cell (and the separator controls \\x1c-\\x1f,
    \\x85) as whitespace, so those become single spaces rather than rejecting the row.

    An apostrophe before a formula sign is the one a spreadsheet export adds to keep the
    value text (``defuse``): it is taken off, so `people export` read back as a list greets
    "Dear =Zed," as the list did, not "Dear '=Zed,"."""
    text = " ".join((value if value.isascii() else value.translate(_ZERO_WIDTH)).split())
    if text[:1] == "'" and text[1:].lstrip(SKIPPED_FIRST).startswith(tuple(FORMULA_SIGNS)):
        return text[1:].lstrip()
    return text


def normalise_email(value: str) -> tuple[str, str]:
    """(normalised address, "") or ("", problem) for one cleaned cell.

    Tolerates ``mailto:`` and ``Ann Smith <ann@example.org>``. Plain ASCII addresses take a
    regex fast path that gives the same result as email-validator (lower-case domain, local
    part as written); everything else goes through email-validator itself.
    """
    if not value:
        return "", "email is blank"
    if value[:7].lower() == "mailto:":
        value = value[7:].strip()
    if value.endswith(">") and "<" in value:
        value = value[value.rindex("<") + 1 : -1].strip()
    if (
        len(value) <= 254
        and FAST_EMAIL.fullmatch(value)
        and not value.lower().endswith(_SPECIAL_TLDS)
    ):
        local, _, domain = value.rpartition("@")
        return f"{local}@{domain.lower()}", ""
    try:
        # strict: also refuse local parts over 64 characters, which mail servers refuse (RFC 5321)
        return validate_email(value, check_deliverability=False, strict=True).normalized, ""
    except EmailNotValidError:
        pass
    except Exception:  # noqa: BLE001 - e.g. IDNA codec errors on odd unicode domains
        pass
    return "", f'email "{shown_value(value)}" is not a valid address'


# ASCII whitespace that str.split() splits on, besides the single space clean keeps.
_SPACES = ("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "  ")


def clean_column(cells: list[str]) -> list[str]:
    """``clean`` of every cell. Most columns need nothing (ASCII, no leading, trailing or
    repeated spaces, no other whitespace): that is checked once on the joined column
    (cells joined with NUL, so a space at a cell's edge shows next to one), and the column
    is then returned as it is; otherwise each cell is cleaned."""
    joined = "\0".join(cells)
    if (
        joined.isascii()
        and not joined.startswith((" ", "'"))
        and "\0'" not in joined  # maybe an apostrophe before a formula sign
        and not joined.endswith(" ")
        and " \0" not in joined
        and "\0 " not in joined
        and not any(s in joined for s in _SPACES)
    ):
        return cells
    return [clean(v) for v in cells]
