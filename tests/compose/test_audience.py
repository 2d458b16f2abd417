"""From list rows to readers per segment: rejected rows by name, duplicates, suppressions,
segments by level and role. Each test writes real lists (and a campaign) in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.lists import HEADER, write

from equip_mailer import synthetic
from equip_mailer.compose.audience import load_audience, read_list
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import ListError


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
        "max_reject_share": max_reject_share,
    }
    if suppressions is not None:
        spec["lists"]["suppressions"] = "lists/suppressions.csv"
    path = tmp_path / "campaigns" / "test.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return load_campaign(path, allow_past=True)


def test_blank_or_unknown_qi_level_rejects_the_row_by_name(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\nann@nhs.example,Ann,Smith,X,GP,\nbob@nhs.example,Bob,Jones,X,GP,expert\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert recipients == []
    assert [str(r) for r in rejects] == [
        "staff.csv:2: qi_level is blank (use none, basics or project)",
        'staff.csv:3: qi_level "expert" is not a QI level (none, basics or project; '
        "lists/README.md lists every spelling accepted)",
    ]


def test_formula_like_names_are_data_not_a_problem(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        f'{HEADER}\nann@nhs.example,"=HYPERLINK(""http://x"",""y"")",+Smith,@SUM(A1),-GP,none\n',
    )
    [ann], rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert ann.first_name == '=HYPERLINK("http://x","y")'


def test_a_name_column_is_split_after_its_title(tmp_path):
    """A list with only a Name column: the title is left out (a reader has no place for
    it), so the first name is the name and not "Dr"; with only a title and a surname the
    first name is how to address them ("Dear Mrs Patel,"); a title alone leaves both blank."""
    path = write(
        tmp_path / "staff.csv",
        "Email,Full name,QI level\n"
        "vik@nhs.example,Dr Vik Patel,none\n"
        "zoe@nhs.example,dr.  Zoë Ó Ceallaigh ,none\n"
        "ann@nhs.example,Ann Smith,none\n"
        "pat@nhs.example,Mrs Patel,none\n"
        "sam@nhs.example,Dr,none\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert [(r.first_name, r.last_name) for r in recipients] == [
        ("Vik", "Patel"),
        ("Zoë", "Ó Ceallaigh"),
        ("Ann", "Smith"),
        ("Mrs Patel", ""),
        ("", ""),
    ]


def test_names_copied_from_the_nhsmail_address_book_greet_by_first_name(tmp_path):
    """NHSmail writes "SURNAME, Firstname (ORGANISATION)": the first word used to be taken
    as the first name, and the newsletter opened "Dear PATEL,,"."""
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,QI level\n"
        'vik@nhs.example,"PATEL, Vik (TOWER VIEW SURGERY)",none\n'
        'ann@nhs.example,"Smith, Ann",none\n',
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert [(r.first_name, r.last_name) for r in recipients] == [
        ("Vik", "PATEL"),
        ("Ann", "Smith"),
    ]


def test_a_name_column_only_fills_the_name_columns_the_list_lacks(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        "Email,Name,Surname,QI level\nvik@nhs.example,Dr Vik Patel,Patel-Shah,none\n",
    )
    [vik], _, _ = read_list(path, "staff.csv")
    assert (vik.first_name, vik.last_name) == ("Vik", "Patel-Shah")


def test_a_title_column_addresses_those_listed_by_title_and_surname(tmp_path):
    """A staff export with Title, First name and Surname: someone with no first name is
    addressed by title and surname ("Dear Dr Patel,"), as with a Name column; a first name
    keeps its place and the title is left out; a job title in the column is not a title."""
    path = write(
        tmp_path / "staff.csv",
        "Email,Title,First name,Surname,QI level\n"
        "pat@nhs.example,dr.,,Patel,none\n"
        "ann@nhs.example,Rev. Dr,, Smith ,none\n"
        "vik@nhs.example,Dr,Vik,Patel,none\n"
        "max@nhs.example,Practice Manager,,Jones,none\n"
        "sam@nhs.example,Mrs,,,none\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert rejects == []
    assert [(r.first_name, r.last_name) for r in recipients] == [
        ("Dr Patel", ""),
        ("Rev Dr Smith", ""),
        ("Vik", "Patel"),
        ("", "Jones"),
        ("", ""),
    ]


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
    staff = (
        f"{HEADER}\nAnn@NHS.example,Ann,S,X,GP,none\nbob@nhs.example,Bob,J,X,GP,none\n"
        "cat@nhs.example,Cat,L,X,GP,none\n"
    )
    campaign = campaign_with(
        tmp_path,
        demo_path,
        {"staff.csv": staff},
        suppressions="email,reason\nann@nhs.example,unsubscribed\n",
    )
    audience = load_audience(campaign, suppressed={"BOB@nhs.example"})
    assert [r.email for r in audience.recipients] == ["cat@nhs.example"]
    assert audience.suppressed == 2


def test_no_suppression_file_at_the_default_place_means_no_suppressions(tmp_path, demo_path):
    # No 'suppressions:' in the campaign: lists/suppressions.csv if it is there.
    campaign = campaign_with(
        tmp_path, demo_path, {"staff.csv": f"{HEADER}\nann@nhs.example,Ann,S,X,GP,none\n"}
    )
    audience = load_audience(campaign)
    assert (len(audience.recipients), audience.suppressed) == (1, 0)


def test_a_misspelt_suppression_file_stops_everything_rather_than_mail_those_it_lists(
    tmp_path, demo_path
):
    # The manager wrote lists/suppresions.csv; the file on disk is lists/suppressions.csv.
    campaign_with(
        tmp_path,
        demo_path,
        {"staff.csv": f"{HEADER}\nann@nhs.example,Ann,S,X,GP,none\n"},
        suppressions="email,reason\nann@nhs.example,asked by phone not to be emailed\n",
    )
    path = tmp_path / "campaigns" / "test.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("suppressions.csv", "suppresions.csv"),
        encoding="utf-8",
    )
    with pytest.raises(ListError) as exc:
        load_audience(load_campaign(path, allow_past=True))
    assert str(exc.value).startswith("lists/suppresions.csv: no such file")
    assert "'suppressions:' under 'lists:'" in exc.value.hint


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


def test_one_hundred_thousand_rows_are_all_read(tmp_path):
    # How fast is the benchmark's business (benchmarks/run.py); here only that nothing is lost.
    people = synthetic.people(100_000)
    path = synthetic.write_csv(tmp_path / "big.csv", people)
    recipients, rejects, rows = read_list(path, "big.csv")
    assert (len(recipients), rejects, rows) == (100_000, [], 100_000)
    assert {r.key for r in recipients} == {p["email"].lower() for p in people}


def test_a_campaigns_segment_names_are_level_spellings(tmp_path, demo_path):
    staff = f"{HEADER}\nann@nhs.example,Ann,S,X,GP,Running a QI project\n"
    campaign = campaign_with(
        tmp_path,
        demo_path,
        {"staff.csv": staff},
        extra_segments=[
            {
                "id": "leads",
                "name": "Leading change",
                "qi_levels": ["project"],
                "roles": ["Partner"],
            }
        ],
    )
    audience = load_audience(campaign)
    assert [r.email for r in audience.by_segment["project-leads"]] == ["ann@nhs.example"]
    staff = f"{HEADER}\nbob@nhs.example,Bob,J,X,Partner,Leading change\n"
    campaign = campaign_with(
        tmp_path / "2",
        demo_path,
        {"staff.csv": staff},
        extra_segments=[
            {
                "id": "leads",
                "name": "Leading change",
                "qi_levels": ["project"],
                "roles": ["Partner"],
            }
        ],
    )
    assert [r.email for r in load_audience(campaign).by_segment["leads"]] == ["bob@nhs.example"]


def test_the_roles_each_catch_all_took_are_counted(tmp_path, demo_path):
    staff = (
        f"{HEADER}\nann@nhs.example,Ann,S,X,Salaried GP,basics\n"
        "bob@nhs.example,Bob,J,X,Receptionist,basics\ncat@nhs.example,Cat,L,X,GP,basics\n"
        "dan@nhs.example,Dan,M,X,Receptionist,basics\neve@nhs.example,Eve,N,X,,none\n"
    )
    clinicians = {
        "id": "clinicians",
        "name": "Clinicians",
        "qi_levels": ["basics"],
        "roles": ["GP", "Nurse"],
    }
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff}, extra_segments=[clinicians])
    audience = load_audience(campaign)
    assert [r.first_name for r in audience.by_segment["clinicians"]] == ["Cat"]
    assert audience.catch_all_roles == {
        "ready-for-action": {"Receptionist": 2, "Salaried GP": 1},
        "getting-started": {"": 1},
    }


def test_reading_on_past_the_reject_share_keeps_the_verdict(tmp_path, demo_path):
    staff = "\n".join(
        [HEADER]
        + [f"p{i}@nhs.example,P,{i},X,GP,none" for i in range(8)]
        + ["bob@@nhs.net,Bob,Jones,X,GP,none", "cat,Cat,Lee,X,GP,none"]
    )
    campaign = campaign_with(tmp_path, demo_path, {"staff.csv": staff})
    audience = load_audience(campaign, read_on=True)
    assert len(audience.rejects) == 2 and len(audience.recipients) == 8
    assert audience.over_reject_share == [
        "lists/staff.csv: 2 of 10 rows were rejected (20%), more than the 5% allowed "
        "(lists.max_reject_share)"
    ]


def test_a_list_entry_may_name_its_sheet(tmp_path, demo_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.title = "Staff"
    book.active.append(["Email", "QI level"])
    book.active.append(["ann@nhs.example", "none"])
    trainers = book.create_sheet("Trainers")
    trainers.append(["Email", "QI level"])
    trainers.append(["tom@nhs.example", "project"])
    (tmp_path / "lists").mkdir()
    book.save(tmp_path / "lists" / "practice.xlsx")
    spec = yaml.safe_load(demo_path.read_text(encoding="utf-8"))
    spec["lists"] = {
        "files": [{"file": "lists/practice.xlsx", "sheet": "Trainers"}],
        "suppressions": None,
    }
    path = tmp_path / "campaigns" / "test.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    campaign = load_campaign(path, allow_past=True)
    assert campaign.lists.files == ["lists/practice.xlsx"]
    assert campaign.lists.sheet("lists/practice.xlsx") == "Trainers"
    assert [r.email for r in load_audience(campaign).recipients] == ["tom@nhs.example"]


def test_a_control_character_among_non_ascii_names_rejects_only_its_row(tmp_path):
    # No value is over-long, so only the column-wide search can find the bell character.
    path = write(
        tmp_path / "staff.csv",
        f"{HEADER}\nzoe@nhs.example,Zoë,Brontë,X,GP,none\n"
        f"bob@nhs.example,Bób\x07,Jones,X,GP,none\ncat@nhs.example,Çat,Lee,X,GP,none\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert [r.first_name for r in recipients] == ["Zoë", "Çat"]
    assert [str(r) for r in rejects] == ["staff.csv:3: first_name contains a control character"]


def test_rows_shorter_than_the_header_read_their_missing_cells_as_blank(tmp_path):
    path = write(
        tmp_path / "staff.csv",
        "email,qi_level,first_name,last_name\n"
        "ann@nhs.example,basics,Ann,Smith\nbob@nhs.example,none\ncat@nhs.example\n",
    )
    recipients, rejects, _ = read_list(path, "staff.csv")
    assert [(r.email, r.qi_level, r.first_name, r.last_name) for r in recipients] == [
        ("ann@nhs.example", "basics", "Ann", "Smith"),
        ("bob@nhs.example", "none", "", ""),
    ]
    assert [str(r) for r in rejects] == [
        "staff.csv:4: qi_level is blank (use none, basics or project)"
    ]
