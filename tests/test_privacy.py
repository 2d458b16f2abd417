"""Issue 7.6: no full address in logs, tokens, custom_args or URLs, across the whole pipeline.

One demo campaign goes through the real `sendgrid` client to the local SendGrid-compatible
server; a reader clicks a tracked link and unsubscribes through the real tracking service
(uvicorn, access log on); SendGrid posts signed events for that reader. Then every place an
address must not appear is scanned for every address on the lists.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from support.fake_sendgrid import start_server
from support.service import running_app
from support.tracking_data import SendGridKey, body_of, load_signer

from equip_mailer import store
from equip_mailer.cli import main
from equip_mailer.config import load_settings
from equip_mailer.track.app import create_app

ROOT = Path(__file__).resolve().parent.parent
CID = "2019-04-equip-training"
PUBLIC = "https://equip.example.org"


@pytest.fixture
def project(demo_project):
    return demo_project


def leaks(addresses: set[str], text: str) -> list[str]:
    """Addresses found in ``text``, plain or percent-encoded (an @ as %40)."""
    lowered = text.lower().replace("%40", "@")
    return sorted(a for a in addresses if a in lowered)


def test_no_full_address_leaves_in_logs_tokens_custom_args_or_urls(project, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level, uvicorn's access log too
    url, server = start_server("SG.privacy-key", keep_bodies=True)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.privacy-key")
    monkeypatch.setenv("SENDGRID_API_HOST", url)
    monkeypatch.setenv("EQUIP_SENDER_DOMAIN", "example.org")  # the pre-flight of a real send
    runner = CliRunner()
    spec = str(project / "campaigns" / f"{CID}.yaml")
    try:
        outputs = [
            runner.invoke(main, args).output
            for args in (
                ["check", spec, "--allow-past"],
                ["send", spec, "--allow-past", "--dry-run"],
                ["send", spec, "--allow-past", "--yes"],
                ["status", spec],
            )
        ]
    finally:
        server.stop()
    addresses = set(server.emails())
    assert len(addresses) > 300, outputs

    # What left for SendGrid besides the To field: custom_args, headers, substitutions, and
    # the link URLs in the content (each reader's token fills them in).
    carried: list[str] = []
    for body in server.bodies:
        carried += [str(body.get("categories")), str(body.get("custom_args", ""))]
        for part in body["content"]:
            carried += re.findall(r"https?://[^\s\"'<>]+", part["value"])
        for p in body["personalizations"]:
            carried += list(p["custom_args"].values()) + list(p.get("headers", {}).values())
            carried += list(p["substitutions"].values())
    assert any("/c/" in c for c in carried) and any("/u/" in c for c in carried)

    # A reader clicks, unsubscribes, and SendGrid reports on them, through the real service.
    first = server.bodies[0]["personalizations"][0]
    reader = first["to"][0]["email"].lower()
    html = next(c["value"] for c in server.bodies[0]["content"] if c["type"] == "text/html")
    for token, value in first["substitutions"].items():
        html = html.replace(token, value)
    click = re.search(re.escape(PUBLIC) + r"(/c/[A-Za-z0-9_-]+/[0-9]+)", html).group(1)
    unsub = (
        re.search(r"<([^>]+/u/[^>]+)>", first["headers"]["List-Unsubscribe"])
        .group(1)
        .replace(PUBLIC, "")
    )
    key = SendGridKey(load_signer())
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", key.public)
    settings = load_settings()
    engine = store.open_store(settings.database_url)
    events = [
        {
            "email": reader,
            "timestamp": 1555930000 + i,
            "event": name,
            "sg_message_id": f"privacy{i}.filter0001",
            "campaign_id": CID,
            "recipient": first["custom_args"]["recipient"],
            "send_id": first["custom_args"]["send_id"],
            "segment": first["custom_args"]["segment"],
            "reason": "550 unknown user " + reader,
        }
        for i, name in enumerate(("delivered", "bounce"))
    ]
    body = body_of(events)
    pages = []
    with running_app(create_app(settings, engine), log_level="debug", access_log=True) as base:
        for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):  # they don't propagate to root
            logging.getLogger(name).addHandler(caplog.handler)
        with httpx.Client(base_url=base, follow_redirects=False) as http:
            assert http.get(click).status_code == 302
            pages.append(http.get(unsub).text)
            pages.append(http.post(unsub, content=b"List-Unsubscribe=One-Click").text)
            assert (
                http.post("/webhooks/sendgrid", content=body, headers=key.headers(body)).status_code
                == 200
            )
    for name in ("uvicorn", "uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).removeHandler(caplog.handler)
    with engine.connect() as conn:
        assert store.suppressed_keys(conn) >= {reader}  # the unsubscribe did happen
        stored_urls = [r[0] or "" for r in conn.execute(sa.select(store.events.c.url))]
        stored_urls += [r[0] for r in conn.execute(sa.select(store.links.c.url))]
        batch_errors = [r[0] or "" for r in conn.execute(sa.select(store.batches.c.error))]
    engine.dispose()

    logs = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "GET /c/" in logs  # the access log was captured
    print(
        f"privacy: {len(addresses)} addresses; scanned {len(caplog.records)} log records, "
        f"{len(carried)} custom_args/header/URL values, {len(stored_urls)} stored URLs, "
        f"{len(outputs)} command outputs, {len(pages)} unsubscribe pages"
    )
    assert leaks(addresses, logs) == []
    assert leaks(addresses, "\n".join(outputs)) == []
    assert leaks(addresses, "\n".join(carried)) == []
    assert leaks(addresses, "\n".join(stored_urls + batch_errors)) == []
    assert leaks(addresses, "\n".join(pages)) == []
