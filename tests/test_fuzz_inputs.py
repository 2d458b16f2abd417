"""Robustness (issue 7.3): whatever the lists and the spec contain, the answer is a clean
result or an EquipError that names the file (and the line), never another exception; and
bad rows never change what the good rows give.

The budget is modest by default (60 examples per property); ``EQUIP_LONG_TESTS=1`` runs
1,000. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import csv
import io
import os
import re
import tempfile
from collections import Counter
from pathlib import Path

import yaml
from click.testing import CliRunner
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from equip_mailer.cli import main
from equip_mailer.compose.audience import load_audience, read_list
from equip_mailer.compose.campaign import Lists
from equip_mailer.compose.cell_values import FAST_EMAIL, normalise_email
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import EquipError, ListError, SpecError

LONG = os.environ.get("EQUIP_LONG_TESTS") == "1"
BUDGET = settings(
    max_examples=1000 if LONG else 60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL_BUDGET = settings(
    max_examples=300 if LONG else 15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

COLUMNS = ("email", "first_name", "last_name", "practice", "role", "qi_level")
VARIANTS = {
    "email": ["email", "Email Address", "E-mail", "EMAIL", " e_mail ", "Work email"],
    "first_name": ["first_name", "First name", "Forename", "FIRST NAME"],
    "last_name": ["last_name", "Surname", "Last Name", "family-name"],
    "practice": ["practice", "Practice name", "Surgery", "Organisation"],
    "role": ["role", "Job title", "Position"],
    "qi_level": ["qi_level", "QI level", "QI", "qi-experience"],
}
LEVELS = {
    "none": ["none", "None", "new to QI", " NONE "],
    "basics": ["basics", "basic", "Basics", "EQUIP Basics"],
    "project": ["project", "QI project", "Project", "qi-project"],
}
FORMULAS = [
    '=HYPERLINK("http://x","y")',
    "=1+2",
    "+44 20 7946 0000",
    "-2",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
]
CURATED = [
    "Zoë",
    "Siân",
    "José",
    "Fernández",
    "O'Neill",
    "Hall-Jones",
    "Ann",
    "Da Silva",
    "Ærin",
    "Çelik",
]

# Names: letters, marks, digits, punctuation, symbols and spaces from all of unicode, plus
# the curated ones and spreadsheet formulas. No control characters: those reject a row.
name_text = st.one_of(
    st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), max_size=30),
    st.sampled_from(CURATED),
    st.sampled_from(FORMULAS),
)
local_part = st.from_regex(r"[a-z0-9](?:[a-z0-9_+-]|\.(?=[a-z0-9])){0,20}", fullmatch=True)
domain = st.sampled_from(
    ["nhs.example", "example.org", "example.net", "EXAMPLE.ORG", "Nhs.Example"]
)


@st.composite
def good_rows(draw):
    email = f"{draw(local_part)}@{draw(domain)}"
    if draw(st.booleans()):
        email = draw(
            st.sampled_from(["  {} ", "{}", "\u00a0{}", "mailto:{}", "A Person <{}>"])
        ).format(email)
    level = draw(st.sampled_from(sorted(LEVELS)))
    return {
        "email": email,
        "first_name": draw(name_text),
        "last_name": draw(name_text),
        "practice": draw(name_text),
        "role": draw(st.sampled_from(["GP", "Practice nurse", "Citizen", ""])),
        "qi_level": draw(st.sampled_from(LEVELS[level])),
    }


BAD_EMAILS = [
    "bob@@nhs.example",
    "no-at-sign",
    "a@b",
    "a b@example.org",
    "@example.org",
    "x@-bad.example",
    "x@localhost",
    "x@example.test",
    ".a@example.org",
    "a..b@example.org",
    "x@exa_mple.org",
    "x" * 70 + "@example.org",
    "",
    "   ",
]


@st.composite
def bad_rows(draw, columns):
    """A row with one thing wrong, in a column the file has."""
    row = draw(good_rows())
    text_columns = [c for c in columns if c in ("first_name", "last_name", "practice", "role")]
    kinds = ["email", "giant", "level", "blank-level", "ragged"] + (
        ["long", "control"] if text_columns else []
    )
    kind = draw(st.sampled_from(kinds))
    if kind == "email":
        row["email"] = draw(st.sampled_from(BAD_EMAILS))
    elif kind == "long":
        row[draw(st.sampled_from(text_columns))] = "A" * draw(st.integers(201, 5000))
    elif kind == "giant":  # over the csv module's 131,072-character field limit
        row[draw(st.sampled_from(columns))] = "P" * 140_000
    elif kind == "control":
        row[draw(st.sampled_from(text_columns))] = draw(
            st.sampled_from(["Bo\x07b", "\x00", "Smi\x1bth", "X\x9b", "\x7f"])
        )
    elif kind == "level":
        row["qi_level"] = draw(st.sampled_from(["expert", "3", "maybe", "QI guru", "nonee"]))
    elif kind == "blank-level":
        row["qi_level"] = ""
    else:
        row["_extra"] = draw(st.lists(st.sampled_from(["x", "Bow", "1"]), min_size=1, max_size=3))
    return row


@st.composite
def list_files(draw):
    """(rows tagged good/bad/blank, format) for one CSV file."""
    columns = list(draw(st.permutations(COLUMNS)))
    keep_optional = draw(st.sets(st.sampled_from(["first_name", "last_name", "practice", "role"])))
    drop_required = draw(st.sampled_from([None] * 8 + ["email", "qi_level"]))
    columns = [
        c
        for c in columns
        if (c in ("email", "qi_level") or c in keep_optional) and c != drop_required
    ]
    tagged = draw(
        st.lists(
            st.one_of(
                good_rows().map(lambda r: ("good", r)),
                bad_rows(columns).map(lambda r: ("bad", r)),
                st.just(("blank", None)),
            ),
            max_size=25,
        )
    )
    fmt = {
        "columns": columns,
        "header": {c: draw(st.sampled_from(VARIANTS[c])) for c in columns},
        "delimiter": draw(st.sampled_from([",", ";", "\t", "|"])),
        "line_end": draw(st.sampled_from(["\n", "\r\n"])),
        "encoding": draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"])),
    }
    return tagged, fmt


def render_csv(tagged, fmt) -> tuple[bytes, list[int]]:
    """The file's bytes and the line of every bad row (header is line 1)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=fmt["delimiter"], lineterminator=fmt["line_end"])
    writer.writerow([fmt["header"][c] for c in fmt["columns"]])
    bad_lines = []
    for line, (tag, row) in enumerate(tagged, start=2):
        if tag == "blank":
            out.write(fmt["line_end"])
            continue
        if tag == "bad":
            bad_lines.append(line)
        cells = [row[c] for c in fmt["columns"]]
        if row.get("_extra"):
            cells += row["_extra"]
        writer.writerow(cells)
    text = out.getvalue()
    try:
        return text.encode(fmt["encoding"]), bad_lines
    except UnicodeEncodeError:
        return text.encode("utf-8"), bad_lines


def consistent_encoding(tagged, fmt) -> dict:
    """Windows-1252 is recognised by UTF-8 failing to decode; if the good rows alone happen
    to be valid UTF-8 (but not ASCII), no reader could tell the two files apart, so those
    examples use UTF-8."""
    if fmt["encoding"] != "cp1252":
        return fmt
    good_only, _ = render_csv([t for t in tagged if t[0] == "good"], fmt)
    try:
        good_only.decode("utf-8")
    except UnicodeDecodeError:
        return fmt
    return fmt if good_only.isascii() else {**fmt, "encoding": "utf-8"}


def as_tuples(recipients) -> list[tuple]:
    return [
        (r.email, r.first_name, r.last_name, r.practice, r.role, r.qi_level) for r in recipients
    ]


def test_fuzzed_lists_give_located_rejects_and_never_disturb_good_rows():
    stats = Counter()

    @BUDGET
    @given(list_files())
    def check(example):
        tagged, fmt = example
        fmt = consistent_encoding(tagged, fmt)
        data, bad_lines = render_csv(tagged, fmt)
        good_data, _ = render_csv([t for t in tagged if t[0] == "good"], fmt)
        with tempfile.TemporaryDirectory() as folder:
            path, good_path = Path(folder) / "staff.csv", Path(folder) / "good.csv"
            path.write_bytes(data)
            good_path.write_bytes(good_data)
            missing = not {"email", "qi_level"} <= set(fmt["columns"])
            try:
                recipients, rejects, rows = read_list(path, "lists/staff.csv")
            except ListError as exc:
                stats["whole-file errors"] += 1
                assert str(exc).startswith("lists/staff.csv: "), exc
                assert missing, exc
                return
            if missing:  # a data cell such as "Email" was taken for the header
                stats["header found in data"] += 1
                return
            good, _, good_rows_read = read_list(good_path, "lists/good.csv")
            stats["examples"] += 1
            stats["rows"] += rows
            stats["rejects"] += len(rejects)
            assert as_tuples(recipients) == as_tuples(good)
            assert good_rows_read == len(good) == sum(t == "good" for t, _ in tagged)
            assert [r.where for r in rejects] == [f"lists/staff.csv:{line}" for line in bad_lines]
            assert all(r.message and "\n" not in r.message for r in rejects)
            assert rows == len(good) + len(rejects)

    check()
    print(
        f"\nfuzzed lists: {stats['examples']} files read, {stats['rows']} rows, "
        f"{stats['rejects']} rejects, {stats['whole-file errors']} whole-file errors"
    )
    assert stats["examples"] > 0 and stats["rejects"] > 0


def test_fuzzed_workbooks_name_sheet_rows_and_keep_good_rows():
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    stats = Counter()

    def save(path, tagged, columns):
        book = Workbook()
        sheet = book.active
        sheet.title = "Staff"
        sheet.append(columns)
        for _tag, row in tagged:
            sheet.append([] if row is None else [row[c] for c in columns] + row.get("_extra", []))
        book.save(path)

    @SMALL_BUDGET
    @given(list_files())
    def check(example):
        tagged, fmt = example
        columns = fmt["columns"]
        if not {"email", "qi_level"} <= set(columns):
            return
        # Excel cells cannot hold control characters at all, and 140,000 characters is over
        # a cell's limit: those bad rows cannot occur in a workbook.
        if any(
            row
            and any(
                isinstance(v, str) and (ILLEGAL_CHARACTERS_RE.search(v) or len(v) > 32767)
                for v in row.values()
            )
            for _, row in tagged
        ):
            return
        with tempfile.TemporaryDirectory() as folder:
            path, good_path = Path(folder) / "staff.xlsx", Path(folder) / "good.xlsx"
            save(path, tagged, columns)
            save(good_path, [t for t in tagged if t[0] == "good"], columns)
            recipients, rejects, rows = read_list(path, "lists/staff.xlsx")
            good, _, _ = read_list(good_path, "lists/good.xlsx")
        expected = [
            f"lists/staff.xlsx:Staff!row {n}"
            for n, (tag, _) in enumerate(tagged, start=2)
            if tag == "bad"
        ]
        assert as_tuples(recipients) == as_tuples(good)
        assert [r.where for r in rejects] == expected
        stats["workbooks"] += 1
        stats["rejects"] += len(rejects)

    check()
    print(f"\nfuzzed workbooks: {dict(stats)}")
    assert stats["workbooks"] > 0


def test_arbitrary_bytes_are_read_or_refused_by_name():
    outcomes = Counter()

    @BUDGET
    @given(
        st.binary(max_size=400),
        st.sampled_from(["staff.csv", "staff.xlsx"]),
        st.sampled_from([b"", b"email,qi_level\n", b"\xef\xbb\xbfE-mail;QI\r\n", b"PK\x03\x04"]),
    )
    def check(tail, name, head):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            path.write_bytes(head + tail)
            try:
                recipients, rejects, rows = read_list(path, f"lists/{name}")
            except ListError as exc:
                outcomes["refused"] += 1
                assert str(exc).startswith(f"lists/{name}: ")
                return
            outcomes["read"] += 1
            assert rows == len(recipients) + len(rejects)
            assert all(r.where.startswith(f"lists/{name}:") for r in rejects)

    check()
    print(f"\narbitrary bytes: {dict(outcomes)}")
    assert sum(outcomes.values()) > 0


def test_fuzzed_audience_counts_duplicates_and_keeps_good_rows(demo_path):
    campaign = load_campaign(demo_path, allow_past=True)
    stats = Counter()

    @SMALL_BUDGET
    @given(st.lists(st.tuples(good_rows(), st.booleans()), min_size=1, max_size=20), st.data())
    def check(rows, data):
        # Some rows repeat an earlier address in another case: those are duplicates.
        seen: list[str] = []
        written = []
        for row, repeat in rows:
            if repeat and seen:
                row = {**row, "email": data.draw(st.sampled_from(seen)).upper()}
            seen.append(normalise_email(" ".join(row["email"].split()))[0])
            written.append(row)
        fmt = {
            "columns": list(COLUMNS),
            "header": {c: c for c in COLUMNS},
            "delimiter": ",",
            "line_end": "\n",
            "encoding": "utf-8",
        }
        with tempfile.TemporaryDirectory() as folder:
            first = Path(folder) / "a.csv"
            first.write_bytes(render_csv([("good", r) for r in written], fmt)[0])
            lists = Lists(files=[str(first)], suppressions=None, max_reject_share=1)
            audience = load_audience(campaign.model_copy(update={"lists": lists}))
        unique = len({s.lower() for s in seen})
        stats["examples"] += 1
        stats["duplicates"] += audience.duplicates
        assert len(audience.recipients) == unique
        assert audience.duplicates == len(written) - unique == len(audience.duplicate_rows)

    check()
    print(
        f"\nfuzzed audiences: {stats['examples']} examples, {stats['duplicates']} duplicates found"
    )
    assert stats["examples"] > 0


atext = "abcXYZ0189!#$%&'*+/=?^_`{|}~-"
addresses = st.builds(
    lambda atoms, labels, tld: ".".join(atoms) + "@" + ".".join(labels + [tld]),
    st.lists(st.text(st.sampled_from(atext), min_size=1, max_size=30), min_size=1, max_size=4),
    st.lists(
        st.from_regex(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True),
        min_size=1,
        max_size=3,
    ),
    st.one_of(
        st.from_regex(r"[A-Za-z]{2,8}", fullmatch=True),
        st.sampled_from(["test", "local", "localhost", "invalid", "onion", "arpa", "TEST"]),
    ),
)


@settings(max_examples=2000 if LONG else 300, deadline=None)
@given(addresses)
@example("0@00--0.AA")  # "--" in a label's 3rd-4th characters: reserved for IDNA, refused
@example("reader@xn--bcher-kva.example")  # ... unless it is valid punycode (bücher)
def test_fast_address_path_agrees_with_email_validator(address):
    fast, problem = normalise_email(address)
    try:
        expected = validate_email(address, check_deliverability=False, strict=True).normalized
    except EmailNotValidError:
        expected = ""
    assert fast == expected, (address, problem, bool(FAST_EMAIL.fullmatch(address)))


# ---------------------------------------------------------------------------------------
# Specs

DEMO_DATA = yaml.safe_load(
    (
        Path(__file__).resolve().parent.parent / "campaigns" / "2019-04-equip-training.yaml"
    ).read_text(encoding="utf-8")
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


SPEC_PATHS = [p for p in _paths(DEMO_DATA) if p]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.dates(),
    st.datetimes(),
    st.sampled_from(
        [
            "13:00",
            "9:00",
            "25:61",
            "2019-06-31",
            "none",
            "yes please",
            "[none]",
            "https://",
            "a@@b",
            "{first_name}",
            "- x",
            ":",
            "%",
            "!!python/object",
        ]
    ),
)


def _containers(inner):
    return st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    )


values = st.recursive(scalars, _containers, max_leaves=6)


def _replace(data, path, new):
    import copy

    data = copy.deepcopy(data)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return data


def assert_located(exc: EquipError, shown: str) -> None:
    lines = exc.problems if isinstance(exc, SpecError) else [str(exc)]
    assert lines, exc
    for line in lines:
        assert line.startswith(f"{shown}:"), line


def test_fuzzed_specs_load_or_fail_with_located_problems(tmp_path):
    stats = Counter()
    path = tmp_path / "campaigns" / "fuzz.yaml"
    path.parent.mkdir()

    @BUDGET
    @given(st.lists(st.tuples(st.sampled_from(SPEC_PATHS), values), min_size=1, max_size=3))
    def check(changes):
        data = DEMO_DATA
        for where, new in changes:
            try:
                data = _replace(data, where, new)
            except (KeyError, IndexError, TypeError):
                continue  # an earlier change removed this path
        path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
        try:
            load_campaign(path, allow_past=True)
            stats["loaded"] += 1
        except SpecError as exc:
            stats["refused"] += 1
            stats["problems"] += len(exc.problems)
            assert_located(exc, str(path))
            assert all(re.match(rf"{re.escape(str(path))}:\d+: ", p) for p in exc.problems), (
                exc.problems
            )

    check()
    print(f"\nfuzzed specs: {dict(stats)}")
    assert stats["refused"] > 0


def test_mangled_spec_text_never_escapes_as_a_traceback(tmp_path, demo_path):
    text = demo_path.read_text(encoding="utf-8")
    path = tmp_path / "campaigns" / "mangled.yaml"
    path.parent.mkdir()
    stats = Counter()

    @BUDGET
    @given(
        st.integers(0, len(text)),
        st.integers(0, 40),
        st.lists(
            st.sampled_from(list(":-[]{}\"'|>&*!%@#`,?\t\n ") + ["  ", "13:00", "no", "~"]),
            max_size=6,
        ).map("".join),
    )
    def check(at, cut, insert):
        path.write_text(text[:at] + insert + text[at + cut :], encoding="utf-8")
        try:
            load_campaign(path, allow_past=True)
            stats["loaded"] += 1
        except SpecError as exc:
            stats["refused"] += 1
            assert_located(exc, str(path))

    check()
    print(f"\nmangled spec text: {dict(stats)}")
    assert sum(stats.values()) > 0


def test_check_command_on_fuzzed_specs_exits_cleanly(tmp_path):
    import shutil

    root = Path(__file__).resolve().parent.parent
    shutil.copytree(root / "lists", tmp_path / "lists")
    shutil.copytree(root / "templates", tmp_path / "templates")
    path = tmp_path / "campaigns" / "fuzz.yaml"
    path.parent.mkdir()
    codes = Counter()

    @SMALL_BUDGET
    @given(st.sampled_from(SPEC_PATHS), values)
    def check(where, new):
        path.write_text(
            yaml.safe_dump(_replace(DEMO_DATA, where, new), allow_unicode=True), encoding="utf-8"
        )
        result = CliRunner().invoke(
            main,
            ["check", str(path), "--allow-past"],
            env={"EQUIP_DATABASE_URL": f"sqlite:///{tmp_path / 'none.db'}"},
        )
        assert result.exit_code in (0, 1), result.output
        assert not result.exception or isinstance(result.exception, SystemExit), result.exception
        assert "Traceback" not in result.output
        codes[result.exit_code] += 1

    check()
    print(f"\ncheck on fuzzed specs: exit codes {dict(codes)}")
    assert sum(codes.values()) > 0
