"""A campaign's live report on the team pages: the same sections as the report.html that
``equip-mailer report`` writes, the same CSV and XLSX to download, counted once per change
of the store."""

from __future__ import annotations

import io
import re
import time

import openpyxl
from click.testing import CliRunner
from support.report_fixture import (
    CAMPAIGN,
    RECIPIENTS,
    at,
    create_campaign,
    insert_events,
    insert_links,
    insert_recipients,
)
from support.report_fixture import _events as hand_counted_events

from equip_mailer.cli import main
from equip_mailer.team.report_cache import cache_of

SECTIONS = re.compile(
    r'(<div class="cards">.*?)(?:<section aria-labelledby="downloads">|<footer)', re.S
)


def seed(engine) -> None:
    with engine.begin() as conn:
        create_campaign(conn)
        insert_links(conn)
        insert_recipients(conn)
        insert_events(conn, hand_counted_events())


def cli_report(settings, out, *extra: str) -> None:
    env = {"EQUIP_DATABASE_URL": settings.database_url, "EQUIP_LINK_SECRET": "x" * 40}
    result = CliRunner().invoke(main, ["report", CAMPAIGN, "--out", str(out), *extra], env=env)
    assert result.exit_code == 0, result.output


def sections(html: str) -> str:
    found = SECTIONS.search(html)
    assert found, "no report sections on the page"
    return found.group(1).strip()


def test_the_live_report_shows_what_the_command_writes(team, engine, settings, tmp_path):
    seed(engine)
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    answer = client.get(f"/team/campaigns/{CAMPAIGN}")
    assert answer.status_code == 200, answer.text
    page = answer.text
    cli_report(settings, tmp_path / "cli")
    written = (tmp_path / "cli" / "report.html").read_text(encoding="utf-8")
    # Same cards, tables, charts and notes, byte for byte.
    assert sections(page) == sections(written)
    cards = dict(re.findall(r'<p class="label">([^<]+)</p><p class="value">([^<]+)</p>', page))
    assert cards["Sent"] == "11" and cards["Unique clickers"] == "5"  # counted by hand
    for _rid, *_rest in RECIPIENTS:
        assert f"person{_rid}@example.org" not in page  # a report names nobody
    assert "Count machine clicks too" in page

    everything = client.get(f"/team/campaigns/{CAMPAIGN}?all=1").text
    cli_report(settings, tmp_path / "cli-all", "--all")
    all_written = (tmp_path / "cli-all" / "report.html").read_text(encoding="utf-8")
    assert sections(everything) == sections(all_written)
    assert sections(everything) != sections(page)


def test_the_downloads_are_the_commands_files(team, engine, settings, tmp_path):
    seed(engine)
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    page = client.get(f"/team/campaigns/{CAMPAIGN}").text
    cli_report(settings, tmp_path / "cli")
    csv_links = re.findall(rf'href="(/team/campaigns/{CAMPAIGN}/csv/(\w+)\.csv)"', page)
    assert {key for _, key in csv_links} >= {"funnel", "courses", "sessions", "machine"}
    for href, key in csv_links:
        answer = client.get(href)
        assert answer.status_code == 200, href
        assert answer.headers["content-type"].startswith("text/csv")
        assert f'filename="{CAMPAIGN}-{key}.csv"' in answer.headers["content-disposition"]
        assert answer.content == (tmp_path / "cli" / f"{key}.csv").read_bytes(), key

    answer = client.get(f"/team/campaigns/{CAMPAIGN}/report.xlsx")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    ours = openpyxl.load_workbook(io.BytesIO(answer.content))
    theirs = openpyxl.load_workbook(tmp_path / "cli" / "report.xlsx")
    assert ours.sheetnames == theirs.sheetnames and ours.sheetnames[0] == "Summary"
    for name in ours.sheetnames:
        assert [list(r) for r in ours[name].values] == [list(r) for r in theirs[name].values], name

    assert client.get(f"/team/campaigns/{CAMPAIGN}/csv/nothing.csv").status_code == 404
    assert client.get(f"/team/campaigns/{CAMPAIGN}/csv/..%2Fx.csv").status_code == 404
    assert client.get("/team/campaigns/no-such-campaign").status_code == 404
    anonymous = team.client()
    for path in (f"/team/campaigns/{CAMPAIGN}", f"/team/campaigns/{CAMPAIGN}/report.xlsx"):
        refused = anonymous.get(path)
        assert refused.status_code == 303 and "/team/sign-in" in refused.headers["location"]


def test_a_report_is_counted_once_per_change_of_the_store(team, engine):
    seed(engine)
    client = team.client()
    team.sign_in(client, "ann@nhs.example")
    cache = cache_of(team.app.state)
    first = client.get(f"/team/campaigns/{CAMPAIGN}").text
    assert 'Unique clickers</p><p class="value">5<' in first
    counted = cache.counts
    for _ in range(3):
        assert client.get(f"/team/campaigns/{CAMPAIGN}").status_code == 200
    assert cache.counts == counted  # nothing changed: nothing counted again

    with engine.begin() as conn:  # reader 4 clicks: a new event
        insert_events(conn, [("click", at(4, 25, 9, 0), 4, 1, None)])
    deadline = time.monotonic() + 20
    while True:
        page = client.get(f"/team/campaigns/{CAMPAIGN}").text
        if 'Unique clickers</p><p class="value">6<' in page:
            break
        # The older figures meanwhile: the store's version is read again within a second,
        # then the page says new events are being counted until the count is done.
        assert 'Unique clickers</p><p class="value">5<' in page
        assert time.monotonic() < deadline, "the new click was never counted"
        time.sleep(0.1)
    assert cache.counts == counted + 1
    assert "are being counted now" not in page
