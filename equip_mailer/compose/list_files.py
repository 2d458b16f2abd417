"""Reading a mailing-list file into rows of cells, each with the place a person would look.

The lists are exports somebody made from a practice system or a spreadsheet, so reading is
forgiving about form: any common encoding (UTF-8 with or without BOM, UTF-16, Windows-1252),
the delimiter the file uses, a title line above the header, header spellings such as
"E-mail Address", and XLSX workbooks (read by ``xlsx_lists``). Nothing here judges a value;
``audience`` does that. Only a file that cannot be read as a list at all (missing, a folder
or device, too big, an old .xls, no email column, a stray quote that swallowed rows) raises
a ListError naming it.

Line numbers are the ones a person sees: the header is line 1 of a CSV (a value with a line
break inside quotes moves later lines down, as in a text editor); XLSX rows are named
``file.xlsx:Sheet1!row 42`` as in the spreadsheet.
"""

from __future__ import annotations

import csv
import io
import re
import stat
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from equip_mailer.errors import ListError


@dataclass(frozen=True)
class Reject:
    where: str  # "lists/practice-staff.csv:42"
    message: str  # 'email "bob@@nhs.net" is not a valid address'

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Table:
    """The cells of one list file, before any checking.

    ``header`` is the header row as written; ``rows`` are the data rows, each with its place
    (``lists/x.csv:42``); ``broken`` are rows the file format itself could not give.
    """

    header: list[str]
    rows: list[list[str]]
    wheres: list[str]
    broken: list[Reject]


# ---------------------------------------------------------------------------------------
# Columns as people name them

COLUMNS = ("email", "first_name", "last_name", "practice", "role", "qi_level")

# normalised header (lower-case, letters and digits only) -> our column
HEADER_SYNONYMS: dict[str, str] = {}
for _column, _names in {
    "email": [
        "email",
        "emailaddress",
        "emailaddr",
        "mail",
        "workemail",
        "nhsmail",
        "nhsemail",
        "nhsmailaddress",
        "emails",
        "contactemail",
    ],  # not "address": postal
    "first_name": [
        "firstname",
        "forename",
        "forenames",
        "givenname",
        "first",
        "fname",
        "preferredname",
        "knownas",
    ],
    "last_name": ["lastname", "surname", "familyname", "last", "lname"],
    "practice": [
        "practice",
        "practicename",
        "surgery",
        "gppractice",
        "organisation",
        "organization",
        "org",
        "site",
        "practiceorganisation",
        "company",  # Outlook's contact export
        "companyname",
    ],
    "role": [
        "role",
        "jobtitle",
        "job",
        "jobrole",
        "position",
        "staffrole",
        "staffgroup",
        "occupation",
        "designation",
    ],
    "qi_level": [
        "qilevel",
        "qi",
        "level",
        "qiexperience",
        "qiknowledge",
        "qistage",
        "equiplevel",
        "qitraining",
    ],
    "name": ["name", "fullname", "contactname"],
    "title": ["title", "salutation", "prefix", "honorific", "nametitle"],
}.items():
    for _name in _names:
        HEADER_SYNONYMS[_name] = _column


def header_key(text: str) -> str:
    """'E-mail Address ' -> 'emailaddress': the form header synonyms are looked up in."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"[^a-z0-9]", "", text)


def column_indexes(table: Table) -> dict[str, int]:
    """Our column name -> index in the file; the first of two synonyms wins."""
    found: dict[str, int] = {}
    for i, cell in enumerate(table.header):
        column = HEADER_SYNONYMS.get(header_key(cell))
        if column and column not in found:
            found[column] = i
    return found


# ---------------------------------------------------------------------------------------
# Reading a file into rows, each with the place a person would look for it


def _decode(data: bytes, shown: str) -> str:
    """Excel and older practice systems save Windows-1252; newer ones UTF-8, often with a BOM."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # never fails; odd bytes become control characters


def _sniff_delimiter(text: str) -> str:
    """Pick the delimiter from the first non-blank line: Excel in many European locales
    writes ';', "Unicode text" exports use tabs."""
    for line in text.splitlines():
        if line.strip():
            unquoted = re.sub(r'"[^"]*"', "", line)
            counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
            best = max(counts, key=lambda d: counts[d])
            return best if counts[best] else ","
    return ","


def find_header(records: list[tuple[int, list[str]]], shown: str, need: str) -> int:
    """Index of the header row: the first of the first ten non-blank rows naming ``need``.

    Exports sometimes start with a title line ("Staff list, exported 01/04/2019").
    """
    candidates: list[int] = []  # the first ten non-blank rows: never the whole list
    for i, (_, cells) in enumerate(records):
        if any(c.strip() for c in cells):
            candidates.append(i)
            if len(candidates) == 10:
                break
    if not candidates:
        raise ListError(
            "is empty; expected a header row with an email column",
            where=shown,
            hint="The first row should name the columns: email, first_name, "
            "last_name, practice, role, qi_level.",
        )
    for i in candidates[:10]:
        if any(HEADER_SYNONYMS.get(header_key(c)) == need for c in records[i][1]):
            return i
    found = [c.strip() for c in records[candidates[0]][1] if c.strip()]
    raise ListError(
        f"has no {need} column; the columns found are: "
        f"{', '.join(repr(c) for c in found[:20]) or '(none)'}",
        where=shown,
        hint=f"Name the column '{need}' (or 'Email Address', 'E-mail').",
    )


def header_rows(records: list[tuple[int, list[str]]], h: int) -> tuple[list[str], int]:
    """The header found at ``h``, and how many rows it takes (1 or 2).

    A sheet laid out for people often has a two-row header of merged cells: "Email" and
    "QI level" merged down over both rows, "Name" merged across two columns with "First"
    and "Last" beneath. Read as one header row, the row beneath became a data row (a
    rejected row "email is blank", enough on a short list to stop the send) and the
    unnamed "Last" column was lost. The row under the header is a second header row when
    its email cell is blank, each of its values sits under a merged group (a named cell
    followed by a blank one) and, named from both rows ("First" under "Name": "First
    Name"), at least one of them is one of our columns."""
    top = records[h][1]
    if h + 1 >= len(records):
        return top, 1
    sub = records[h + 1][1]

    def named(j: int) -> bool:
        return j < len(top) and bool(top[j].strip())

    email = next(
        (i for i, c in enumerate(top) if HEADER_SYNONYMS.get(header_key(c)) == "email"), None
    )
    filled = [j for j, c in enumerate(sub) if c.strip()]
    if email is None or (email < len(sub) and sub[email].strip()) or not filled:
        return top, 1
    header = list(top) + [""] * (len(sub) - len(top))
    ours = 0
    for j in filled:
        in_group = not named(j) or (j + 1 < len(sub) and not named(j + 1) and sub[j + 1].strip())
        if "@" in sub[j] or not in_group:
            return top, 1  # a value under a column of its own: a data row
        parent = next((top[k] for k in range(min(j, len(top) - 1), -1, -1) if named(k)), "")
        tried = [f"{sub[j]} {parent}", f"{parent} {sub[j]}"] if parent else [sub[j]]
        known = [t for t in tried if header_key(t) in HEADER_SYNONYMS]
        ours += bool(known)
        header[j] = (known or tried)[0]
    return (header, 2) if ours else (top, 1)


MAX_LIST_BYTES = 200_000_000  # 100,000 rows are about 10 MB


def read_table(path: Path, shown: str, *, need: str = "email", sheet: str | None = None) -> Table:
    """Read a CSV (any common encoding and delimiter) or XLSX file into a Table: from the
    workbook's ``sheet`` if named, else its first sheet with a ``need`` column."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # /dev/zero, a pipe: reading would never end
            raise ListError(
                "is not a file (a device or pipe)",
                where=shown,
                hint="Check the path under 'lists:' in the campaign file.",
            )
        data = b""
        if info.st_size <= MAX_LIST_BYTES:
            with path.open("rb") as f:
                data = f.read(MAX_LIST_BYTES + 1)  # bounded, in case it grows meanwhile
    except FileNotFoundError:
        raise ListError("no such file", where=shown, hint=_nearest_file(path, shown)) from None
    except IsADirectoryError:
        raise ListError("is a folder, not a list file", where=shown) from None
    if info.st_size > MAX_LIST_BYTES or len(data) > MAX_LIST_BYTES:
        raise ListError(
            f"is over {MAX_LIST_BYTES // 1_000_000} MB, larger than any mailing list should be",
            where=shown,
            hint="Check the path under 'lists:' in the campaign file, or split the "
            "list into several files.",
        )
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ListError(
            "is an old Excel .xls workbook",
            where=shown,
            hint="Open it in Excel and save it as .xlsx or CSV (UTF-8).",
        )
    if path.suffix.lower() in (".xlsx", ".xlsm") or data.startswith(b"PK\x03\x04"):
        from .xlsx_lists import read_xlsx  # openpyxl loads only when a workbook comes

        return read_xlsx(data, shown, need, sheet)
    if sheet is not None:
        raise ListError(
            f"is a CSV file, which has no sheets, but the campaign names its sheet {sheet!r}",
            where=shown,
            hint="Remove 'sheet:' from this file's entry under 'lists:' in the campaign.",
        )
    return _read_csv(data, shown, need)


def _nearest_file(path: Path, shown: str) -> str:
    """The hint for a list file that is not there: the file of that folder whose name is
    closest ("practice-staf.csv" -> "practice-staff.csv"; "Staff.CSV" on a system where case
    matters), since a misspelt name is the usual reason."""
    import difflib

    where = "Check the path under 'lists:' in the campaign file."
    try:
        names = sorted(p.name for p in path.parent.iterdir() if p.is_file())
    except OSError:
        return f"There is no folder {Path(shown).parent.as_posix()}/. {where}"
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(path.name.lower(), list(lowered), n=1, cutoff=0.75)
    if not close:
        return where
    nearest = (Path(shown).parent / lowered[close[0]]).as_posix()
    return f"Did you mean {nearest}? {where}"


def _read_csv(data: bytes, shown: str, need: str) -> Table:
    # csv.reader rather than pandas.read_csv here: it carries on after a malformed row and
    # tells us the line each record started on, which the C parser does not.
    text = _decode(data, shown)
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    records: list[tuple[int, list[str]]] = []
    spans: dict[int, int] = {}  # record index -> last line, for records over 2+ lines
    broken: list[Reject] = []
    last_line = 0
    append = records.append
    while True:
        try:
            for cells in reader:  # each record: the line it started on, its cells
                append((last_line + 1, cells))
                if reader.line_num - last_line > 1:
                    spans[len(records) - 1] = reader.line_num
                last_line = reader.line_num
            break
        except csv.Error as exc:  # carry on with the next record
            start = last_line + 1
            last_line = reader.line_num
            reason = (
                "has a value longer than 131,072 characters"
                if "field limit" in str(exc)
                else f"could not be read ({exc})"
            )
            broken.append(Reject(f"{shown}:{start}", reason))
    h = find_header(records, shown, need)
    header, taken = header_rows(records, h)
    width = max((i + 1 for i, c in enumerate(header) if c.strip()), default=1)
    for i, end in spans.items():
        if i >= h:
            _refuse_unclosed_quote(records[i], end, delimiter, width, shown)
    broken = [b for b in broken if int(b.where.rsplit(":", 1)[1]) > records[h + taken - 1][0]]
    rows, wheres = [], []
    for line, cells in records[h + taken :]:
        rows.append(cells)
        wheres.append(f"{shown}:{line}")
    return Table(header, rows, wheres, broken)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _refuse_unclosed_quote(
    record: tuple[int, list[str]], end: int, delimiter: str, width: int, shown: str
) -> None:
    """Raise ListError if a value running over several lines swallowed whole rows.

    A stray opening quote makes csv.reader read every later line, up to the next quote or the
    end of the file, into one value: one rejected row, and the rows it swallowed silently
    gone. A quoted address on two lines is fine; a line inside a value that has a row's worth
    of delimiters and an address in it is a row that was swallowed.
    """
    start, cells = record
    line = start
    for cell in cells:
        parts = _LINE_BREAK.split(cell)
        if any(p.count(delimiter) >= max(width - 1, 1) and "@" in p for p in parts[1:]):
            raise ListError(
                f'line {line}: an opening quote (") is never closed, so lines {start}-{end} '
                "were read as one row; fix the quote",
                where=shown,
                hint="Remove the stray quote, or put the whole value in quotes and write a "
                'quote inside it as two ("").',
            )
        line += len(parts) - 1
