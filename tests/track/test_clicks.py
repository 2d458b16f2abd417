"""/c/ over real HTTP: uvicorn on a free loopback port, driven with httpx.

Clicks redirect only to URLs in the campaign's registry and are recorded once; machine
clicks are flagged; bad, forged and cross-campaign tokens get a 404 page and no Location;
a click whose store cannot record it is still redirected.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

import httpx
import pytest
import sqlalchemy as sa
from support.service import running_app
from support.tracking_data import ANN, BOB, CHROME, seed_campaign
from support.tracking_data import rows as stored_rows
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.send.links import click_token, reader_token, unsubscribe_token
from equip_mailer.track.app import create_app


def clicks(engine):
    return rows(engine, store.events, store.events.c.event == "click")


def test_click_redirects_to_registered_url_with_utm_and_is_recorded_once(service, campaign, engine):
    _, client = service
    response = client.get(campaign.click_path("basics@2019-06-27", ANN))
    assert response.status_code == 302
    target = campaign.urls["basics@2019-06-27"]
    assert response.headers["location"] == target
    assert "utm_medium=email" in target and "utm_content=basics@2019-06-27" in target
    recorded = clicks(engine)
    assert len(recorded) == 1
    click = recorded[0]
    assert (click.link_id, click.ledger_id, click.segment, click.campaign_id) == (
        campaign.link_ids["basics@2019-06-27"],
        campaign.recipients[ANN],
        "beginner",
        campaign.id,
    )
    assert click.send_id == campaign.send_id
    assert (click.source, click.method, click.user_agent, click.url) == (
        "tracker",
        "GET",
        CHROME,
        target,
    )
    assert click.machine is False and click.machine_reason is None
    # The IP is stored only as a keyed, truncated hash.
    assert click.ip_hash and len(click.ip_hash) == 16 and "127.0.0.1" not in click.ip_hash
    print(f"click: 302 -> {target}; recorded {len(recorded)} event, machine={click.machine}")


def test_every_click_is_its_own_event(service, campaign, engine):
    _, client = service
    for _ in range(3):  # the same link again and again: a person, not a scanner's burst
        assert client.get(campaign.click_path("about", BOB)).status_code == 302
    assert client.get(campaign.click_path("measurement", ANN)).status_code == 302
    recorded = clicks(engine)
    assert len(recorded) == 4
    assert len({r.dedupe_key for r in recorded}) == 4
    assert len({r.ledger_id for r in recorded}) == 2  # reports count unique clickers
    assert not any(r.machine for r in recorded)


def test_head_request_is_recorded_as_machine_click_and_redirected(service, campaign, engine):
    _, client = service
    response = client.head(campaign.click_path("measurement", ANN))
    assert response.status_code == 302
    assert response.headers["location"] == campaign.urls["measurement"]
    (click,) = clicks(engine)
    assert (click.method, click.machine, click.machine_reason) == ("HEAD", True, "head")


@pytest.mark.parametrize(
    "user_agent,reason",
    [
        ("", "ua:empty"),
        ("Mozilla/5.0 (compatible; Microsoft-URLAnalyzer/1.0)", "ua:microsoft-safelinks"),
        ("Mimecast URL Protect", "ua:mimecast"),
        ("Mozilla/5.0 (X11; Linux x86_64) Barracuda Sentinel", "ua:barracuda"),
        ("python-requests/2.31.0", "ua:http-client"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "ua:slack-preview"),
    ],
)
def test_scanner_user_agents_are_flagged_not_dropped(service, campaign, engine, user_agent, reason):
    _, client = service
    response = client.get(campaign.click_path("about", ANN), headers={"User-Agent": user_agent})
    assert response.status_code == 302
    (click,) = clicks(engine)
    assert (click.machine, click.machine_reason) == (True, reason)


def test_a_click_on_the_mail_of_someone_forgotten_keeps_no_user_agent_or_ip(
    settings, engine, campaign, tmp_path
):
    """Found in the audit: after ``forget``, a click on their old mail stored its user agent
    and IP hash on the anonymous ledger row again. It is now a count only, as forget leaves
    their earlier clicks; the reader is still redirected."""
    from equip_mailer.people.forget import forget

    forget(engine, ANN, settings.require_link_secret(), outbox=tmp_path, now=store.utcnow())
    with running_app(create_app(settings, engine)) as base_url:
        with httpx.Client(base_url=base_url, headers={"User-Agent": CHROME}) as client:
            response = client.get(campaign.click_path("about", ANN), follow_redirects=False)
            other = client.get(campaign.click_path("about", BOB), follow_redirects=False)

    assert response.status_code == other.status_code == 302
    by_reader = {c.ledger_id: c for c in clicks(engine)}
    ann, bob = by_reader[campaign.recipients[ANN]], by_reader[campaign.recipients[BOB]]
    assert (ann.user_agent, ann.ip_hash, ann.link_id) == (None, None, campaign.link_ids["about"])
    assert bob.user_agent == CHROME and bob.ip_hash  # everyone else's as before


def test_click_within_seconds_of_sending_is_machine(settings, engine):
    campaign = seed_campaign(
        engine, settings.require_link_secret(), campaign_id="just-sent", sent_at=store.utcnow()
    )
    with running_app(create_app(settings, engine)) as base:
        response = httpx.get(
            base + campaign.click_path("about", ANN), headers={"User-Agent": CHROME}
        )
    assert response.status_code == 302
    (click,) = clicks(engine)
    assert (click.machine, click.machine_reason) == (True, "after-delivery")


def test_one_recipient_clicking_every_link_at_once_is_flagged(service, campaign, engine):
    _, client = service
    for key in ("basics@2019-06-27", "coaching@2019-07-11", "measurement"):
        assert client.get(campaign.click_path(key, ANN)).status_code == 302
    assert client.get(campaign.click_path("about", BOB)).status_code == 302  # someone else
    by_person = {}
    for r in clicks(engine):
        by_person.setdefault(r.ledger_id, []).append((r.machine, r.machine_reason))
    assert by_person[campaign.recipients[ANN]] == [(True, "burst")] * 3
    assert by_person[campaign.recipients[BOB]] == [(False, None)]


def test_a_link_in_mail_sent_before_reader_tokens_still_works(service, campaign, engine):
    _, client = service
    response = client.get(campaign.old_click_path("measurement", ANN))
    assert response.status_code == 302
    assert response.headers["location"] == campaign.urls["measurement"]
    (click,) = clicks(engine)
    assert (click.link_id, click.ledger_id) == (
        campaign.link_ids["measurement"],
        campaign.recipients[ANN],
    )


def test_test_recipient_redirects_without_recording(service, campaign, engine, settings):
    _, client = service
    secret = settings.require_link_secret()
    link = campaign.link_ids["about"]
    for path in (f"/c/{reader_token(secret, 0)}/{link}", f"/c/{click_token(secret, link, 0)}"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["location"] == campaign.urls["about"]
    assert rows(engine) == []


def _assert_no_way_out(response, campaign):
    location = response.headers.get("location")
    assert location is None or location in campaign.urls.values(), location


def test_bad_tokens_are_a_plain_404_page(service, campaign, engine, settings):
    _, client = service
    secret = settings.require_link_secret()
    good = click_token(secret, campaign.link_ids["about"], campaign.recipients[ANN])
    flipped = good[:5] + ("A" if good[5] != "A" else "B") + good[6:]
    bad = {
        "tampered": flipped,
        "truncated": good[:-3],
        "extended": good + "AA",
        "random": "q7Zr0xY2mN8vLk3PwS1tUe",
        "other secret": click_token(
            b"someone-else's-secret", campaign.link_ids["about"], campaign.recipients[ANN]
        ),
        "unsubscribe token": unsubscribe_token(secret, campaign.recipients[ANN]),
        "unknown link": click_token(secret, 999_999, campaign.recipients[ANN]),
        "unknown recipient": click_token(secret, campaign.link_ids["about"], 999_999),
        "not base64": "%00%ff..",
    }
    reader = reader_token(secret, campaign.recipients[ANN])
    link = str(campaign.link_ids["about"])
    flipped = reader[:5] + ("A" if reader[5] != "A" else "B") + reader[6:]
    bad_paths = {f"old {name}": f"/c/{token}" for name, token in bad.items()} | {
        "reader token tampered": f"/c/{flipped}/{link}",
        "reader token truncated": f"/c/{reader[:-3]}/{link}",
        "reader token of another secret": f"/c/{reader_token(b'another', 1)}/{link}",
        "click token as a reader token": f"/c/{good}/{link}",
        "unsubscribe token as a reader token": f"/c/{unsubscribe_token(secret, 1)}/{link}",
        "reader token alone": f"/c/{reader}",
        "unknown link": f"/c/{reader}/999999",
        "link 0": f"/c/{reader}/0",
        "link with a leading zero": f"/c/{reader}/0{link}",
        "link not a number": f"/c/{reader}/about",
        "negative link": f"/c/{reader}/-{link}",
        "no link": f"/c/{reader}/",
        "unknown recipient": f"/c/{reader_token(secret, 999_999)}/{link}",
    }
    for name, path in bad_paths.items():
        response = client.get(path)
        assert response.status_code == 404, name
        assert "location" not in response.headers, name
        assert response.headers["content-type"].startswith("text/html")
        assert "this link is not valid" in response.text
        assert "reply to the email" in response.text  # a way to reach the team, not just "contact"
    assert rows(engine) == []
    print(f"bad tokens: {len(bad_paths)} kinds -> 404, 0 redirects, 0 events")


def test_cross_campaign_token_is_404(service, settings, engine):
    _, client = service
    secret = settings.require_link_secret()
    first = seed_campaign(engine, secret, campaign_id="2019-04-equip", emails=(ANN,))
    second = seed_campaign(
        engine,
        secret,
        campaign_id="2019-07-equip",
        emails=(BOB,),
        links={"other": "https://equip.example.org/other"},
    )
    # A genuine signature, but Bob's ledger row belongs to another campaign than the link:
    # the link id next to a reader token is not signed, so this check is what keeps a
    # reader's token from opening another campaign's links.
    for path in (
        f"/c/{click_token(secret, first.link_ids['about'], second.recipients[BOB])}",
        f"/c/{click_token(secret, second.link_ids['other'], first.recipients[ANN])}",
        f"/c/{second.reader_token(BOB)}/{first.link_ids['about']}",
        f"/c/{first.reader_token(ANN)}/{second.link_ids['other']}",
    ):
        response = client.get(path)
        assert response.status_code == 404 and "location" not in response.headers, path
    assert rows(engine) == []
    # Their own links still work.
    assert client.get(second.click_path("other", BOB)).status_code == 302


def test_open_redirect_tricks_never_leave_the_registry(service, campaign, engine):
    base, client = service
    good = campaign.click_path("about", ANN)
    tricks = [
        f"{good}?url=https://evil.example",
        f"{good}?next=//evil.example&redirect=https%3A%2F%2Fevil.example",
        f"{good}/https://evil.example",
        f"{good}%2F%2Fevil.example",
        f"{good}/",
        "//evil.example",
        "//evil.example/c/x",
        "/c//evil.example",
        "/c/%2F%2Fevil.example",
        "/c/%5C%5Cevil.example",
        "/c/https:%2F%2Fevil.example",
        "/c/..%2F..%2Fevil.example",
        "/c/" + "A" * 5000,
        "/%2F%2Fevil.example",
        "/c/\\\\evil.example",
    ]
    seen = {}
    for path in tricks:
        response = client.get(path)
        _assert_no_way_out(response, campaign)
        seen[path[:40]] = response.status_code
    # Only the good token with extra query parameters redirects, and only to the registry.
    assert seen[f"{good}?url=https://evil.example"[:40]] == 302
    redirected = [p for p, s in seen.items() if s == 302]
    assert all(p.startswith(good[:40]) for p in redirected)
    # An absolute-form request target naming another host changes nothing either.
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"GET http://evil.example{good} HTTP/1.1\r\nHost: evil.example\r\n"
            f"Connection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.splitlines():
        if line.startswith("location:"):
            assert line.split(":", 1)[1].strip() in {u.lower() for u in campaign.urls.values()}
    # The query-string click was real and recorded once per redirect; nothing else was.
    assert len(clicks(engine)) == sum(1 for s in seen.values() if s == 302) + (
        1 if b" 302 " in raw[:20] else 0
    )
    print(
        f"open-redirect tricks: {len(tricks) + 1} requests, redirects only to registered URLs "
        f"({len(redirected)} + absolute-form)"
    )


def test_click_is_still_redirected_when_the_store_cannot_record(settings, engine, campaign):
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE events"))
    with running_app(create_app(settings, engine)) as base:
        response = httpx.get(base + campaign.click_path("about", ANN), follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == campaign.urls["about"]


def test_concurrent_clicks_are_all_recorded(settings, engine):
    """20 readers clicking at once against SQLite: every click redirects and is stored once."""

    people = tuple(f"staff{i:03d}@example.org" for i in range(100))
    campaign = seed_campaign(
        engine, settings.require_link_secret(), campaign_id="busy", emails=people
    )
    keys = list(campaign.link_ids)
    paths = [campaign.click_path(keys[i % len(keys)], people[i % len(people)]) for i in range(500)]

    def run(part: int) -> list[int]:
        with httpx.Client(
            base_url=base, follow_redirects=False, timeout=60, headers={"User-Agent": CHROME}
        ) as c:
            return [c.get(p).status_code for p in paths[part::20]]

    with running_app(create_app(settings, engine)) as base:
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            statuses = [s for part in pool.map(run, range(20)) for s in part]
        seconds = time.monotonic() - started
    recorded = clicks(engine)
    print(
        f"concurrent clicks: {len(statuses)} clicks by 20 clients in {seconds:.1f} s "
        f"({len(statuses) / seconds:.0f}/s); recorded {len(recorded)}, "
        f"flagged machine {sum(r.machine for r in recorded)}"
    )
    assert statuses == [302] * 500
    assert len(recorded) == 500 and len({r.dedupe_key for r in recorded}) == 500


def test_click_path_on_both_backends(db_url, settings):
    """Lookup (inline on SQLite, threadpool on PostgreSQL), batched writer and machine pass."""
    from equip_mailer.config import Settings

    cfg = Settings(
        database_url=db_url, link_secret=settings.link_secret, public_url=settings.public_url
    )
    engine = store.open_store(db_url)
    try:
        campaign = seed_campaign(engine, cfg.require_link_secret())
        with running_app(create_app(cfg, engine)) as base:
            with httpx.Client(
                base_url=base, follow_redirects=False, headers={"User-Agent": CHROME}
            ) as c:
                for key in ("basics@2019-06-27", "coaching@2019-07-11", "measurement"):
                    assert c.get(campaign.click_path(key, ANN)).status_code == 302
                response = c.get(campaign.click_path("about", BOB))
                assert response.headers["location"] == campaign.urls["about"]
                token = click_token(cfg.require_link_secret(), campaign.link_ids["about"], 0)
                assert c.get(f"/c/{token}").status_code == 302  # test recipient: not recorded
        recorded = stored_rows(engine, store.events)  # shutdown wrote them
        flags = sorted((r.ledger_id, r.machine, r.machine_reason) for r in recorded)
        assert flags == sorted(
            [(campaign.recipients[ANN], True, "burst")] * 3
            + [(campaign.recipients[BOB], False, None)]
        )
    finally:
        engine.dispose()
