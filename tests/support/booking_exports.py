"""Attendee exports as two external booking tools write them, with synthetic people: an
Eventbrite attendee CSV and a Microsoft Forms responses workbook.

``write_examples`` makes the two files shipped in ``lists/imports/`` (for the Data
masterclass, which ELFT books on its own page); tests call the writers with their own rows.
Run ``python tests/support/booking_exports.py`` from the project root to make them again.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

EVENTBRITE_HEADER = [
    "Order #",
    "Order Date",
    "First Name",
    "Last Name",
    "Email",
    "Quantity",
    "Ticket Type",
    "Attendee #",
    "Group",
    "Order Type",
    "Currency",
    "Total Paid",
    "Eventbrite Fees",
    "Attendee Status",
    "Job Title",
    "Company",
    "Any access requirements?",
    "Event Name",
    "Event ID",
    "Event Start Date",
    "Venue Name",
]

FORMS_HEADER = [
    "ID",
    "Start time",
    "Completion time",
    "Email",
    "Name",
    "Last modified time",
    "Your name",
    "Your NHS email address",
    "Your practice",
    "Your role",
    "Which date would you like to attend?",
    "Anything we should know (access needs)?",
]


@dataclass(frozen=True)
class Booking:
    first: str
    last: str
    email: str
    practice: str = ""
    role: str = ""
    date: str = "2019-10-15"  # as the tool writes it; see the writers
    access_needs: str = ""
    status: str = "Attending"


def eventbrite_csv(path: Path, bookings: list[Booking], event: str = "Data masterclass") -> Path:
    """An Eventbrite "Attendee Summary" export: UTF-8 with a BOM, one row per ticket."""
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        out = csv.writer(fh, lineterminator="\r\n")
        out.writerow(EVENTBRITE_HEADER)
        for i, b in enumerate(bookings):
            ordered = dt.datetime(2019, 4, 23, 9, 0) + dt.timedelta(hours=7 * i, minutes=13 * i)
            out.writerow(
                [
                    1_002_345_600 + i,
                    f"{ordered:%Y-%m-%d %H:%M:%S}+01:00",
                    b.first,
                    b.last,
                    b.email,
                    1,
                    "Free place",
                    2_104_000_000 + i,
                    "",
                    "Free Order",
                    "GBP",
                    "0.00",
                    "0.00",
                    b.status,
                    b.role,
                    b.practice,
                    b.access_needs,
                    event,
                    "61234567890",
                    f"{b.date} 09:00:00",
                    "Example Training Rooms",
                ]
            )
    return path


def forms_xlsx(path: Path, bookings: list[Booking], title: str = "Form1") -> Path:
    """A Microsoft Forms "Open in Excel" download of an anonymous form: the form's own
    Email and Name columns say ``anonymous``; the questions follow."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = title
    ws.append(FORMS_HEADER)
    for i, b in enumerate(bookings, start=1):
        started = dt.datetime(2019, 4, 24, 8, 30) + dt.timedelta(hours=5 * i)
        ws.append(
            [
                i,
                started,
                started + dt.timedelta(minutes=3),
                "anonymous",
                "anonymous",
                None,
                f"{b.first} {b.last}".strip(),
                b.email,
                b.practice,
                b.role,
                b.date,
                b.access_needs or None,
            ]
        )
    wb.save(path)
    return path


# People of the demo's lists with a QI project (the masterclass's readers), in the case and
# spacing people type, plus people the newsletter never reached.
EVENTBRITE_EXAMPLE = [
    Booking("Una", "Taylor", "una.taylor5@nhs.example", "Poplar Example Health Centre",
            "Administrator"),
    Booking("Tanvir", "Islam", "Tanvir.Islam30@NHS.example", "Clocktower Surgery",
            "Administrator"),
    Booking("Imran", "Thomas", "imran.thomas45@nhs.example", "Union Square Practice", "GP",
            access_needs="Step-free access, please"),
    Booking("Sam", "Begum", "sam.begum56@nhs.example", "Elm Tree Surgery", "Practice nurse"),
    Booking("Imran", "Taylor", "imran.taylor90@nhs.example", "Rope Walk Practice", "GP",
            status="Refunded"),
    Booking("Ben", "Hall-Jones", "ben.hall-jones92@nhs.example", "Tower View Surgery",
            "Practice nurse"),
    Booking("Ines", "Smith", "ines.smith105@nhs.example", "Bow Example Practice",
            "Practice nurse"),
    Booking("Priya", "Example", "priya.example@elft.example", "ELFT QI team", "QI coach"),
    Booking("Tom", "Sample", "tom.sample@example.net", "", "Patient representative"),
    Booking("Ines", "Smith", "INES.SMITH105@nhs.example", "Bow Example Practice",
            "Practice nurse"),  # a second ticket on the same address
]  # fmt: skip

FORMS_EXAMPLE = [
    Booking("Sian", "Green", "sian.green21@nhs.example", "Dockside Medical Centre",
            "Physician associate", date="Tuesday 15 October 2019"),
    Booking("Hamza", "Ahmed", "Hamza.Ahmed38@nhs.example", "Millpond Medical Centre",
            "Administrator", date="Tuesday 15 October 2019",
            access_needs="I use a wheelchair"),
    Booking("Niamh", "Dubois", "niamh.dubois47@nhs.example", "Canal Side Health Centre",
            "Receptionist", date="Tuesday 15 October 2019"),
    Booking("Sam", "Begum", "sam.begum56@nhs.example", "Elm Tree Surgery", "Practice nurse",
            date="Tuesday 15 October 2019"),  # booked on Eventbrite too
    Booking("Rosa", "Example", "rosa.example@nhs.example", "Example Walk-in Centre",
            "Pharmacist", date="Tuesday 15 October 2019"),
]  # fmt: skip


def write_examples(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        eventbrite_csv(folder / "eventbrite-data-masterclass.csv", EVENTBRITE_EXAMPLE),
        forms_xlsx(folder / "forms-data-masterclass.xlsx", FORMS_EXAMPLE),
    ]


if __name__ == "__main__":
    for made in write_examples(Path("lists") / "imports"):
        print(made)
