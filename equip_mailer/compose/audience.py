"""Mailing lists in, recipients per segment out.

The lists are exports somebody made from a practice system or a spreadsheet, so reading them
is forgiving about form (encodings, delimiters, header spellings, stray spaces, blank rows)
and strict about content: a row that cannot be mailed is rejected with its file and line,
e.g. ``lists/staff.csv:42: email "bob@@nhs.net" is not a valid address``, and the rows
around it go on. Only when a whole file looks wrong (missing, no email column, too many bad
rows) does reading stop, with a ListError naming the file.

Line numbers are the ones a person sees: the header is line 1 of a CSV (a value with a line
break inside quotes moves later lines down, as in a text editor); XLSX rows are named
``file.xlsx:Sheet1!row 42`` as in the spreadsheet.

Decisions worth knowing:

* A blank or unknown QI level rejects the row (naming it) instead of guessing ``none``:
  a guess would send the wrong menu to someone, and the fix in the file is one word.
* The same address on two rows (any list, any case) is mailed once; the first row wins and
  the later ones are listed as duplicates, not as rejects.
* Suppressed addresses (``lists/suppressions.csv`` plus the store's suppressions, which the
  caller passes in) are always left out, whatever the lists say.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import re
import stat
import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from equip_mailer.errors import ListError

from .spec import QI_LEVELS


@dataclass(frozen=True)
class Recipient:
    email: str  # normalised (email-validator), original case of the local part kept
    first_name: str
    last_name: str
    practice: str
    role: str
    qi_level: str  # one of spec.QI_LEVELS
    source: str  # "lists/practice-staff.csv:12", for messages

    @property
    def key(self) -> str:
        """Case-insensitive identity used for de-duplication, suppression and the ledger."""
        return self.email.lower()


@dataclass(frozen=True)
class Reject:
    where: str  # "lists/practice-staff.csv:42"
    message: str  # 'email "bob@@nhs.net" is not a valid address'

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Audience:
    by_segment: dict[str, list[Recipient]]
    rejects: list[Reject] = field(default_factory=list)
    duplicates: int = 0  # rows dropped because the address appeared earlier
    suppressed: int = 0  # rows dropped because the address is suppressed
    rows_read: int = 0
    # one note per dropped duplicate row, naming the row that was kept (for `check`)
    duplicate_rows: list[Reject] = field(default_factory=list)

    @property
    def recipients(self) -> list[Recipient]:
        return [r for rs in self.by_segment.values() for r in rs]


# ---------------------------------------------------------------------------------------
# Columns and values as people write them

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
}.items():
    for _name in _names:
        HEADER_SYNONYMS[_name] = _column

# normalised QI level value -> spec.QI_LEVELS
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
# 100,000 ordinary addresses do not each pay for a full validation (~20 µs each). Anything outside it
# (unicode, quoted local parts, odd domains) goes through email-validator itself; a test
# checks the two agree on what the regex accepts.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
FAST_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@)(?:{_ATOM}(?:\.{_ATOM})*)@(?=.{{1,253}}$)"
    rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}"
)
_SPECIAL_TLDS = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"


def header_key(text: str) -> str:
    """'E-mail Address ' -> 'emailaddress': the form header synonyms are looked up in."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return re.sub(r"[^a-z0-9]", "", text)


def _shown(value: str, limit: int = 60) -> str:
    value = value.replace("\\", "\\\\").replace('"', '\\"')
    value = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return value if len(value) <= limit else value[:limit] + "…"


# ---------------------------------------------------------------------------------------
# Reading a file into rows, each with the place a person would look for it


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
            best = max(counts, key=counts.get)
            return best if counts[best] else ","
    return ","


def _find_header(records: list[tuple[int, list[str]]], shown: str, need: str) -> int:
    """Index of the header row: the first of the first ten non-blank rows naming ``need``.

    Exports sometimes start with a title line ("Staff list, exported 01/04/2019").
    """
    candidates = [i for i, (_, cells) in enumerate(records) if any(c.strip() for c in cells)]
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


MAX_LIST_BYTES = 200_000_000  # 100,000 rows are about 10 MB


def read_table(path: Path, shown: str, *, need: str = "email") -> Table:
    """Read a CSV (any common encoding and delimiter) or XLSX file into a Table."""
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
        raise ListError(
            "no such file", where=shown, hint="Check the path under 'lists:' in the campaign file."
        ) from None
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
        return _read_xlsx(data, shown, need)
    return _read_csv(data, shown, need)


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
    h = _find_header(records, shown, need)
    header = records[h][1]
    width = max((i + 1 for i, c in enumerate(header) if c.strip()), default=1)
    for i, end in spans.items():
        if i >= h:
            _refuse_unclosed_quote(records[i], end, delimiter, width, shown)
    broken = [b for b in broken if int(b.where.rsplit(":", 1)[1]) > records[h][0]]
    rows, wheres = [], []
    for line, cells in records[h + 1 :]:
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


def _cell_text(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_xlsx(data: bytes, shown: str, need: str) -> Table:
    try:
        with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as book:
            sheet = book.sheet_names[0]
            # na_filter=False: a cell saying "None" (a QI level) or "NA" (a surname) is text.
            frame = pd.read_excel(
                book, sheet_name=sheet, header=None, dtype=object, na_filter=False
            )
    except Exception as exc:  # noqa: BLE001 - a damaged workbook fails in many ways inside openpyxl
        raise ListError(
            f"could not be opened as an Excel workbook ({type(exc).__name__}: {str(exc)[:200]})",
            where=shown,
            hint="Open it in Excel and save it again as .xlsx or CSV (UTF-8).",
        ) from None
    records = [
        (i + 1, [_cell_text(v) for v in row])
        for i, row in enumerate(frame.itertuples(index=False, name=None))
    ]
    h = _find_header(records, shown, need)
    rows = [cells for _, cells in records[h + 1 :]]
    wheres = [f"{shown}:{sheet}!row {line}" for line, _ in records[h + 1 :]]
    return Table(records[h][1], rows, wheres, [])


# ---------------------------------------------------------------------------------------
# Checking rows


def _columns(table: Table) -> dict[str, int]:
    """Our column name -> index in the file; the first of two synonyms wins."""
    found: dict[str, int] = {}
    for i, cell in enumerate(table.header):
        column = HEADER_SYNONYMS.get(header_key(cell))
        if column and column not in found:
            found[column] = i
    return found


_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_CONTROL_RE = re.compile(_CONTROL)


def _clean(value: str) -> str:
    """Trim and collapse whitespace, including Excel's non-breaking and zero-width spaces.

    str.split() also counts line breaks inside a cell (and the separator controls \\x1c-\\x1f,
    \\x85) as whitespace, so those become single spaces rather than rejecting the row.
    """
    return " ".join((value if value.isascii() else value.translate(_ZERO_WIDTH)).split())


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
    return "", f'email "{_shown(value)}" is not a valid address'


# ASCII whitespace that str.split() splits on, besides the single space _clean keeps.
_SPACES = ("\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "  ")


def _clean_column(cells: list[str]) -> list[str]:
    """``_clean`` of every cell. Most columns need nothing (ASCII, no leading, trailing or
    repeated spaces, no other whitespace): that is checked once on the joined column
    (cells joined with NUL, so a space at a cell's edge shows next to one), and the column
    is then returned as it is; otherwise each cell is cleaned."""
    joined = "\0".join(cells)
    if (
        joined.isascii()
        and not joined.startswith(" ")
        and not joined.endswith(" ")
        and " \0" not in joined
        and "\0 " not in joined
        and not any(s in joined for s in _SPACES)
    ):
        return cells
    return [_clean(v) for v in cells]


def _printable_ascii(cells: list[str]) -> bool:
    joined = "".join(cells)
    return joined.isascii() and joined.isprintable()


@contextlib.contextmanager
def gc_paused():
    """No cyclic garbage collection inside (also a decorator). For code that makes ~100,000
    acyclic objects that stay alive (list rows, recipients, a send's batches): reference
    counting frees what they drop, and the collector would only re-scan them, again and
    again, as they pass through its generations. Restored afterwards, as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@gc_paused()
def read_list(path: Path, shown: str) -> tuple[list[Recipient], list[Reject], int]:
    """Read one mailing list: (good recipients in file order, rejected rows, rows read).

    ``shown`` is the name used in messages (the path as the campaign file wrote it).
    Blank rows are skipped and not counted. Raises ListError when the file as a whole
    cannot be used (missing, unreadable, no email or QI level column).

    The checks run a column at a time over plain lists: without pyarrow, pandas' string
    methods loop in Python too, and this way 100,000 rows take about a second.
    """
    table = read_table(path, shown)
    columns = _columns(table)
    if "qi_level" not in columns:
        found = [c.strip() for c in table.header if c.strip()]
        raise ListError(
            f"has no QI level column; the columns found are: "
            f"{', '.join(repr(c) for c in found[:20])}",
            where=shown,
            hint="Add a 'qi_level' column with none, basics or project on each row.",
        )
    keep = [i for i, cells in enumerate(table.rows) if "".join(cells).strip()]
    rows = [table.rows[i] for i in keep]
    wheres = [table.wheres[i] for i in keep]
    n = len(rows)

    def column(name: str) -> list[str]:
        i = columns.get(name)
        if i is None:
            return [""] * n
        return _clean_column([cells[i] if i < len(cells) else "" for cells in rows])

    values = {c: column(c) for c in COLUMNS}
    if "name" in columns:
        # Only a "Name" column: split once at the first space.
        full = [v.split(" ", 1) + [""] for v in column("name")]
        if "first_name" not in columns:
            values["first_name"] = [f[0] for f in full]
        if "last_name" not in columns:
            values["last_name"] = [f[1] for f in full]

    problems: defaultdict[int, list[str]] = defaultdict(list)  # row -> problems (few rows)
    extra_values = (
        "has values to the right of the last named column"
        if path.suffix.lower() in (".xlsx", ".xlsm")
        else "has more values than the header has columns (a value containing the "
        "delimiter needs quotes)"
    )
    # Spreadsheets pad the header with empty cells as wide as the widest row.
    width = max((i + 1 for i, c in enumerate(table.header) if c.strip()), default=0)
    for r, cells in enumerate(rows):
        # More non-empty cells than the header usually means an unquoted delimiter inside a
        # value, which shifts every later column; trailing empty cells are Excel padding.
        if len(cells) > width and "".join(cells[width:]).strip():
            problems[r].append(extra_values)
    for c in COLUMNS:
        cap, col = MAX_FIELD[c], values[c]
        if max(map(len, col), default=0) <= cap and (c == "email" or _printable_ascii(col)):
            continue  # no cell of this column has a problem
        for r, v in enumerate(col):
            if len(v) > cap:
                problems[r].append(f"{c} is {len(v):,} characters long (at most {cap})")
                col[r] = None  # checked no further
            elif c != "email" and not (v.isascii() and v.isprintable()) and _CONTROL_RE.search(v):
                problems[r].append(f"{c} contains a control character")
    emails = values["email"]
    for r, v in enumerate(emails):
        if v is not None:
            emails[r], problem = normalise_email(v)
            if problem:
                problems[r].append(problem)
    levels = values["qi_level"]
    level_of: dict[str, str | None] = {}  # a list holds a handful of spellings
    for r, v in enumerate(levels):
        if v is None:
            continue
        if v not in level_of:
            level_of[v] = LEVEL_SYNONYMS.get(re.sub(r"[^a-z0-9]", "", v.lower()))
        levels[r] = level_of[v]
        if not v:
            problems[r].append("qi_level is blank (use none, basics or project)")
        elif levels[r] is None:
            problems[r].append(f'qi_level "{_shown(v)}" is not one of {", ".join(QI_LEVELS)}')

    recipients: list[Recipient] = []
    rejects = list(table.broken)
    fields = [values[c] for c in COLUMNS]
    for r, row in enumerate(zip(*fields, wheres)):
        if r in problems:
            rejects.append(Reject(wheres[r], "; ".join(problems[r])))
        else:
            recipients.append(Recipient(*row))
    rejects.sort(key=_where_order)
    return recipients, rejects, n + len(table.broken)


def _where_order(reject: Reject) -> tuple:
    m = re.search(r"(\d+)$", reject.where)
    return (reject.where.split(":", 1)[0], int(m.group(1)) if m else 0)


def read_suppressions(path: Path, shown: str) -> set[str]:
    """Lower-cased addresses from a suppression CSV (column ``email``); no file, no entries.

    Rows that fail validation still suppress their text as written: when in doubt, do not mail.
    """
    if not path.exists():
        return set()
    table = read_table(path, shown)
    i = _columns(table)["email"]
    keys: set[str] = set()
    for cells in table.rows:
        value = cells[i].strip() if i < len(cells) else ""
        if not value:
            continue
        keys.add(value.lower())
        try:
            keys.add(validate_email(value, check_deliverability=False).normalized.lower())
        except (EmailNotValidError, Exception):  # noqa: BLE001
            pass
    return keys


def load_audience(campaign, *, suppressed: Iterable[str] = ()) -> Audience:
    """Read every list of a campaign into segments, leaving out suppressed and repeated addresses.

    ``suppressed`` is the store's suppression list (callers pass ``store.suppressed_keys``);
    the campaign's suppression file is read here. A file whose share of rejected rows passes
    ``campaign.lists.max_reject_share`` stops everything: so many bad rows usually mean a
    wrong column or a broken export, and mailing the remainder would miss people silently.
    """
    lists = campaign.lists
    blocked = {s.strip().lower() for s in suppressed if s and s.strip()}
    if lists.suppressions:
        blocked |= read_suppressions(campaign.path(lists.suppressions), lists.suppressions)
    segment_of: dict[tuple[str, str], str | None] = {}  # (level, role) -> segment id
    audience = Audience(by_segment={s.id: [] for s in campaign.segments})
    first_seen: dict[str, str] = {}
    for shown in lists.files:
        recipients, rejects, rows = read_list(campaign.path(shown), shown)
        if rows and len(rejects) / rows > lists.max_reject_share:
            raise ListError(
                f"{len(rejects)} of {rows} rows were rejected ({len(rejects) / rows:.0%}), more "
                f"than the {lists.max_reject_share:.0%} allowed (lists.max_reject_share); "
                f"first: " + "; ".join(str(r) for r in rejects[:3]),
                where=shown,
                hint="Fix the rows named above (or the column headers), then run check again.",
            )
        audience.rows_read += rows
        audience.rejects += rejects
        for r in recipients:
            key = r.key
            if key in first_seen:
                audience.duplicates += 1
                audience.duplicate_rows.append(
                    Reject(r.source, f"same address as {first_seen[key]} (left out)")
                )
                continue
            first_seen[key] = r.source
            if key in blocked:
                audience.suppressed += 1
                continue
            where = (r.qi_level, r.role)
            if where not in segment_of:
                seg = campaign.segment_for(r.qi_level, r.role)
                segment_of[where] = seg.id if seg is not None else None
            segment = segment_of[where]
            if segment is None:
                audience.rejects.append(
                    Reject(r.source, f"no segment takes QI level {r.qi_level!r}")
                )
                continue
            audience.by_segment[segment].append(r)
    return audience
