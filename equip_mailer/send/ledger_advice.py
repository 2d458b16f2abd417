"""What to do about a campaign's ledger, in words and the exact command: ``equip-mailer
status`` prints it and the team's campaigns page shows it, so both always say the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    text: str
    command: str | None = None  # to run from the project folder, exactly as shown


def next_steps(spec_source: str, counts: Mapping[str, int]) -> list[Advice]:
    """The steps the ledger's counts call for (none when everything is sent or suppressed)."""
    steps = []
    if counts.get("pending") or counts.get("failed"):
        steps.append(
            Advice("To send the pending and failed ones:", f"equip-mailer send {spec_source}")
        )
    if counts.get("uncertain"):
        steps.append(
            Advice(
                "Uncertain recipients got no answer from SendGrid and may already have the "
                "email; check SendGrid's activity feed, then add --retry-uncertain to send "
                "them again if you accept that some may get two copies.",
                f"equip-mailer send {spec_source} --retry-uncertain",
            )
        )
    return steps
