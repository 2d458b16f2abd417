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


def next_steps(
    spec_source: str, counts: Mapping[str, int], *, allow_past: bool = False
) -> list[Advice]:
    """The steps the ledger's counts call for (none when everything is sent or suppressed).
    ``allow_past``: the campaign has sessions before today, so ``send`` refuses it without
    --allow-past; the command shown must run as shown."""
    past = " --allow-past" if allow_past else ""
    steps = []
    if counts.get("pending") or counts.get("failed"):
        steps.append(
            Advice("To send the pending and failed ones:", f"equip-mailer send {spec_source}{past}")
        )
    if counts.get("uncertain"):
        n = counts["uncertain"]
        steps.append(
            Advice(
                f"{n:,} recipient(s) are uncertain: their batch got no answer, so SendGrid may "
                "or may not have accepted them, and it has given no evidence for them yet "
                "(its webhook events settle them as they arrive). To ask SendGrid now:",
                f"equip-mailer status {spec_source} --check-sendgrid",
            )
        )
        steps.append(
            Advice(
                "To re-send only those still without evidence, once their batch is past the "
                "settling period (those few may get a second copy):",
                f"equip-mailer send {spec_source} --retry-uncertain{past}",
            )
        )
    return steps
