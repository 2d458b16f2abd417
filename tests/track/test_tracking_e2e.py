"""Issue 4's "done when", end to end: the demo campaign is sent to the outbox by the real
CLI, a sign-up link in one of those emails is clicked through the running service, the
email's own one-click List-Unsubscribe is used, and the next campaign's send leaves that
address out."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import shutil
from pathlib import Path

import httpx
from click.testing import CliRunner
from support.link_secrets import LINK_SECRET
from support.service import running_app
from support.tracking_data import REPO
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.config import Settings
from equip_mailer.track.app import create_app

DEMO = REPO / "campaigns" / "2019-04-equip-training.yaml"
CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15"
)


def _send(spec: Path, outbox: Path, env: dict) -> str:
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
            str(outbox),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_outbox_link_click_and_one_click_unsubscribe_honoured_by_next_send(tmp_path, monkeypatch):
    for folder in ("lists", "templates"):
        (tmp_path / folder).symlink_to(REPO / folder)
    (tmp_path / "campaigns").mkdir()
    next_spec = tmp_path / "campaigns" / "next.yaml"
    next_spec.write_text(
        DEMO.read_text(encoding="utf-8").replace(
            "id: 2019-04-equip-training", "id: 2019-07-next-wave", 1
        ),
        encoding="utf-8",
    )
    shutil.copy(DEMO, tmp_path / "campaigns" / DEMO.name)
    monkeypatch.chdir(tmp_path)

    db_url = f"sqlite:///{tmp_path / 'equip.db'}"
    engine = store.open_store(db_url)
    secret = LINK_SECRET
    with running_app(create_app(Settings(database_url=db_url, link_secret=secret), engine)) as base:
        env = {
            "EQUIP_DATABASE_URL": db_url,
            "EQUIP_LINK_SECRET": secret,
            "EQUIP_PUBLIC_URL": base,
            "SENDGRID_API_KEY": "",
        }
        _send(tmp_path / "campaigns" / DEMO.name, tmp_path / "outbox", env)
        emls = sorted((tmp_path / "outbox" / "2019-04-equip-training").glob("*.eml"))
        assert emls
        msg = email.message_from_bytes(emls[0].read_bytes(), policy=email.policy.default)
        address = msg["To"].addresses[0].addr_spec
        ledger_id = int(msg["X-Equip-Recipient"])
        html = msg.get_body(("html",)).get_content()
        tracked = sorted(set(re.findall(re.escape(base) + r"/c/[A-Za-z0-9_-]+/[0-9]+", html)))
        assert tracked and address not in " ".join(tracked)

        # The reader opens the mail an hour later (a click seconds after sending would be
        # flagged as a gateway scan).
        earlier = store.utcnow() - dt.timedelta(hours=1)
        with engine.begin() as conn:
            conn.execute(store.ledger.update().values(sent_at=earlier))
            conn.execute(store.batches.update().values(finished_at=earlier))
        with httpx.Client(follow_redirects=False, headers={"User-Agent": CHROME}) as client:
            response = client.get(tracked[0])
            assert response.status_code == 302
            target = response.headers["location"]
            # An external page (with UTM), or this reader's own page for a course taken here.
            assert target.startswith("/s/") or (
                target.startswith("https://equip.example.org/") and "utm_medium=email" in target
            )
            (click,) = rows(engine, store.events, store.events.c.event == "click")
            assert (click.ledger_id, click.campaign_id, click.machine) == (
                ledger_id,
                "2019-04-equip-training",
                False,
            )

            # The email's own one-click header, used the way a mail client does (RFC 8058).
            unsubscribe = msg["List-Unsubscribe"].strip("<>")
            assert unsubscribe.startswith(base + "/u/")
            assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            response = client.post(
                unsubscribe,
                content=msg["List-Unsubscribe-Post"].encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 200

        output = _send(next_spec, tmp_path / "outbox", env)
    sent_next = list((tmp_path / "outbox" / "2019-07-next-wave").glob("*.eml"))
    recipients_next = {
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["To"]
        .addresses[0]
        .addr_spec.lower()
        for p in sent_next
    }
    assert address.lower() not in recipients_next
    assert len(sent_next) == len(emls) - 1
    print(
        f"e2e: sent {len(emls)}, clicked 1 link -> {target.split('?')[0]}, unsubscribed 1, "
        f"next send {len(sent_next)} ({output.strip().splitlines()[-1]})"
    )
    engine.dispose()
