"""Machine-click detection as pure functions: the user-agent table, HEAD, timing, bursts."""

from __future__ import annotations

import datetime as dt

import pytest

from equip_mailer.track import machines
from equip_mailer.track.machines import (
    Click,
    burst_ids,
    delivery_reason,
    flag_clicks,
    request_reason,
)

T0 = dt.datetime(2019, 4, 15, 9, 0, 0)

HUMANS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
]

MACHINES = {
    "": "ua:empty",
    "   ": "ua:empty",
    (
        "Mozilla/5.0 (compatible; Microsoft-URLAnalyzer/1.0; +https://aka.ms/safelinks)"
    ): "ua:microsoft-safelinks",
    "Microsoft Office Existence Discovery": "ua:microsoft-office",
    (
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17126; Pro)"
    ): "ua:microsoft-office",
    (
        "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5 "
        "skype-url-preview@microsoft.com"
    ): "ua:microsoft-preview",
    "Mozilla/5.0 (compatible; Mimecast URL Protect)": "ua:mimecast",
    "Proofpoint URL Defense": "ua:proofpoint",
    "Barracuda Sentinel (EE)": "ua:barracuda",
    "Cisco IronPort WSA": "ua:cisco-ironport",
    "Symantec MessageLabs link scanner": "ua:symantec",
    "Forcepoint Email Security": "ua:forcepoint",
    "Sophos Email URL Protection": "ua:sophos",
    "TrendMicro TMUFE": "ua:trend-micro",
    "Mozilla/5.0 (compatible; Google-Safety; +http://www.google.com/bot.html)": "ua:google-preview",
    (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    ): "ua:google-preview",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "ua:slack-preview",
    "facebookexternalhit/1.1": "ua:chat-preview",
    "curl/8.5.0": "ua:http-client",
    "python-requests/2.31.0": "ua:http-client",
    "python-httpx/0.28.1": "ua:http-client",
    "Python-urllib/3.11": "ua:http-client",
    "Go-http-client/1.1": "ua:http-client",
    "Wget/1.21.4": "ua:http-client",
    (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0 Safari/537.36"
    ): "ua:http-client",
    "SomeCompany LinkChecker/2.0": "ua:bot",
}


@pytest.mark.parametrize("ua", HUMANS)
def test_people_are_not_flagged(ua):
    assert request_reason("GET", ua) is None


@pytest.mark.parametrize("ua,reason", MACHINES.items())
def test_scanner_and_client_user_agents_are_named(ua, reason):
    assert request_reason("GET", ua) == reason


def test_head_beats_the_user_agent():
    assert request_reason("HEAD", HUMANS[0]) == "head"
    assert request_reason("head", "curl/8") == "head"


def test_every_table_entry_has_a_pattern_that_compiles_and_a_reason_name():
    names = [name for name, _ in machines.USER_AGENT_PATTERNS]
    assert len(names) == len(set(names))
    covered = {r.removeprefix("ua:") for r in MACHINES.values()}
    assert covered - {"empty"} <= set(names)
    print(
        f"user-agent table: {len(names)} groups; {len(MACHINES)} machine and "
        f"{len(HUMANS)} human samples"
    )


def test_delivery_window():
    assert delivery_reason(T0 + dt.timedelta(seconds=3), T0) == "after-delivery"
    assert (
        delivery_reason(T0 - dt.timedelta(seconds=2), T0) == "after-delivery"
    )  # scanned in transit
    assert delivery_reason(T0 + dt.timedelta(seconds=10), T0) is None
    assert delivery_reason(T0 + dt.timedelta(minutes=30), T0) is None
    assert delivery_reason(T0, None) is None
    assert delivery_reason(T0 + dt.timedelta(seconds=25), T0, window=30) == "after-delivery"


def _clicks(*spec):
    return [Click(i, T0 + dt.timedelta(seconds=s), link) for i, (s, link) in enumerate(spec, 1)]


def test_three_distinct_links_within_two_seconds_is_a_burst():
    assert burst_ids(_clicks((0, 1), (0.5, 2), (1.2, 3))) == {1, 2, 3}
    # the same link three times is a person double-clicking, not a scanner
    assert burst_ids(_clicks((0, 1), (0.5, 1), (1.0, 1))) == set()
    # spread out: a person reading down the menu
    assert burst_ids(_clicks((0, 1), (30, 2), (95, 3))) == set()
    # only the clicks inside the burst window are flagged
    assert burst_ids(_clicks((0, 1), (100, 2), (100.4, 3), (101, 4), (300, 1))) == {2, 3, 4}
    # URLs work as link identities too (SendGrid's own click tracking)
    assert burst_ids(_clicks((0, "a"), (1, "b"), (1.9, "c"))) == {1, 2, 3}


def test_flag_clicks_combines_signals_and_keeps_earlier_reasons():
    clicks = _clicks((2, 1), (60, 2), (61, 3), (61.5, 4), (600, 1))
    clicks[4] = Click(5, clicks[4].at, 1, machine=True)
    found = flag_clicks(clicks, delivered_at=T0)
    assert found == {1: "after-delivery", 2: "burst", 3: "burst", 4: "burst"}
    assert flag_clicks(_clicks((600, 1)), delivered_at=None) == {}


def test_reclassify_campaign_against_the_store(db_url):
    """The pass reports can run before counting, on SQLite and PostgreSQL: it only adds flags."""
    from support.tracking_data import rows, seed_campaign

    from equip_mailer import store

    engine = store.open_store(db_url)
    campaign = seed_campaign(
        engine, b"secret", campaign_id="pass", sent_at=T0, emails=("a@example.org", "b@example.org")
    )
    a, b = campaign.recipients["a@example.org"], campaign.recipients["b@example.org"]
    now = store.utcnow()

    def click(ledger_id, seconds, link, machine=False, reason=None):
        return {
            "dedupe_key": f"{ledger_id}-{seconds}-{link}",
            "event": "click",
            "source": "tracker",
            "at": T0 + dt.timedelta(seconds=seconds),
            "campaign_id": "pass",
            "ledger_id": ledger_id,
            "link_id": campaign.link_ids[link],
            "machine": machine,
            "machine_reason": reason,
            "received_at": now,
        }

    with engine.begin() as conn:
        conn.execute(
            store.events.insert(),
            [
                click(a, 4, "about"),  # scanned on arrival
                click(a, 3600, "about", True, "ua:mimecast"),  # keeps its first reason
                click(b, 600, "about"),
                click(b, 600.5, "measurement"),
                click(b, 601, "basics@2019-06-27"),
                click(b, 4000, "about"),  # a person, later
            ],
        )
        assert machines.reclassify_campaign(conn, "pass") == 4
        assert machines.reclassify_campaign(conn, "pass") == 0  # idempotent
    flags = [(r.ledger_id, r.machine, r.machine_reason) for r in rows(engine)]
    assert flags == [
        (a, True, "after-delivery"),
        (a, True, "ua:mimecast"),
        (b, True, "burst"),
        (b, True, "burst"),
        (b, True, "burst"),
        (b, False, None),
    ]
    engine.dispose()
