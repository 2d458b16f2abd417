"""Reading mailing lists as they really arrive: each test writes a real file in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest
import yaml

from equip_mailer import synthetic
from equip_mailer.compose.audience import load_audience, normalise_email, read_list
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import ListError

HEADER = "email,first_name,last_name,practice,role,qi_level"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def campaign_with(
    tmp_path: Path,
    demo_path: Path,
    files: dict[str, str],
    *,
    suppressions: str | None = None,
    max_reject_share: float = 0.05,
    extra_segments: list[dict] = (),
):
    """The demo campaign, moved to tmp_path with its own lists (``{name: csv text}``)."""
    spec = yaml.safe_load(demo_path.read_text(encoding="utf-8"))
    spec["segments"] = list(extra_segments) + spec["segments"]
    for name, text in files.items():
        write(tmp_path / "lists" / name, text)
    if suppressions is not None:
        write(tmp_path / "lists" / "suppressions.csv", suppressions)
    spec["lists"] = {
        "files": [f"lists/{name}" for name in files],
        "suppressions": "lists/suppressions.csv",
        "max_reject_share": max_reject_share,
    }
    path = tmp_path / "campaigns" / "test.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load_campaign(path, allow_past=True)


def test_spreadsheet_export_with_bom_crlf_and_header_variants(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        "\ufeffEmail Address,First name,Surname,Practice name,Job title,QI level\r\n"
        "ann.smith@nhs.example,Ann,Smith,Example Street Surgery,GP,None\r\n"
        "bilal.khan@nhs.example,Bilal,Khan,Sample Road Medical Centre,Practice nurse,Basics\r\n",
    )
    recipients, rejects, rows = read_list(path, "lists/staff.csv")
    assert rejects == []
    assert rows == 2
    ann, bilal = recipients
    assert (ann.email, ann.first_name, ann.last_name, ann.practice, ann.role, ann.qi_level) == (
        "ann.smith@nhs.example",
        "Ann",
        "Smith",
        "Example Street Surgery",
        "GP",
        "none",
    )
    assert bilal.qi_level == "basics"
    assert bilal.source == "lists/staff.csv:3"


@pytest.mark.parametrize(
    "header",
    [
        "E-mail,Forename,Family name,Surgery,Role,QI",
        "EMAIL ADDRESS , FIRST NAME , LAST NAME , PRACTICE , JOB TITLE , QI LEVEL",
        "e_mail,given_name,surname,organisation,position,qi-experience",
    ],
)
def test_header_spellings_map_to_the_same_columns(tmp_path, header):
    path = write(
        tmp_path / "staff.csv", f"{header}\nann@nhs.example,Ann,Smith,Example Surgery,GP,project\n"
    )
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert (ann.first_name, ann.last_name, ann.practice, ann.role, ann.qi_level) == (
        "Ann",
        "Smith",
        "Example Surgery",
        "GP",
        "project",
    )


def test_windows_1252_export_keeps_accented_names(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\r\nzoe@nhs.example,Zoë,Brown,X,GP,none\r\nsian@nhs.example,Siân,Evans,X,GP,none\r\n",
        encoding="cp1252",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert [r.first_name for r in recipients] == ["Zoë", "Siân"]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    text = (HEADER + "\n" + 'ann@nhs.example,Ann,Smith,"Surgery, Bow",GP,basics\n').replace(
        ",", delimiter
    )
    text = text.replace(f"Surgery{delimiter} Bow", "Surgery, Bow")
    path = write(tmp_path / "staff.csv", text)
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert ann.practice == "Surgery, Bow"


def test_blank_rows_are_skipped_but_line_numbers_stay_as_in_the_file(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\n\nann@nhs.example,Ann,Smith,X,GP,none\n,,,,,\n\nbob@@nhs.example,Bob,Jones,X,GP,none\n",
    )
    recipients, rejects, rows = read_list(path, "lists/staff.csv")
    assert [r.source for r in recipients] == ["lists/staff.csv:3"]
    assert [str(r) for r in rejects] == [
        'lists/staff.csv:6: email "bob@@nhs.example" is not a valid address'
    ]
    assert rows == 2


def test_a_quoted_line_break_moves_later_lines_down_as_in_an_editor(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER}\r\nann@nhs.example,Ann,Smith,"Example Surgery\r\nUnit 2",GP,none\r\nbad,B,J,X,GP,none\r\n',
    )
    [ann], [reject], _ = read_list(path, "staff.csv")
    assert ann.practice == "Example Surgery Unit 2"
    assert reject.where == "staff.csv:4"


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


def test_blank_or_unknown_qi_level_rejects_the_row_by_name(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\nann@nhs.example,Ann,Smith,X,GP,\nbob@nhs.example,Bob,Jones,X,GP,expert\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert recipients == []
    assert [str(r) for r in rejects] == [
        "staff.csv:2: qi_level is blank (use none, basics or project)",
        'staff.csv:3: qi_level "expert" is not one of none, basics, project',
    ]


def test_xlsx_rows_are_named_by_sheet_and_row(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Staff"
    sheet.append(["Email", "First name", "Surname", "Practice", "Role", "QI level"])
    sheet.append(["ann@nhs.example", "Ann", "Smith", "Example Surgery", "GP", "basics"])
    sheet.append([])
    sheet.append(["not-an-address", "Bob", "Jones", "Example Surgery", "GP", 2])
    sheet.append(["cat@nhs.example", "Cat", "Lee", "Example Surgery", "GP", 2])
    book.save(tmp_path / "staff.xlsx")
    recipients, rejects, rows = read_list(tmp_path / "staff.xlsx", "lists/staff.xlsx")
    assert [(r.email, r.qi_level, r.source) for r in recipients] == [
        ("ann@nhs.example", "basics", "lists/staff.xlsx:Staff!row 2"),
        ("cat@nhs.example", "project", "lists/staff.xlsx:Staff!row 5"),
    ]
    assert [str(r) for r in rejects] == [
        'lists/staff.xlsx:Staff!row 4: email "not-an-address" is not a valid address'
    ]
    assert rows == 3


def test_xlsx_cells_reading_none_or_na_are_text(tmp_path):
    book = openpyxl.Workbook()
    book.active.append(["email", "first_name", "last_name", "qi_level", None, None])
    book.active.append(["ann@nhs.example", "Ann", "NA", "None"])
    book.active.append(["bob@nhs.example", "Bob", "Null", "basics", "", "stray"])
    book.save(tmp_path / "staff.xlsx")
    [ann], [bob], _ = read_list(tmp_path / "staff.xlsx", "staff.xlsx")
    assert (ann.last_name, ann.qi_level) == ("NA", "none")
    assert str(bob) == "staff.xlsx:Sheet!row 3: has values to the right of the last named column"


def test_formula_like_names_are_data_not_a_problem(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER}\nann@nhs.example,"=HYPERLINK(""http://x"",""y"")",+Smith,@SUM(A1),-GP,none\n',
    )
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert ann.first_name == '=HYPERLINK("http://x","y")'


def test_huge_field_and_control_characters_reject_only_their_row(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\nann@nhs.example,{'A' * 5000},Smith,X,GP,none\n"
        f"bob@nhs.example,Bob\x07,Jones,X,GP,none\ncat@nhs.example,Cat,Lee,X,GP,none\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert [r.email for r in recipients] == ["cat@nhs.example"]
    assert [str(r) for r in rejects] == [
        "staff.csv:2: first_name is 5,000 characters long (at most 200)",
        "staff.csv:3: first_name contains a control character",
    ]


def test_missing_file_and_missing_email_column_name_the_file(tmp_path):
    with pytest.raises(ListError) as missing:
        read_list(tmp_path / "nope.csv", "lists/nope.csv")
    assert str(missing.value) == "lists/nope.csv: no such file"
    path = write(tmp_path / "staff.csv", "Name,Phone,QI level\nAnn Smith,020 7946 0000,none\n")
    with pytest.raises(ListError) as no_email:
        read_list(path, "lists/staff.csv")
    assert str(no_email.value) == (
        "lists/staff.csv: has no email column; the columns found are: 'Name', 'Phone', 'QI level'"
    )


def test_invalid_and_duplicate_addresses_reported_with_their_lines(tmp_path, demo_path):
    staff = "\n".join(
        [HEADER]
        + [f"p{i}@nhs.example,P,{i},X,GP,none" for i in range(40)]
        + ["bob@@nhs.net,Bob,Jones,X,GP,none", "P3@NHS.example,P,3,X,GP,project"]
    )
    citizens = f"{HEADER}\np5@nhs.example,P,5,,Citizen,none\nzoe@example.org,Zoë,Xu,,Citizen,none\n"
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff, "citizens.csv": citizens})
    audience = load_audience(campaign)
    assert [str(r) for r in audience.rejects] == [
        'lists/staff.csv:42: email "bob@@nhs.net" is not a valid address'
    ]
    assert [str(d) for d in audience.duplicate_rows] == [
        "lists/staff.csv:43: same address as lists/staff.csv:5 (left out)",
        "lists/citizens.csv:2: same address as lists/staff.csv:7 (left out)",
    ]
    assert (audience.rows_read, audience.duplicates, len(audience.recipients)) == (44, 2, 41)


def test_too_many_bad_rows_stop_with_the_file_and_the_numbers(tmp_path, demo_path):
    staff = "\n".join(
        [HEADER]
        + [f"p{i}@nhs.example,P,{i},X,GP,none" for i in range(18)]
        + ["bob@@nhs.net,Bob,Jones,X,GP,none", "cat,Cat,Lee,X,GP,none"]
    )
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff})
    with pytest.raises(ListError) as exc:
        load_audience(campaign)
    message = str(exc.value)
    assert message.startswith(
        "lists/staff.csv: 2 of 20 rows were rejected (10%), more than the 5% allowed"
    )
    assert 'lists/staff.csv:20: email "bob@@nhs.net" is not a valid address' in message


def test_suppressed_addresses_are_left_out_whatever_their_case(tmp_path, demo_path):
    staff = f"{HEADER}\nAnn@NHS.example,Ann,S,X,GP,none\nbob@nhs.example,Bob,J,X,GP,none\ncat@nhs.example,Cat,L,X,GP,none\n"
    campaign = campaign_with(
        tmp_path,
        demo_path,
        {"staff.csv": staff},
        suppressions="email,reason\nann@nhs.example,unsubscribed\n",
    )
    audience = load_audience(campaign, suppressed={"BOB@nhs.example"})
    assert [r.email for r in audience.recipients] == ["cat@nhs.example"]
    assert audience.suppressed == 2


def test_no_suppression_file_means_no_suppressions(tmp_path, demo_path):
    campaign = campaign_with(
        tmp_path, demo_path, {"staff.csv": f"{HEADER}\nann@nhs.example,Ann,S,X,GP,none\n"}
    )
    audience = load_audience(campaign)
    assert (len(audience.recipients), audience.suppressed) == (1, 0)


def test_each_recipient_lands_in_the_segment_for_their_level(tmp_path, demo_path):
    staff = (
        f"{HEADER}\na@nhs.example,A,A,X,GP,none\nb@nhs.example,B,B,X,GP,basics\n"
        f"c@nhs.example,C,C,X,GP,project\nd@nhs.example,D,D,X,GP,new to QI\n"
    )
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff})
    audience = load_audience(campaign)
    assert {seg: [r.email for r in rs] for seg, rs in audience.by_segment.items()} == {
        "getting-started": ["a@nhs.example", "d@nhs.example"],
        "ready-for-action": ["b@nhs.example"],
        "project-leads": ["c@nhs.example"],
    }


def test_a_role_segment_takes_its_roles_and_the_level_keeps_everyone_else(tmp_path, demo_path):
    staff = (
        f"{HEADER}\na@nhs.example,A,A,X,GP,none\nb@example.org,B,B,,Service user,none\n"
        f"c@example.org,C,C,,citizen,none\nd@example.org,D,D,,Citizen,basics\n"
    )
    citizens = {
        "id": "citizens",
        "name": "Citizens and service users",
        "qi_levels": ["none"],
        "roles": ["Citizen", "Service user"],
    }
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff}, extra_segments=[citizens])
    audience = load_audience(campaign)
    assert {seg: [r.email for r in rs] for seg, rs in audience.by_segment.items()} == {
        "citizens": ["b@example.org", "c@example.org"],
        "getting-started": ["a@nhs.example"],
        "ready-for-action": ["d@example.org"],
        "project-leads": [],
    }


def test_the_shipped_demo_lists(demo_path):
    audience = load_audience(load_campaign(demo_path, allow_past=True))
    counts = {seg: len(rs) for seg, rs in audience.by_segment.items()}
    print("demo audience:", counts, "rejects", len(audience.rejects))
    assert counts == {"getting-started": 186, "ready-for-action": 100, "project-leads": 48}
    assert (audience.rows_read, audience.duplicates, audience.suppressed) == (340, 1, 3)
    assert [str(r) for r in audience.rejects] == [
        'lists/practice-staff.csv:43: email "mohammed.uddin42@@nhs.example" is not a valid address',
        "lists/practice-staff.csv:119: qi_level is blank (use none, basics or project)",
    ]
    assert all(
        r.email.endswith(("@nhs.example", "@example.org", "@example.net"))
        for r in audience.recipients
    )


def test_shipped_lists_are_what_the_generator_writes(tmp_path, demo_path):
    synthetic.main([str(tmp_path)])
    for name in ("practice-staff.csv", "citizens-and-service-users.csv", "suppressions.csv"):
        shipped = demo_path.parent.parent / "lists" / name
        assert (tmp_path / "lists" / name).read_bytes() == shipped.read_bytes(), name


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


def test_one_hundred_thousand_rows_are_all_read(tmp_path):
    # How fast is the benchmark's business (benchmarks/run.py); here only that nothing is lost.
    people = synthetic.people(100_000)
    path = synthetic.write_csv(tmp_path / "big.csv", people)
    recipients, rejects, rows = read_list(path, "big.csv")
    assert (len(recipients), rejects, rows) == (100_000, [], 100_000)
    assert {r.key for r in recipients} == {p["email"].lower() for p in people}


def test_a_stray_opening_quote_stops_the_file_naming_the_line_and_the_rows_it_swallowed(tmp_path):
    # Before: the quote on line 4 made csv read lines 4-23 as one row; one reject (a
    # 1,000-character first name) out of 3 rows, under the threshold, and 19 people gone.
    rows = [f"p{n}@nhs.example,P{n},Smith,X,GP,none" for n in range(22)]
    rows[2] = 'p2@nhs.example,"P2,Smith,X,GP,none'
    path = write(tmp_path / "staff.csv", HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(ListError) as caught:
        read_list(path, "lists/staff.csv")
    assert str(caught.value) == (
        'lists/staff.csv: line 4: an opening quote (") is never closed, '
        "so lines 4-23 were read as one row; fix the quote"
    )


def test_a_stray_quote_closed_by_a_later_quoted_value_still_names_the_swallowed_lines(tmp_path):
    rows = [f"p{n}@nhs.example,P{n},Smith,X,GP,none" for n in range(10)]
    rows[1] = 'p1@nhs.example,"P1,Smith,X,GP,none'
    rows[6] = 'p6@nhs.example,P6,Smith,"Surgery, Bow",GP,none'
    path = write(tmp_path / "staff.csv", HEADER + "\r\n" + "\r\n".join(rows) + "\r\n")
    with pytest.raises(ListError, match=r"line 3: .* so lines 3-8 were read as one row"):
        read_list(path, "lists/staff.csv")


def test_a_quoted_address_over_several_lines_with_commas_is_still_one_value(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER},address\nann@nhs.example,Ann,Smith,X,GP,none,"Unit 2, Example Street,\n'
        'Bow, London,\nE3 1AA, UK"\nbob@nhs.example,Bob,Jones,X,GP,basics,\n',
    )
    recipients, rejects, rows = read_list(path, "staff.csv")
    assert rejects == []
    assert [r.source for r in recipients] == ["staff.csv:2", "staff.csv:5"]


def test_a_device_or_pipe_given_as_a_list_is_refused_by_name(tmp_path):
    # Before: /dev/zero was read until the process was killed, and a pipe waited forever.
    with pytest.raises(ListError, match=r"^lists/zero\.csv: is not a file \(a device or pipe\)$"):
        read_list(Path("/dev/zero"), "lists/zero.csv")
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(ListError, match=r"^lists/pipe\.csv: is not a file"):
        read_list(fifo, "lists/pipe.csv")


def test_a_list_over_200_mb_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:  # sparse: takes no disk space
        f.write(f"{HEADER}\n".encode())
        f.truncate(200_000_001)
    with pytest.raises(ListError, match=r"^lists/huge\.csv: is over 200 MB"):
        read_list(path, "lists/huge.csv")
