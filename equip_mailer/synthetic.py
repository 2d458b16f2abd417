"""Invented recipients for the demo lists, tests and benchmarks.

No real person's data may enter the repository, yet the reader has to be exercised on
something that looks like a real export: varied names (with accents and apostrophes),
practices, roles and QI levels. Everything here is made up and seeded, so the same call
gives the same rows on every machine, and addresses only use reserved domains
(``nhs.example``, ``example.org``, ``example.net``).

Regenerate the shipped lists with ``python -m equip_mailer.synthetic`` (from the project root).
"""

from __future__ import annotations

import csv
import io
import random
import sys
import unicodedata
from pathlib import Path

FIRST_NAMES = (
    "Ann",
    "Bilal",
    "Chloe",
    "Dev",
    "Efua",
    "Farah",
    "George",
    "Hana",
    "Imran",
    "Jade",
    "Kwame",
    "Lena",
    "Mohammed",
    "Nadia",
    "Oliver",
    "Priya",
    "Quentin",
    "Rahel",
    "Sam",
    "Tanvir",
    "Una",
    "Victor",
    "Wen",
    "Xavier",
    "Yusuf",
    "Zoë",
    "Siân",
    "Ayesha",
    "Ben",
    "Carys",
    "Dara",
    "Eilidh",
    "Femi",
    "Grace",
    "Hamza",
    "Ines",
    "José",
    "Kemi",
    "Laila",
    "Mei",
    "Niamh",
    "Omar",
    "Pia",
    "Ravi",
    "Shirin",
    "Tom",
    "Ursula",
    "Vik",
    "Will",
    "Zara",
)
LAST_NAMES = (
    "Ahmed",
    "Begum",
    "Clarke",
    "Da Silva",
    "Evans",
    "Fernández",
    "Gold",
    "Hussain",
    "Ibrahim",
    "Jones",
    "Khan",
    "Lewis",
    "Miah",
    "Nowak",
    "O'Neill",
    "Patel",
    "Quinn",
    "Rahman",
    "Smith",
    "Taylor",
    "Uddin",
    "Vaughan",
    "Walker",
    "Xu",
    "Young",
    "Zielińska",
    "Adeyemi",
    "Brown",
    "Chowdhury",
    "Dubois",
    "Ekwueme",
    "Flynn",
    "Green",
    "Hall-Jones",
    "Islam",
    "Kowalski",
    "Levy",
    "Murphy",
    "Nguyen",
    "Okafor",
    "Price",
    "Roberts",
    "Sen",
    "Thomas",
    "Williams",
)
PRACTICES = tuple(
    f"{name} {kind}"
    for name, kind in (
        ("Example Street", "Surgery"),
        ("Sample Road", "Medical Centre"),
        ("Harbour View", "Practice"),
        ("Canal Side", "Health Centre"),
        ("Old Market", "Surgery"),
        ("Riverbank", "Group Practice"),
        ("Elm Tree", "Surgery"),
        ("Brick Lane Example", "Practice"),
        ("Dockside", "Medical Centre"),
        ("Clocktower", "Surgery"),
        ("Park View", "Health Centre"),
        ("Victoria Example", "Practice"),
        ("Greenway", "Surgery"),
        ("Mile End Example", "Medical Centre"),
        ("Bow Example", "Practice"),
        ("Chapel Yard", "Surgery"),
        ("Wharf Lane", "Health Centre"),
        ("Spring Gardens", "Practice"),
        ("Limehouse Example", "Surgery"),
        ("Millpond", "Medical Centre"),
        ("Orchard", "Practice"),
        ("Poplar Example", "Health Centre"),
        ("Quayside", "Surgery"),
        ("Rope Walk", "Practice"),
        ("St Example's", "Medical Centre"),
        ("Tower View", "Surgery"),
        ("Union Square", "Practice"),
        ("Wapping Example", "Health Centre"),
        ("Whitechapel Example", "Surgery"),
        ("Stepney Example", "Group Practice"),
    )
)
STAFF_ROLES = (  # (role, weight)
    ("GP", 20),
    ("Practice nurse", 14),
    ("Practice manager", 6),
    ("Receptionist", 22),
    ("Healthcare assistant", 10),
    ("Pharmacist", 5),
    ("Care navigator", 8),
    ("Physician associate", 3),
    ("Social prescriber", 4),
    ("Administrator", 8),
)
CITIZEN_ROLES = (("Citizen", 1), ("Service user", 1))
# How far staff and citizens have got with QI (none, basics, project).
STAFF_LEVELS = (("none", 55), ("basics", 30), ("project", 15))
CITIZEN_LEVELS = (("none", 85), ("basics", 12), ("project", 3))
COLUMNS = ("email", "first_name", "last_name", "practice", "role", "qi_level")


def _ascii(text: str) -> str:
    """'Zielińska' -> 'zielinska', "O'Neill" -> 'oneill': the local part of an invented address."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in plain.lower() if c.isalnum() or c == "-")


def _weighted(rng: random.Random, options, n: int) -> list[str]:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options], k=n)


def people(
    n: int, *, kind: str = "staff", seed: int = 2019, start: int = 1
) -> list[dict[str, str]]:
    """``n`` invented recipients as dicts with the list columns; addresses are unique.

    ``kind`` is "staff" (practice staff at ``@nhs.example``) or "citizens" (citizens and
    service users at ``@example.org`` / ``@example.net``, with no practice). ``start``
    offsets the number in each address, so two calls can be combined without clashes.
    Fast enough for benchmarks: 100,000 rows take well under a second.
    """
    if kind not in ("staff", "citizens"):
        raise ValueError(f"kind must be 'staff' or 'citizens', not {kind!r}")
    rng = random.Random(f"{seed}-{kind}")
    firsts = rng.choices(FIRST_NAMES, k=n)
    lasts = rng.choices(LAST_NAMES, k=n)
    staff = kind == "staff"
    roles = _weighted(rng, STAFF_ROLES if staff else CITIZEN_ROLES, n)
    levels = _weighted(rng, STAFF_LEVELS if staff else CITIZEN_LEVELS, n)
    practices = rng.choices(PRACTICES, k=n) if staff else [""] * n
    domains = ["nhs.example"] * n if staff else rng.choices(("example.org", "example.net"), k=n)
    ascii_first = {name: _ascii(name) for name in FIRST_NAMES}
    ascii_last = {name: _ascii(name) for name in LAST_NAMES}
    return [
        {
            "email": f"{ascii_first[f]}.{ascii_last[last]}{start + i}@{d}",
            "first_name": f,
            "last_name": last,
            "practice": p,
            "role": r,
            "qi_level": q,
        }
        for i, (f, last, p, r, q, d) in enumerate(
            zip(firsts, lasts, practices, roles, levels, domains, strict=True)
        )
    ]


def write_csv(
    path: Path,
    rows: list[dict[str, str]],
    *,
    header: dict[str, str] | None = None,
    bom: bool = False,
    delimiter: str = ",",
    encoding: str = "utf-8",
    line_end: str = "\r\n",
) -> Path:
    """Write rows as a CSV the way a spreadsheet export would (CRLF by default).

    ``header`` renames columns (e.g. ``{"email": "Email Address"}``) to mimic other exports.
    A row given as ``None`` is written as a blank line.
    """
    header = header or {}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow([header.get(c, c) for c in COLUMNS])
    for row in rows:
        if row is None:
            out.write(line_end)
        else:
            writer.writerow([row.get(c, "") for c in COLUMNS])
    data = out.getvalue().encode(encoding)
    if bom and encoding.replace("-", "").lower() == "utf8":
        data = b"\xef\xbb\xbf" + data
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_xlsx(
    path: Path,
    rows: list[dict[str, str]],
    *,
    header: dict[str, str] | None = None,
    sheet: str = "Sheet1",
) -> Path:
    """Write rows to a one-sheet workbook (``None`` rows stay empty)."""
    from openpyxl import Workbook

    header = header or {}
    book = Workbook()
    ws = book.active
    ws.title = sheet
    ws.append([header.get(c, c) for c in COLUMNS])
    for row in rows:
        ws.append([] if row is None else [row.get(c, "") for c in COLUMNS])
    path = Path(path)
    book.save(path)
    return path


# The demo's practice-staff list names its columns as a practice system's export does.
STAFF_EXPORT_HEADER = {
    "email": "Email Address",
    "first_name": "First name",
    "last_name": "Surname",
    "practice": "Practice name",
    "role": "Job title",
    "qi_level": "QI level",
}


def write_demo_lists(root: Path) -> dict[str, Path]:
    """Write the shipped demo lists under ``root/lists`` (see lists/README.md for the quirks)."""
    lists = Path(root) / "lists"
    staff = people(300, kind="staff", seed=2019)
    citizens = people(40, kind="citizens", seed=2019, start=1001)
    # Quirks seen in real exports, a few of each and no more, so `check` shows them but the
    # reject share stays far below the 5 % threshold.
    staff[41]["email"] = staff[41]["email"].replace("@", "@@")  # typing slip: rejected
    staff[117]["qi_level"] = ""  # forgotten level: rejected
    staff[7]["email"] = "  " + staff[7]["email"].upper() + " "  # stray spaces, shouting
    staff[12]["qi_level"] = "Basics"
    staff[13]["qi_level"] = "QI project"
    staff[14]["qi_level"] = "None"
    citizens[5]["email"] = staff[20]["email"].title()  # on both lists: duplicate
    citizens[6]["qi_level"] = "basic"
    staff_rows: list = staff[:150] + [None] + staff[150:]  # one blank row mid-file
    written = {
        "practice-staff": write_csv(
            lists / "practice-staff.csv",
            staff_rows,
            bom=True,
            header=STAFF_EXPORT_HEADER,
        ),
        "citizens": write_csv(lists / "citizens-and-service-users.csv", citizens),
    }
    suppressions = lists / "suppressions.csv"
    rows = [
        (staff[3]["email"].upper(), "unsubscribed", "2019-01-14"),
        (staff[58]["email"], "bounced", "2019-02-02"),
        (citizens[10]["email"], "asked by phone not to be emailed", "2019-03-20"),
    ]
    with suppressions.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["email", "reason", "date"])
        writer.writerows(rows)
    written["suppressions"] = suppressions
    return written


def main(argv: list[str] | None = None) -> None:
    """Write the demo lists under the folder given (default: the current one). Parsed, so
    that `--help` explains instead of becoming a folder named '--help'."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m equip_mailer.synthetic",
        description="Write the synthetic demo lists (practice-staff.csv, "
        "citizens-and-service-users.csv, suppressions.csv) into FOLDER/lists/, "
        "the same rows on every machine.",
    )
    parser.add_argument(
        "folder", nargs="?", default=".", metavar="FOLDER", help="the project root (default: .)"
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    for path in write_demo_lists(Path(args.folder)).values():
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
