"""Mailing lists in, recipients per segment out: which rows become readers, and of which email.

Reading a file is ``list_files``' job and normalising one value ``cell_values``'; here a row
becomes a ``Recipient`` or a ``Reject``. Reading is strict about content: a row that cannot
be mailed is rejected with its file and line, e.g. ``lists/staff.csv:42: email "bob@@nhs.net"
is not a valid address``, and the rows around it go on. Only when a whole file looks wrong
(missing, no email or QI level column, too many bad rows) does reading stop, with a ListError
naming the file.

Decisions worth knowing:

* A blank or unknown QI level rejects the row (naming it) instead of guessing ``none``:
  a guess would send the wrong menu to someone, and the fix in the file is one word.
* The same address on two rows (any list, any case) is mailed once; the first row wins and
  the later ones are listed as duplicates, not as rejects.
* Suppressed addresses (``lists/suppressions.csv`` plus the store's suppressions, which the
  caller passes in) are always left out, whatever the lists say.
* With ``people`` (``people.records``), a person's QI level is the higher of the list's and
  the one their training earned, and an address erased by ``forget`` is left out like a
  suppressed one.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from email_validator import EmailNotValidError, validate_email

from equip_mailer.errors import ListError

from .campaign import Campaign, level_rank
from .cell_values import (
    CONTROL_RE,
    LEVEL_SYNONYMS,
    MAX_FIELD,
    clean_column,
    level_key,
    normalise_email,
    shown_value,
)
from .list_files import COLUMNS, Reject, column_indexes, read_table
from .names import split_name, title_of


@dataclass(frozen=True)
class Recipient:
    email: str  # normalised (email-validator), original case of the local part kept
    first_name: str
    last_name: str
    practice: str
    role: str
    qi_level: str  # one of campaign.QI_LEVELS
    source: str  # "lists/practice-staff.csv:12", for messages

    @property
    def key(self) -> str:
        """Case-insensitive identity used for de-duplication, suppression and the ledger."""
        return self.email.lower()


class KnownPeople(Protocol):
    """What the store knows of people (``people.records.PeopleRecords``)."""

    def level(self, key: str) -> Any | None: ...  # a record with ``.level``, or None

    def erased(self, key: str) -> bool: ...


@dataclass
class Audience:
    by_segment: dict[str, list[Recipient]]
    rejects: list[Reject] = field(default_factory=list)
    duplicates: int = 0  # rows dropped because the address appeared earlier
    suppressed: int = 0  # rows dropped because the address is suppressed
    suppressed_by_store: int = 0  # of those, rows only the store suppressed (not the file)
    # addresses on the lists that the campaign's suppression file left out: the ledger marks
    # them suppressed (not "off the lists"), so status says why they were not mailed
    file_suppressed: set[str] = field(default_factory=set)
    rows_read: int = 0
    # one note per dropped duplicate row, naming the row that was kept (for `check`)
    duplicate_rows: list[Reject] = field(default_factory=list)
    # (address key, the record that raised them above their list's level), for `check`
    raised: list[tuple[str, Any]] = field(default_factory=list)
    # segment id -> role -> readers who reached that segment only because no segment names
    # their role (its catch-all), for `check`: a "Salaried GP" in the non-clinical version
    catch_all_roles: dict[str, Counter[str]] = field(default_factory=dict)
    # one sentence per list with more bad rows than lists.max_reject_share allows (only
    # when load_audience was asked to read on; otherwise it raised at the first)
    over_reject_share: list[str] = field(default_factory=list)
    # lists with a header and not one row under it (a file saved before the rows were
    # pasted in, an export of an empty view), for `check`: nobody on them is mailed
    empty_files: list[str] = field(default_factory=list)

    @property
    def recipients(self) -> list[Recipient]:
        return [r for rs in self.by_segment.values() for r in rs]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
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
def read_list(
    path: Path,
    shown: str,
    level_names: Mapping[str, str] | None = None,
    sheet: str | None = None,
) -> tuple[list[Recipient], list[Reject], int]:
    """Read one mailing list: (good recipients in file order, rejected rows, rows read).

    ``shown`` is the name used in messages (the path as the campaign file wrote it).
    Blank rows are skipped and not counted. Raises ListError when the file as a whole
    cannot be used (missing, unreadable, no email or QI level column).

    The checks run a column at a time over plain lists: without pyarrow, pandas' string
    methods loop in Python too, and this way 100,000 rows take about a second.
    """
    table = read_table(path, shown, sheet=sheet)
    columns = column_indexes(table)
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
    values = _column_values(rows, columns)
    problems: defaultdict[int, list[str]] = defaultdict(list)  # row -> problems (few rows)
    _check_widths(rows, table.header, path, problems)
    too_long = _check_text(values, problems)
    _normalise_emails(values["email"], too_long["email"], problems)
    _normalise_levels(values["qi_level"], too_long["qi_level"], problems, level_names or {})

    recipients: list[Recipient] = []
    rejects = list(table.broken)
    fields = [values[c] for c in COLUMNS]
    for r, row in enumerate(zip(*fields, wheres, strict=True)):
        if r in problems:
            rejects.append(Reject(wheres[r], "; ".join(problems[r])))
        else:
            recipients.append(Recipient(*row))
    rejects.sort(key=_where_order)
    return recipients, rejects, len(rows) + len(table.broken)


def _column_values(rows: list[list[str]], columns: dict[str, int]) -> dict[str, list[str]]:
    """Each of our columns as a list of cleaned cells ("" where the file has no such column)."""
    n = len(rows)
    shortest = min(map(len, rows), default=0)  # a column every row reaches needs no check

    def column(name: str) -> list[str]:
        i = columns.get(name)
        if i is None:
            return [""] * n
        if i < shortest:
            return clean_column(list(map(itemgetter(i), rows)))
        return clean_column([cells[i] if i < len(cells) else "" for cells in rows])

    values = {c: column(c) for c in COLUMNS}
    if "name" in columns:
        # Only a "Name" column: "Dr Vik Patel" is Vik and Patel. The title is left out: a
        # reader has no place for it (nor has the ledger), and the newsletter greets by first
        # name, so keeping it as the first name would greet them "Dear Dr,". With no first
        # name to greet by ("Mrs Patel"), the first name is how to address them, title and
        # surname: the newsletter then says "Dear Mrs Patel,", the To: line and the sign-up
        # form (first + last name) "Mrs Patel", and so do the mails about their place.
        full = [split_name(v) for v in column("name")]
        bare = [not f.first and f.title and f.last for f in full]
        if "first_name" not in columns:
            values["first_name"] = [
                f"{f.title} {f.last}" if b else f.first for f, b in zip(full, bare, strict=True)
            ]
        if "last_name" not in columns:
            values["last_name"] = ["" if b else f.last for f, b in zip(full, bare, strict=True)]
    if "title" in columns:
        # A Title column beside a surname and no first name (a practice's staff export,
        # "Dr | | Patel"): addressed as with a Name column, "Dear Dr Patel,". Beside a first
        # name the title is left out, as above.
        firsts, lasts = values["first_name"], values["last_name"]
        for r, text in enumerate(column("title")):
            if text and not firsts[r] and lasts[r] and (title := title_of(text)):
                firsts[r], lasts[r] = f"{title} {lasts[r]}", ""
    return values


def _check_widths(
    rows: list[list[str]], header: list[str], path: Path, problems: dict[int, list[str]]
) -> None:
    """Note the rows with values to the right of the header's last named column."""
    extra_values = (
        "has values to the right of the last named column"
        if path.suffix.lower() in (".xlsx", ".xlsm")
        else "has more values than the header has columns (a value containing the "
        "delimiter needs quotes)"
    )
    # Spreadsheets pad the header with empty cells as wide as the widest row.
    width = max((i + 1 for i, c in enumerate(header) if c.strip()), default=0)
    for r, cells in enumerate(rows):
        # More non-empty cells than the header usually means an unquoted delimiter inside a
        # value, which shifts every later column; trailing empty cells are Excel padding.
        if len(cells) > width and "".join(cells[width:]).strip():
            problems[r].append(extra_values)


def _check_text(
    values: dict[str, list[str]], problems: dict[int, list[str]]
) -> dict[str, set[int]]:
    """Note over-long values and control characters; return, per column, the rows whose
    value is too long to be checked any further."""
    too_long: dict[str, set[int]] = {c: set() for c in COLUMNS}
    for c in COLUMNS:
        cap, col = MAX_FIELD[c], values[c]
        # One search over the whole column (joined with a space, which is no control
        # character) instead of one per cell: a column of names is rarely plain ASCII.
        if max(map(len, col), default=0) <= cap and (
            c == "email" or not CONTROL_RE.search(" ".join(col))
        ):
            continue  # no cell of this column has a problem
        for r, v in enumerate(col):
            if len(v) > cap:
                problems[r].append(f"{c} is {len(v):,} characters long (at most {cap})")
                too_long[c].add(r)
            elif c != "email" and not (v.isascii() and v.isprintable()) and CONTROL_RE.search(v):
                problems[r].append(f"{c} contains a control character")
    return too_long


def _normalise_emails(emails: list[str], skip: set[int], problems: dict[int, list[str]]) -> None:
    """Each address in its normalised form, in place; a bad one is a problem of its row."""
    for r, v in enumerate(emails):
        if r not in skip:
            emails[r], problem = normalise_email(v)
            if problem:
                problems[r].append(problem)


def _normalise_levels(
    levels: list[str],
    skip: set[int],
    problems: dict[int, list[str]],
    level_names: Mapping[str, str],
) -> None:
    """Each QI level as one of QI_LEVELS, in place; a blank or unknown one is a problem.
    ``level_names`` adds spellings (level_key -> level): the campaign's segment names."""
    level_of: dict[str, str] = {}  # a list holds a handful of spellings ("" when unknown)
    for r, v in enumerate(levels):
        if r in skip:
            continue
        if v not in level_of:
            key = level_key(v)
            level_of[v] = LEVEL_SYNONYMS.get(key) or level_names.get(key, "")
        levels[r] = level_of[v]
        if not v:
            problems[r].append("qi_level is blank (use none, basics or project)")
        elif not levels[r]:
            problems[r].append(
                f'qi_level "{shown_value(v)}" is not a QI level (none, basics or project; '
                f"lists/README.md lists every spelling accepted)"
            )


def _where_order(reject: Reject) -> tuple[str, int]:
    m = re.search(r"(\d+)$", reject.where)
    return (reject.where.split(":", 1)[0], int(m.group(1)) if m else 0)


def file_suppressions(campaign: Campaign) -> set[str]:
    """The addresses of the campaign's suppression file (none when it names no file)."""
    lists = campaign.lists
    if not lists.suppressions:
        return set()
    return read_suppressions(
        campaign.path(lists.suppressions),
        lists.suppressions,
        named="suppressions" in lists.model_fields_set,
    )


def read_suppressions(path: Path, shown: str, *, named: bool = False) -> set[str]:
    """Lower-cased addresses from a suppression CSV (column ``email``).

    The default file may be absent (no file, no entries), but one the campaign names must be
    there: a misspelt path would otherwise mail everyone it lists, who asked not to be mailed.
    Rows that fail validation still suppress their text as written: when in doubt, do not mail.
    """
    if not path.exists():
        if named:
            raise ListError(
                "no such file (it is the campaign's suppression file: without it, the "
                "people it lists would be mailed)",
                where=shown,
                hint="Correct 'suppressions:' under 'lists:' in the campaign file, or write "
                "'suppressions: null' if there is no suppression file.",
            )
        return set()
    table = read_table(path, shown)
    i = column_indexes(table)["email"]
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


def segment_level_names(campaign: Campaign) -> dict[str, str]:
    """The campaign's segment names as QI level spellings ("Running a QI project" ->
    project), for segments of one level: a list may well use the names the emails use."""
    return {
        level_key(s.name): s.qi_levels[0]
        for s in campaign.segments
        if len(set(s.qi_levels)) == 1 and level_key(s.name)
    }


@gc_paused()
def load_audience(
    campaign: Campaign,
    *,
    suppressed: Iterable[str] = (),
    people: KnownPeople | None = None,
    read_on: bool = False,
) -> Audience:
    """Read every list of a campaign into segments, leaving out suppressed and repeated addresses.

    ``suppressed`` is the store's suppression list (callers pass ``store.suppressed_keys``);
    the campaign's suppression file is read here. A file whose share of rejected rows passes
    ``campaign.lists.max_reject_share`` stops everything: so many bad rows usually mean a
    wrong column or a broken export, and mailing the remainder would miss people silently.
    With ``read_on`` (``check``) every list is read anyway and the verdicts are kept in
    ``over_reject_share``, so every bad row can be shown before the verdict.
    """
    lists = campaign.lists
    level_names = segment_level_names(campaign)
    by_store = {s.strip().lower() for s in suppressed if s and s.strip()}
    by_file = file_suppressions(campaign)
    # (level, role) -> (segment id, whether it took them as its catch-all)
    segment_of: dict[tuple[str, str], tuple[str, bool] | None] = {}
    audience = Audience(by_segment={s.id: [] for s in campaign.segments})
    first_seen: dict[str, str] = {}
    for shown in lists.files:
        recipients, rejects, rows = read_list(
            campaign.path(shown), shown, level_names, lists.sheet(shown)
        )
        if rows and len(rejects) / rows > lists.max_reject_share:
            verdict = (
                f"{shown}: {len(rejects)} of {rows} rows were rejected "
                f"({len(rejects) / rows:.0%}), more than the {lists.max_reject_share:.0%} "
                "allowed (lists.max_reject_share)"
            )
            if not read_on:
                raise ListError(
                    verdict.removeprefix(f"{shown}: ")
                    + "; first: "
                    + "; ".join(str(r) for r in rejects[:3]),
                    where=shown,
                    hint="Fix the rows named above (or the column headers), then run check again.",
                )
            audience.over_reject_share.append(verdict)
        if not rows:
            audience.empty_files.append(shown)
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
            if key in by_file:
                audience.suppressed += 1
                audience.file_suppressed.add(key)
                continue
            if key in by_store or (people is not None and people.erased(key)):
                audience.suppressed += 1
                audience.suppressed_by_store += 1
                continue
            if people is not None and (known := people.level(key)) is not None:
                if level_rank(known.level) > level_rank(r.qi_level):
                    r = replace(r, qi_level=known.level)
                    audience.raised.append((key, known))
            where = (r.qi_level, r.role)
            if where not in segment_of:
                seg = campaign.segment_for(r.qi_level, r.role)
                segment_of[where] = (seg.id, seg.roles is None) if seg is not None else None
            placed = segment_of[where]
            if placed is None:
                audience.rejects.append(
                    Reject(r.source, f"no segment takes QI level {r.qi_level!r}")
                )
                continue
            segment, catch_all = placed
            audience.by_segment[segment].append(r)
            if catch_all:
                roles = audience.catch_all_roles.get(segment)
                if roles is None:
                    roles = audience.catch_all_roles[segment] = Counter()
                roles[r.role] += 1
    return audience
