"""SendGrid's Event Webhook over real HTTP, with posts really signed by
shared/sendgrid/sign_events.py.

Signed batches are stored once however often they arrive; forged, replayed, malformed and
oversize posts store nothing; a storage failure answers 500 so SendGrid retries.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import time

import httpx
import pytest
import sqlalchemy as sa
from support.service import running_app
from support.tracking_data import (
    ANN,
    BOB,
    SendGridKey,
    body_of,
    load_signer,
    message_id,
    seed_campaign,
    sendgrid_events,
)
from support.tracking_data import written_rows as rows

from equip_mailer import store
from equip_mailer.config import Settings
from equip_mailer.track import webhook_verify
from equip_mailer.track.app import create_app

URL = "/webhooks/sendgrid"


@pytest.fixture(scope="module")
def sg_key():
    return SendGridKey(load_signer())


@pytest.fixture
def wh_settings(settings, sg_key) -> Settings:
    """``settings`` with a webhook key: the same store, so conftest's ``engine`` and
    ``campaign`` are this app's."""
    return Settings(
        database_url=settings.database_url,
        link_secret=settings.link_secret,
        public_url=settings.public_url,
        sendgrid_webhook_public_key=sg_key.public,
    )


@pytest.fixture
def client(wh_settings, engine):
    with running_app(create_app(wh_settings, engine)) as base_url:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            yield client


def post(client, sg_key, items_or_body, timestamp=None, **kw):
    body = items_or_body if isinstance(items_or_body, bytes) else body_of(items_or_body)
    return client.post(URL, content=body, headers=sg_key.headers(body, timestamp), **kw)


def test_signed_batch_of_every_event_type_is_stored_and_normalised(
    client, sg_key, campaign, engine
):
    items = sendgrid_events(campaign, ANN)
    response = post(client, sg_key, items)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "received": 13,
        "stored": 13,
        "duplicates": 0,
        "suppressed": 1,
        "machine": 0,
        "settled": 0,
    }
    stored = rows(engine)
    assert [r.event for r in stored] == [
        "processed",
        "deferred",
        "delivered",
        "open",
        "click",
        "bounce",
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "group_resubscribe",
        "unknown",
    ]
    ledger_id = campaign.recipients[ANN]
    for r in stored:  # joined to our send through custom_args, never SendGrid's ids
        assert (r.source, r.campaign_id, r.ledger_id, r.send_id, r.segment) == (
            "webhook",
            campaign.id,
            ledger_id,
            campaign.send_id,
            "beginner",
        )
        assert json.loads(r.raw)["sg_event_id"] == r.sg_event_id  # the raw JSON is kept
        assert r.at == dt.datetime.fromtimestamp(json.loads(r.raw)["timestamp"], dt.UTC).replace(
            tzinfo=None
        )
    by_event = {}
    for r in stored:
        by_event.setdefault(r.event, []).append(r)
    assert [b.reason for b in by_event["bounce"]] == [
        "bounce: 5.1.1 550 5.1.1 unknown recipient",
        "blocked: 5.7.1 550 blocked by policy",
    ]
    assert by_event["dropped"][0].reason == "Bounced Address"
    assert by_event["deferred"][0].reason == "400 try again later"
    click = by_event["click"][0]
    assert click.url == campaign.urls["measurement"] and click.machine is False
    assert click.ip_hash and "255.255.255.255" not in (click.ip_hash or "")
    assert json.loads(by_event["unknown"][0].raw)["event"] == "account_status_change"
    print(f"webhook: 13 event types posted -> {len(stored)} rows, normalised")


def test_the_same_batch_posted_three_times_is_stored_once(client, sg_key, campaign, engine):
    items = sendgrid_events(campaign, ANN) + sendgrid_events(campaign, BOB)
    answers = [post(client, sg_key, items).json() for _ in range(3)]
    assert [a["stored"] for a in answers] == [26, 0, 0]
    assert [a["duplicates"] for a in answers] == [0, 26, 26]
    assert len(rows(engine)) == 26
    print(f"same batch x3: posted {3 * len(items)}, stored {len(rows(engine))}")


def test_redelivered_events_with_new_sg_event_ids_still_dedupe(client, sg_key, campaign, engine):
    items = sendgrid_events(campaign, ANN)
    assert post(client, sg_key, items).json()["stored"] == 13
    # SendGrid's retry: same events, fresh sg_event_id (sendgrid-nodejs#1435), new signature
    # time, another order, and the message id with another .filter suffix.
    again = [
        {
            **e,
            "sg_event_id": f"retry-{i}",
            "sg_message_id": e["sg_message_id"].replace("filter0001", "filter0777"),
        }
        for i, e in enumerate(reversed(items))
    ]
    response = post(client, sg_key, again, timestamp=int(time.time()) + 5)
    assert response.json()["stored"] == 0 and response.json()["duplicates"] == 13
    # ...while genuinely new events of the same message are kept (a second open, later).
    later = {**items[3], "timestamp": items[3]["timestamp"] + 60, "sg_event_id": "new"}
    assert post(client, sg_key, [later]).json()["stored"] == 1
    assert len(rows(engine)) == 14


def _chunks(body: bytes, size: int = 65536):
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_refused_posts_store_nothing(client, sg_key, campaign, engine):
    items = sendgrid_events(campaign, ANN)
    body = body_of(items)
    good = sg_key.headers(body)
    other = SendGridKey(sg_key.signer)
    now = int(time.time())
    bad_json = b'[{"event": "delivered", '
    cases = {
        "forged (another key)": (body, other.headers(body), 403),
        "body changed after signing": (body.replace(b"delivered", b"dropped", 1), good, 403),
        "signature of another body": (body, sg_key.headers(body + b" "), 403),
        "no headers": (body, {"Content-Type": "application/json"}, 403),
        "no signature": (body, {k: v for k, v in good.items() if "Signature" not in k}, 403),
        "no timestamp": (body, {k: v for k, v in good.items() if "Timestamp" not in k}, 403),
        "garbage signature": (body, {**good, webhook_verify.SIGNATURE_HEADER: "not base64!!"}, 403),
        "stale (replayed 11 min later)": (body, sg_key.headers(body, now - 660), 403),
        "from the future": (body, sg_key.headers(body, now + 660), 403),
        "timestamp not a number": (body, {**good, webhook_verify.TIMESTAMP_HEADER: "12a"}, 403),
        "signed but malformed JSON": (bad_json, sg_key.headers(bad_json), 400),
        "signed but not an array": (b'{"event":"x"}', sg_key.headers(b'{"event":"x"}'), 400),
        "signed but not objects": (b"[1,2]", sg_key.headers(b"[1,2]"), 400),
        "signed but not UTF-8": (b'["\xff"]', sg_key.headers(b'["\xff"]'), 400),
    }
    results = {}
    for name, (payload, headers, expected) in cases.items():
        response = client.post(URL, content=payload, headers=headers)
        results[name] = response.status_code
        assert response.status_code == expected, (name, response.text)
        assert "error" in response.json()
    # Oversize: declared by Content-Length, and streamed (chunked, no Content-Length).
    big = body_of(items * 7000)
    assert len(big) > webhook_verify.MAX_BODY
    response = client.post(URL, content=big, headers=sg_key.headers(big))
    assert response.status_code == 413
    response = client.post(URL, content=_chunks(big), headers=sg_key.headers(big))
    assert response.status_code == 413
    results["oversize x2"] = 413
    assert rows(engine) == [] and rows(engine, store.suppressions) == []
    # And the good post still works afterwards.
    assert client.post(URL, content=body, headers=good).status_code == 200
    print("refused posts: " + ", ".join(f"{k} -> {v}" for k, v in results.items()) + "; stored 0")


def test_a_lying_content_length_is_still_capped(wh_settings, sg_key, engine, campaign):
    """The cap counts the bytes actually read, not the header."""
    app = create_app(wh_settings, engine, max_body=4096)
    items = sendgrid_events(campaign, ANN) * 10
    body = body_of(items)
    assert len(body) > 4096
    with running_app(app) as base, httpx.Client(base_url=base) as c:
        assert (
            c.post(URL, content=_chunks(body, 1000), headers=sg_key.headers(body)).status_code
            == 413
        )
        small = body_of(items[:2])
        assert c.post(URL, content=small, headers=sg_key.headers(small)).status_code == 200
    assert len(rows(engine)) == 2


def test_without_a_public_key_the_webhook_refuses_everything(settings, sg_key, caplog):
    caplog.set_level(logging.WARNING, logger="equip_mailer")
    engine = store.open_store(settings.database_url)
    campaign = seed_campaign(engine, settings.require_link_secret())
    body = body_of(sendgrid_events(campaign, ANN))
    with running_app(create_app(settings, engine)) as base:
        signed = httpx.post(base + URL, content=body, headers=sg_key.headers(body))
        unsigned = httpx.post(base + URL, content=body)
    assert (signed.status_code, unsigned.status_code) == (403, 403)
    assert rows(engine) == []
    assert (
        "set SENDGRID_WEBHOOK_PUBLIC_KEY" in caplog.text
        or "SENDGRID_WEBHOOK_PUBLIC_KEY is not set" in caplog.text
    )
    engine.dispose()


def test_storage_failure_answers_500_and_the_retry_is_stored(
    client, sg_key, campaign, engine, caplog
):
    caplog.set_level(logging.ERROR, logger="equip_mailer")
    items = sendgrid_events(campaign, ANN)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE events"))
    response = post(client, sg_key, items)
    assert response.status_code == 500
    assert "no such table" in caplog.text and ANN not in caplog.text
    with engine.begin() as conn:  # nothing half-done: the suppressions rolled back too
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(store.suppressions)).scalar() == 0
        )
        store.events.create(conn)
    retry = post(client, sg_key, items)  # SendGrid retries the same batch later
    assert retry.status_code == 200 and retry.json()["stored"] == 13
    assert len(rows(engine)) == 13


def test_read_only_database_answers_500(tmp_path, wh_settings, sg_key):
    path = tmp_path / "ro.db"
    url = f"sqlite:///{path}"
    engine = store.open_store(url)
    campaign = seed_campaign(engine, wh_settings.require_link_secret())
    engine.dispose()
    ro = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    try:
        with running_app(create_app(wh_settings, ro)) as base:
            body = body_of(sendgrid_events(campaign, ANN))
            assert (
                httpx.post(base + URL, content=body, headers=sg_key.headers(body)).status_code
                == 500
            )
    finally:
        ro.dispose()


def test_bounces_drops_and_spam_reports_become_suppressions(client, sg_key, engine, settings):
    secret = settings.require_link_secret()
    people = tuple(f"person{i}@example.org" for i in range(8))
    campaign = seed_campaign(engine, secret, emails=people)
    kinds = [
        "bounce",
        "dropped",
        "spamreport",
        "unsubscribe",
        "group_unsubscribe",
        "blocked",
        "delivered",
        "dropped",
    ]
    items = []
    for person, kind in zip(people, kinds, strict=True):
        base = {
            e["event"] if e["event"] != "bounce" else e["type"]: e
            for e in sendgrid_events(campaign, person)
        }
        items.append(base[kind])
    # A drop that is about our account, not the address, suppresses no one.
    items[7] = {**items[7], "reason": "Recipient List over Package Quota"}
    response = post(client, sg_key, items)
    assert response.json()["stored"] == 8 and response.json()["suppressed"] == 5
    suppressed = {
        s.email_key: (s.reason, s.source, s.campaign_id) for s in rows(engine, store.suppressions)
    }
    assert suppressed == {
        "person0@example.org": ("bounce", "sendgrid:bounce", campaign.id),
        "person1@example.org": ("dropped", "sendgrid:dropped", campaign.id),
        "person2@example.org": ("spamreport", "sendgrid:spamreport", campaign.id),
        "person3@example.org": ("unsubscribe", "sendgrid:unsubscribe", campaign.id),
        "person4@example.org": ("unsubscribe", "sendgrid:group_unsubscribe", campaign.id),
    }
    # person5's *blocked* bounce is recorded as a bounce, but the address stays on the list:
    # a block is about our IP or content, and SendGrid does not suppress it either.
    blocked = rows(engine, store.events, store.events.c.ledger_id == campaign.recipients[people[5]])
    assert [(b.event, b.reason.split(":")[0]) for b in blocked] == [("bounce", "blocked")]
    assert post(client, sg_key, items).json()["suppressed"] == 0  # idempotent


def test_webhook_clicks_are_classified_like_ours(client, sg_key, campaign, engine):
    items = sendgrid_events(campaign, ANN)
    delivered, click = items[2], items[4]
    scan = {
        **click,
        "timestamp": delivered["timestamp"] + 3,
        "url": campaign.urls["about"],
        "sg_event_id": "scan",
    }
    bot = {
        **click,
        "useragent": "Mozilla/5.0 (compatible; proofpoint)",
        "url": campaign.urls["basics@2019-06-27"],
        "sg_event_id": "bot",
    }
    assert post(client, sg_key, [delivered, click, scan, bot]).status_code == 200
    flags = {
        r.sg_event_id: (r.machine, r.machine_reason)
        for r in rows(engine, store.events, store.events.c.event == "click")
    }
    assert flags == {
        click["sg_event_id"]: (False, None),
        "scan": (True, "after-delivery"),
        "bot": (True, "ua:proofpoint"),
    }


def test_webhook_store_path_on_both_backends(db_url, sg_key, settings):
    """The same HTTP path against SQLite and PostgreSQL."""
    cfg = Settings(
        database_url=db_url,
        link_secret=settings.link_secret,
        sendgrid_webhook_public_key=sg_key.public,
    )
    engine = store.open_store(db_url)
    campaign = seed_campaign(engine, cfg.require_link_secret())
    items = sendgrid_events(campaign, ANN) + sendgrid_events(campaign, BOB)
    try:
        with running_app(create_app(cfg, engine)) as base, httpx.Client(base_url=base) as c:
            answers = [post(c, sg_key, items).json() for _ in range(3)]
            click = c.get(campaign.click_path("about", ANN), follow_redirects=False)
        assert [a["stored"] for a in answers] == [26, 0, 0]
        assert answers[0]["suppressed"] == 2
        assert click.status_code == 302
        assert len(rows(engine)) == 27
        assert {s.email_key for s in rows(engine, store.suppressions)} == {ANN, BOB}
        print(f"{engine.dialect.name}: posted {3 * len(items)} events, stored 26, click recorded")
    finally:
        engine.dispose()


def test_concurrent_posters_store_every_event_exactly_once(client, sg_key, engine, settings):
    """20 posters x 50 signed batches against SQLite; every batch is posted twice, by two
    posters racing each other."""
    secret = settings.require_link_secret()
    people = tuple(f"staff{i:03d}@example.org" for i in range(100))
    campaign = seed_campaign(engine, secret, emails=people)
    posters, per_poster = 20, 50
    total_batches = posters * per_poster // 2
    batches = []
    for b in range(total_batches):
        person = people[b % len(people)]
        events = sendgrid_events(campaign, person, msg=message_id())
        batches.append(body_of([events[0], events[2], events[3], events[4], events[8]]))
    unique_events = sum(len(json.loads(b)) for b in batches)

    def run(poster: int) -> list[dict]:
        # posters i and i+10 post the same 50 batches in the same order, so they race
        order = [(poster % (posters // 2)) * per_poster + j for j in range(per_poster)]
        answers = []
        with httpx.Client(base_url=str(client.base_url), timeout=60) as c:
            for i in order:
                response = c.post(URL, content=batches[i], headers=sg_key.headers(batches[i]))
                assert response.status_code == 200, response.text
                answers.append(response.json())
        return answers

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(posters) as pool:
        answers = [a for result in pool.map(run, range(posters)) for a in result]
    seconds = time.monotonic() - started
    posted = sum(a["received"] for a in answers)
    stored = sum(a["stored"] for a in answers)
    duplicates = sum(a["duplicates"] for a in answers)
    in_table = len(rows(engine))
    keys = {r.dedupe_key for r in rows(engine)}
    print(
        f"concurrency: {posters} posters x {per_poster} batches = {len(answers)} posts; events "
        f"posted {posted}, stored {stored}, duplicates {duplicates}, in table {in_table}, "
        f"unique {unique_events}; {seconds:.1f} s ({len(answers) / seconds:.0f} posts/s)"
    )
    assert len(answers) == posters * per_poster
    assert posted == 2 * unique_events
    assert stored == in_table == len(keys) == unique_events
    assert duplicates == posted - stored


def test_a_late_delivered_event_flags_the_scan_that_came_before_it(
    client, sg_key, campaign, engine
):
    """Our tracker records a click; SendGrid's delivered event (stamped 3 s earlier) only
    arrives afterwards: the webhook's pass flags the click then."""
    response = client.get(
        campaign.click_path("about", ANN),
        follow_redirects=False,
        headers={"User-Agent": "Mozilla/5.0 (Windows NT 10.0) Chrome/120.0 Safari/537.36"},
    )
    assert response.status_code == 302
    (click,) = rows(engine, store.events, store.events.c.event == "click")
    assert click.machine is False
    delivered = sendgrid_events(campaign, ANN)[2]
    delivered["timestamp"] = int(click.at.replace(tzinfo=dt.UTC).timestamp()) - 3
    answer = post(client, sg_key, [delivered]).json()
    assert answer["stored"] == 1 and answer["machine"] == 1
    (click,) = rows(engine, store.events, store.events.c.event == "click")
    assert (click.machine, click.machine_reason) == (True, "after-delivery")


@pytest.mark.parametrize(
    ("bad_event", "why"),
    [
        ('{"event": "open", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "is nested too deeply"),
        ('{"event": "open", "email": "ann\\ud800@example.org"}', "holds a lone surrogate"),
    ],
    ids=["deeply nested", "lone surrogate"],
)
def test_one_bad_event_is_refused_and_the_good_ones_of_its_post_are_stored(
    client, sg_key, campaign, engine, bad_event, why
):
    """Found in review: a validly signed post holding one such event answered 500 (so
    SendGrid retried it for days) and lost the good events beside it."""
    good = sendgrid_events(campaign, ANN)[:3]
    body = (
        "[" + ",".join([json.dumps(good[0]), bad_event, *map(json.dumps, good[1:])]) + "]"
    ).encode()
    response = post(client, sg_key, body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["refused"] == [f"event 1: {why}" + answer["refused"][0].split(why, 1)[1]]
    assert (answer["received"], answer["stored"]) == (3, 3)
    assert len(rows(engine)) == 3
    again = post(client, sg_key, body)  # were SendGrid to retry: nothing twice
    assert again.status_code == 400 and again.json()["stored"] == 0 and len(rows(engine)) == 3
