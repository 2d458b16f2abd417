"""Made-up readers for the ledger and send-loop tests (tests/send/), by segment of the demo
campaign, and the settings a send needs (a link secret, a public URL)."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from equip_mailer.compose.audience import Recipient
from equip_mailer.config import Settings
from equip_mailer.send.ledger import Ledger
from support.link_secrets import LINK_SECRET

CID = "2019-04-equip-training"
LEVEL = {"getting-started": "none", "ready-for-action": "basics", "project-leads": "project"}


def person(i: int, segment: str = "getting-started") -> Recipient:
    return Recipient(
        email=f"Person{i}@Example.org",
        first_name=f"P{i}",
        last_name="X",
        practice="Practice",
        role="GP",
        qi_level=LEVEL[segment],
        source=f"t.csv:{i}",
    )


def audience(
    n: int, segment: str = "getting-started", start: int = 1
) -> dict[str, list[Recipient]]:
    return {segment: [person(i, segment) for i in range(start, start + n)]}


def store_settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, link_secret=LINK_SECRET, public_url="https://t.example")


def states(engine: Engine) -> dict[str, int]:
    """Recipients of the campaign per ledger state."""
    return Ledger(engine, CID).counts()
