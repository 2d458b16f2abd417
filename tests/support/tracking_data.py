"""Test data for the tracking service: a campaign with links and recipients in a real store,
SendGrid events shaped like the ones SendGrid posts, and signing with the shared signer.

The signer is ``shared/sendgrid/sign_events.py``, a sibling of the repository; it is
imported from there by path, never copied. Tests that need it skip when it is absent.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from equip_mailer import store
from equip_mailer.compose.render.mail_links import LinkSpec
from equip_mailer.send.links import (
    click_token,
    reader_token,
    register_links,
    unsubscribe_token,
)
from equip_mailer.track.click_writer import flush_clicks

REPO = Path(__file__).resolve().parents[2]
SIGNER_PATH = REPO.parent / "shared" / "sendgrid" / "sign_events.py"
ANN = "ann.example@example.org"
BOB = "bob.example@example.org"
CHROME = (  # a person's browser: nothing in it looks like a scanner
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


def load_signer():
    """The shared SendGrid signer module (skips the test when ../shared is absent)."""
    if not SIGNER_PATH.exists():
        pytest.skip(
            f"SendGrid signer not found at {SIGNER_PATH} (../shared/sendgrid is a sibling "
            "of the repository in the project workspace)"
        )
    spec = importlib.util.spec_from_file_location("sign_events", SIGNER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class SendGridKey:
    """A fresh P-256 key pair: ``public`` goes in SENDGRID_WEBHOOK_PUBLIC_KEY (base64 DER)."""

    signer: object
    private: object = None
    public: str = ""

    def __post_init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public = self.signer.public_key_b64(self.private)

    def headers(self, body: bytes, timestamp: int | None = None) -> dict:
        return {
            **self.signer.headers_for(self.private, body, timestamp),
            "Content-Type": "application/json",
        }


@dataclass
class Campaign:
    id: str
    link_ids: dict[str, int]
    urls: dict[str, str]
    recipients: dict[str, int]  # email -> ledger id
    send_id: str
    segment: str
    secret: bytes = field(repr=False, default=b"")

    def reader_token(self, email: str) -> str:
        return reader_token(self.secret, self.recipients[email])

    def click_path(self, key: str, email: str) -> str:
        """The path of a tracked link as mail carries it: /c/<reader token>/<link id>."""
        return f"/c/{self.reader_token(email)}/{self.link_ids[key]}"

    def unsubscribe_path(self, email: str) -> str:
        return f"/u/{self.reader_token(email)}"

    def old_click_path(self, key: str, email: str) -> str:
        """As mail sent before reader tokens carries it: /c/<click token>."""
        return f"/c/{click_token(self.secret, self.link_ids[key], self.recipients[email])}"

    def old_unsubscribe_path(self, email: str) -> str:
        return f"/u/{unsubscribe_token(self.secret, self.recipients[email])}"


LINKS = {
    "basics@2019-06-27": "https://equip.example.org/courses/basics?date=2019-06-27",
    "coaching@2019-07-11": "https://equip.example.org/courses/coaching?date=2019-07-11",
    "measurement": "https://equip.example.org/courses/measurement",
    "about": "https://equip.example.org/about",
}


def seed_campaign(
    engine,
    secret: bytes,
    campaign_id: str = "2019-04-equip",
    emails: tuple[str, ...] = ("ann.example@example.org", "bob.example@example.org"),
    segment: str = "beginner",
    sent_at: dt.datetime | None = None,
    links: dict[str, str] | None = None,
) -> Campaign:
    """A campaign row, its link registry (UTM applied), one sent batch and ledger rows."""
    links = links or {
        k: f"{u}{'&' if '?' in u else '?'}utm_source=equip&utm_medium=email"
        f"&utm_campaign={campaign_id}&utm_content={k}"
        for k, u in LINKS.items()
    }
    now = store.utcnow()
    send_id = uuid.uuid4().hex
    with engine.begin() as conn:
        store.ensure_campaign(conn, campaign_id, "EQUIP courses this quarter")
        ids = register_links(
            conn,
            campaign_id,
            [
                LinkSpec(
                    key=k,
                    url=u,
                    label=k.split("@")[0].title(),
                    course_id=k.split("@")[0],
                    session=(k.split("@")[1] if "@" in k else None),
                )
                for k, u in links.items()
            ],
        )
        batch_id = conn.execute(
            store.batches.insert().values(
                campaign_id=campaign_id,
                segment=segment,
                send_id=send_id,
                backend="outbox",
                state="sent",
                size=len(emails),
                attempts=1,
                created_at=now,
                finished_at=sent_at,
            )
        ).inserted_primary_key[0]
        recipients = {}
        for email in emails:
            recipients[email] = conn.execute(
                store.ledger.insert().values(
                    campaign_id=campaign_id,
                    email=email,
                    email_key=email.lower(),
                    segment=segment,
                    state="sent",
                    batch_id=batch_id,
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                    sent_at=sent_at,
                )
            ).inserted_primary_key[0]
    return Campaign(campaign_id, ids, dict(links), recipients, send_id, segment, secret)


def rows(engine, table=store.events, *where) -> list:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table).where(*where).order_by(table.c[list(table.c.keys())[0]])
        ).all()


def written_rows(engine, table=store.events, *where) -> list:
    """Stored rows, once every click redirected so far is written (the service writes
    clicks just after their redirect; see track.click_writer)."""
    assert flush_clicks()
    return rows(engine, table, *where)


def message_id() -> str:
    return f"{uuid.uuid4().hex[:11]}.dfd.{uuid.uuid4().hex[:6]}"


def sendgrid_events(
    campaign: Campaign, email: str, *, msg: str | None = None, start: int | None = None
) -> list[dict]:
    """One of every event SendGrid posts (plus one it might add later), for one recipient,
    with our custom_args flattened in as SendGrid does."""
    msg = msg or message_id()
    t = start or int(time.time()) - 300
    args = {
        "campaign_id": campaign.id,
        "segment": campaign.segment,
        "recipient": str(campaign.recipients[email]),
        "send_id": campaign.send_id,
    }
    sgid = f"{msg}.filter0001.16648.5515E0B88.0"

    def ev(name, dt_s, **extra):
        return {
            "email": email,
            "timestamp": t + dt_s,
            "event": name,
            "smtp-id": f"<{msg}@ismtpd-555>",
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": sgid,
            "category": ["equip"],
            **args,
            **extra,
        }

    ua = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    return [
        ev("processed", 0),
        ev("deferred", 1, response="400 try again later", attempt="1"),
        ev("delivered", 2, response="250 OK", ip="168.1.1.1", tls=1),
        ev("open", 100, useragent=ua, ip="255.255.255.255", sg_machine_open=False),
        ev(
            "click",
            120,
            useragent=ua,
            ip="255.255.255.255",
            url=campaign.urls["measurement"],
            url_offset={"index": 0, "type": "html"},
        ),
        ev(
            "bounce",
            130,
            reason="550 5.1.1 unknown recipient",
            status="5.1.1",
            type="bounce",
            bounce_classification="Invalid Address",
        ),
        ev("bounce", 131, reason="550 blocked by policy", status="5.7.1", type="blocked"),
        ev("dropped", 140, reason="Bounced Address", status="5.0.0"),
        ev("spamreport", 150),
        ev("unsubscribe", 160),
        ev("group_unsubscribe", 170, asm_group_id=42, useragent=ua, ip="255.255.255.255"),
        ev("group_resubscribe", 180, asm_group_id=42),
        ev("account_status_change", 190, type="compliance_suspend"),
    ]


def body_of(items: list[dict]) -> bytes:
    return json.dumps(items, separators=(",", ":")).encode("utf-8")
