"""Issue 5's "done when", end to end: the demo campaign is sent to the outbox by the real
CLI, links in those emails are clicked through the running tracking service (by a person
and by a mail scanner), SendGrid's signed events arrive at the webhook, and
``equip-mailer report`` shows exactly what happened."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import re
import shutil
import time

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET
from support.service import running_app
from support.tracking_data import REPO, SendGridKey, body_of, load_signer

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.config import Settings
from equip_mailer.track.app import create_app

DEMO = REPO / "campaigns" / "2019-04-equip-training.yaml"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)
SCANNER = "Mimecast URL Protect/1.0"


def _sendgrid_event(
    name: str, ledger_id: int, send_id: str, segment: str, address: str, when: int
) -> dict:
    return {
        "email": address,
        "timestamp": when,
        "event": name,
        "sg_event_id": f"ev-{name}-{ledger_id}",
        "sg_message_id": f"msg-{ledger_id}.filter",
        "campaign_id": "2019-04-equip-training",
        "segment": segment,
        "recipient": str(ledger_id),
        "send_id": send_id,
        **({"reason": "550 5.1.1 unknown recipient", "type": "bounce"} if name == "bounce" else {}),
    }


def test_demo_send_clicks_and_signed_events_give_the_right_report(tmp_path, monkeypatch):
    signer = load_signer()
    key = SendGridKey(signer)
    for folder in ("lists", "templates"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "campaigns").mkdir()
    spec = tmp_path / "campaigns" / DEMO.name
    shutil.copy(DEMO, spec)
    monkeypatch.chdir(tmp_path)
    db_url = f"sqlite:///{tmp_path / 'equip.db'}"
    engine = store.open_store(db_url)
    secret = LINK_SECRET
    settings = Settings(
        database_url=db_url, link_secret=secret, sendgrid_webhook_public_key=key.public
    )
    with running_app(create_app(settings, engine)) as base:
        env = {
            "EQUIP_DATABASE_URL": db_url,
            "EQUIP_LINK_SECRET": secret,
            "EQUIP_PUBLIC_URL": base,
            "SENDGRID_API_KEY": "",
        }
        result = CliRunner().invoke(
            main,
            [
                "send",
                str(spec),
                "--allow-past",
                "--backend",
                "outbox",
                "--yes",
                "--outbox",
                str(tmp_path / "outbox"),
            ],
            env=env,
        )
        assert result.exit_code == 0, result.output
        mails = {}
        for path in sorted((tmp_path / "outbox" / "2019-04-equip-training").glob("*.eml")):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            mails[int(msg["X-Equip-Recipient"])] = msg
        with engine.connect() as conn:
            ledger = {
                r.id: r
                for r in conn.execute(
                    sa.select(
                        store.ledger.c.id,
                        store.ledger.c.segment,
                        store.ledger.c.email,
                        store.batches.c.send_id,
                    ).join(store.batches, store.batches.c.id == store.ledger.c.batch_id)
                )
            }
        new_to_qi = sorted(i for i in mails if ledger[i].segment == "getting-started")
        a, b, c, d, e = new_to_qi[:5]

        # Sent an hour ago, so a person's click is not mistaken for a gateway's scan on arrival.
        earlier = store.utcnow() - dt.timedelta(hours=1)
        with engine.begin() as conn:
            conn.execute(store.ledger.update().values(sent_at=earlier))
            conn.execute(store.batches.update().values(finished_at=earlier))

        def links_in(ledger_id: int) -> list[str]:
            html = mails[ledger_id].get_body(("html",)).get_content()
            return list(
                dict.fromkeys(re.findall(re.escape(base) + r"/c/[A-Za-z0-9_-]+/[0-9]+", html))
            )

        # SendGrid: delivered to a, c and d (half an hour ago), a bounce for e; b's
        # delivered event never came, but b's click below proves delivery.
        half_hour_ago = int(time.time()) - 1800
        items = [
            _sendgrid_event(
                "delivered", i, ledger[i].send_id, "getting-started", ledger[i].email, half_hour_ago
            )
            for i in (a, c, d)
        ]
        items.append(
            _sendgrid_event(
                "bounce", e, ledger[e].send_id, "getting-started", ledger[e].email, half_hour_ago
            )
        )
        body = body_of(items)
        with httpx.Client(follow_redirects=False) as client:
            answer = client.post(
                f"{base}/webhooks/sendgrid", content=body, headers=key.headers(body)
            )
            assert answer.status_code == 200, answer.text
            # a clicks the first sign-up link twice (a repeat), then the second; a mail
            # scanner fetches b's first link
            first, second = links_in(a)[:2]
            for url in (first, first, second):
                assert client.get(url, headers={"User-Agent": SAFARI}).status_code == 302
                time.sleep(2.2)  # slower than a scanner's burst
            assert client.get(links_in(b)[0], headers={"User-Agent": SCANNER}).status_code == 302

    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["report", str(spec), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    with (out / "funnel.csv").open(encoding="utf-8-sig", newline="") as fh:
        funnel = {row[0]: row[1:] for row in csv.reader(fh)}
    sent_new = sum(1 for i in mails if ledger[i].segment == "getting-started")
    # New to QI: every one sent; delivered a, c, d (events) + b (clicked) = 4; e bounced;
    # one human clicker (a) of 4 delivered = 25 %; one machine click (b)
    # nobody unsubscribed or signed up
    assert funnel["New to QI"] == [str(sent_new), "4", "1", "0", "1", "25.0", "0", "0", "0.0",
                                   "1"]  # fmt: skip
    # other segments: sent, but SendGrid reported no delivery for them (yet)
    assert funnel["All segments"] == [str(len(mails)), "4", "1", "0", "1", "25.0", "0", "0",
                                      "0.0", "1"]  # fmt: skip
    with (out / "machine.csv").open(encoding="utf-8-sig", newline="") as fh:
        machine = list(csv.reader(fh))
    assert machine[1] == ["Human", "3", "75.0", "1"]
    assert machine[2][0] == "Machine: link scanner (Mimecast)" and machine[2][1] == "1"
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "25.0%" in html and "<svg" in html
    assert "1 machine click left out" in html  # one, not "1 machine clicks"

    # By campaign id alone, the report borrows names from the spec the send recorded.
    result = CliRunner().invoke(
        main, ["report", "2019-04-equip-training", "--out", str(tmp_path / "by-id")], env=env
    )
    assert result.exit_code == 0, result.output
    with (tmp_path / "by-id" / "funnel.csv").open(encoding="utf-8-sig", newline="") as fh:
        assert [row[0] for row in csv.reader(fh)][1:] == [
            "New to QI",
            "Basic QI knowledge",
            "Running a QI project",
            "All segments",
        ]
    engine.dispose()
