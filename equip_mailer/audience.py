"""Mailing lists in, recipients per segment out.

(Contract written first; the reading of real CSV/XLSX exports is filled in by the audience work.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Recipient:
    email: str                  # normalised (email-validator), original case of the local part kept
    first_name: str
    last_name: str
    practice: str
    role: str
    qi_level: str               # one of spec.QI_LEVELS
    source: str                 # "lists/practice-staff.csv:12", for messages

    @property
    def key(self) -> str:
        """Case-insensitive identity used for de-duplication, suppression and the ledger."""
        return self.email.lower()


@dataclass(frozen=True)
class Reject:
    where: str                  # "lists/practice-staff.csv:42"
    message: str                # 'email "bob@@nhs.net" is not a valid address'

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Audience:
    by_segment: dict[str, list[Recipient]]
    rejects: list[Reject] = field(default_factory=list)
    duplicates: int = 0         # rows dropped because the address appeared earlier
    suppressed: int = 0         # rows dropped because the address is suppressed
    rows_read: int = 0

    @property
    def recipients(self) -> list[Recipient]:
        return [r for rs in self.by_segment.values() for r in rs]
