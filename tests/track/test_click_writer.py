"""The click writer: clicks are written just after their redirect, in batches, by one
thread; readers see them without a flush, a shutdown writes the rest, and a scanner's burst
inside one batch is flagged like one spread over several.
"""

from __future__ import annotations

import threading
import time

import httpx
from support.service import running_app
from support.tracking_data import ANN, BOB, CHROME
from support.tracking_data import rows as stored_rows
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.track.app import create_app
from equip_mailer.track.click_writer import ClickWriter
from equip_mailer.track.clicks import click_event
from equip_mailer.track.lookups import Link, Reader


def test_clicks_become_visible_without_a_flush_and_shutdown_writes_the_rest(
    settings, engine, campaign
):
    """Clicks are written just after their redirect, by one writer thread: readers see them
    within a bounded time without asking, and stopping the service writes what is queued."""
    with running_app(create_app(settings, engine)) as base:
        with httpx.Client(
            base_url=base, follow_redirects=False, headers={"User-Agent": CHROME}
        ) as c:
            assert c.get(campaign.click_path("about", ANN)).status_code == 302
            deadline = time.monotonic() + 5
            while not stored_rows(engine, store.events) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(stored_rows(engine, store.events)) == 1
            for key in ("basics@2019-06-27", "measurement"):
                assert c.get(campaign.click_path(key, BOB)).status_code == 302
    # no flush: the lifespan shutdown wrote them
    assert len(stored_rows(engine, store.events, store.events.c.event == "click")) == 3


def test_a_burst_inside_one_written_batch_is_flagged(settings, engine, campaign):
    """The writer stores several clicks per transaction; a scanner's burst that lands in one
    batch is flagged like one spread over several."""
    app = create_app(settings, engine)
    with running_app(app) as base:
        with httpx.Client(
            base_url=base, follow_redirects=False, headers={"User-Agent": CHROME}
        ) as c:
            app.state.clicks.GATHER = 0.5  # this writer: gather everything below into one batch
            for key in ("basics@2019-06-27", "coaching@2019-07-11", "measurement"):
                assert c.get(campaign.click_path(key, ANN)).status_code == 302
    assert [(r.machine, r.machine_reason) for r in rows(engine, store.events)] == [
        (True, "burst")
    ] * 3


def test_the_writer_on_its_own_flushes_closes_and_starts_again(engine, campaign):
    """Without the app: ``submit`` queues an ``events`` row, ``flush`` waits until it is
    stored, ``close`` stops the thread, and a later click starts it again."""
    url = campaign.urls["about"]
    link = Link(campaign.id, url, url)
    reader = Reader(campaign.id, campaign.segment, campaign.send_id)

    def one_click():
        return click_event(
            b"ip-key",
            campaign.link_ids["about"],
            campaign.recipients[ANN],
            link,
            reader,
            method="GET",
            user_agent=CHROME,
            ip="192.0.2.1",
        )

    writer = ClickWriter(engine, threading.Lock())
    writer.submit(one_click())
    assert writer.flush() and len(stored_rows(engine)) == 1
    writer.close()
    writer.submit(one_click())
    writer.close()  # writes what is queued before it stops
    stored = stored_rows(engine)
    assert (writer.written, writer.dropped, writer.pending()) == (2, 0, 0)
    assert [(r.event, r.source, r.url, r.machine) for r in stored] == [
        ("click", "tracker", url, False)
    ] * 2
    assert all(r.ip_hash and "192.0.2.1" not in r.ip_hash for r in stored)
