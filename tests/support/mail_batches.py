"""A campaign's request settings and batches of made-up readers, as the send loop would
hand them to a backend: for the request and backend tests (tests/send/)."""

from __future__ import annotations

from equip_mailer.send.batch import Addressee, Batch, Content
from equip_mailer.send.campaign_mail import CampaignMail

MAIL = CampaignMail(
    campaign_id="2019-04-equip-training",
    sender_email="equip@example.org",
    sender_name="EQUIP",
    reply_to_email="team@example.org",
    categories=("2019-04-equip-training", "equip-newsletter"),
    asm_group_id=42,
)
CONTENT = Content(
    segment="getting-started",
    subject="Hello -eqt_first_name-",
    html='<p>Dear -eq_first_name-, <a href="-eq_link_0-">sign up</a></p>',
    text="Dear -eqt_first_name-, sign up: -eqt_link_0-",
)


def people(n: int, start: int = 1) -> list[Addressee]:
    return [
        Addressee(
            ledger_id=i,
            email=f"person{i}@example.org",
            name=f"Person {i}",
            values={
                "-eq_first_name-": f"P&amp;{i}",
                "-eqt_first_name-": f"P&{i}",
                "-eq_link_0-": f"https://t.example/c/{i}",
                "-eqt_link_0-": f"https://t.example/c/{i}",
            },
            unsubscribe_url=f"https://t.example/u/{i}",
        )
        for i in range(start, start + n)
    ]


def batch(n: int = 3, **kw) -> Batch:
    return Batch(
        campaign_id=MAIL.campaign_id, send_id="s1", content=CONTENT, addressees=people(n), **kw
    )
