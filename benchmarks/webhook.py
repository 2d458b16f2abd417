"""webhook: SendGrid-shaped events posted in signed batches of 1,000 to ``/webhooks/sendgrid``
on the running service, one post after another; target >= 10,000 events/s.

Also events per CPU-second of the service (the machine is shared: CPU is what stays
comparable), and exactly-once: rows stored = distinct events posted (by the webhook's own
dedupe key) = what the service reported, and re-posting two batches stores nothing. Posts
are signed as SendGrid signs them, with ../shared/sendgrid/sign_events.py when present.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid
from typing import TYPE_CHECKING, Any

from benchmarks.harness import Benchmark, Context, Figures, Row, Target
from benchmarks.measure import median_ms
from benchmarks.project import BROWSER_UA, CAMPAIGN_ID
from benchmarks.service import SIGNER_PATH, Seeded, TrackingService, tracking_service
from benchmarks.table import fmt

if TYPE_CHECKING:
    import httpx


def webhook_events(seed: Seeded, n_events: int) -> list[dict[str, Any]]:
    """SendGrid-shaped events for the seeded recipients, with our custom_args flattened in:
    per recipient processed, delivered, then opens and clicks; about 1 % bounces/drops and a
    few unsubscribes (these also write suppressions)."""
    rng = random.Random(6)
    base = int(time.time()) - 3600
    out: list[dict[str, Any]] = []
    i = 0
    while len(out) < n_events:
        out += _reader_events(rng, seed, i, base + i % 3000)
        i += 1
    return out[:n_events]


def _reader_events(rng: random.Random, seed: Seeded, i: int, t: int) -> list[dict[str, Any]]:
    """One message's events, for the ``i``-th event group (recipients taken in turn)."""
    idx = i % len(seed.ledger_ids)
    msg = f"{uuid.UUID(int=rng.getrandbits(128)).hex[:11]}.dfd.{idx:06x}"
    email = f"reader{idx}@nhs.example"
    args = {
        "campaign_id": CAMPAIGN_ID,
        "segment": seed.segments[(idx // 1000) % 3],
        "recipient": str(seed.ledger_ids[idx]),
        "send_id": seed.send_ids[idx // 1000],
    }

    def ev(name: str, dt_s: int, **extra: Any) -> dict[str, Any]:
        return {
            "email": email,
            "timestamp": t + dt_s,
            "event": name,
            "smtp-id": f"<{msg}@ismtpd-555>",
            "sg_event_id": uuid.uuid4().hex,
            "sg_message_id": f"{msg}.filter0001.16648.5515E0B88.0",
            "category": ["equip-newsletter"],
            **args,
            **extra,
        }

    roll = rng.random()
    group = [ev("processed", 0)]
    if roll < 0.008:
        group.append(
            ev("bounce", 5, reason="550 5.1.1 unknown recipient", status="5.1.1", type="bounce")
        )
        return group
    if roll < 0.01:
        group.append(ev("dropped", 5, reason="Bounced Address", status="5.0.0"))
        return group
    group.append(ev("delivered", 2, response="250 OK", ip="168.1.1.1", tls=1))
    browser = {"useragent": BROWSER_UA, "ip": "203.0.113.7"}
    group += [
        ev("open", 100 + k, **browser, sg_machine_open=False) for k in range(rng.randint(0, 2))
    ]
    group += [
        ev(
            "click",
            300 + 60 * k,
            **browser,
            url=seed.urls[k % len(seed.urls)],
            url_offset={"index": k, "type": "html"},
        )
        for k in range(rng.randint(0, 3))
    ]
    if roll > 0.997:
        group.append(ev("unsubscribe", 900))
    return group


def run(ctx: Context) -> Figures:
    """Post every batch once (timed), then two again; count what the store holds."""
    import httpx

    from equip_mailer.track.webhook import dedupe_key

    tracking = tracking_service(ctx)
    events = webhook_events(tracking.seed, ctx.sizes["webhook_posts"] * 1000)
    bodies = [
        json.dumps(events[i : i + 1000], separators=(",", ":")).encode()
        for i in range(0, len(events), 1000)
    ]
    distinct = len({dedupe_key(e) for e in events})
    with httpx.Client(base_url=tracking.service.url, timeout=60) as client:
        res = _post_all(client, tracking, bodies)
        # SendGrid retries whole posts: re-post two (re-signed) and nothing new may appear.
        reposted = sum(
            _post(client, body, _signed(tracking, body))["stored"] for body in bodies[:2]
        )
    with sqlite3.connect(tracking.db) as conn:
        rows = conn.execute(
            "SELECT count(*), count(DISTINCT dedupe_key) FROM events WHERE source = 'webhook'"
        ).fetchone()
    stored, seconds, cpu = res["stored_reported"], res["seconds"], res["service_cpu_s"]
    return {
        "posts": len(bodies),
        "events_posted": len(events),
        "distinct_events": distinct,
        "stored_reported": stored,
        "duplicates_reported": res["duplicates_reported"],
        "rows_in_store": rows[0],
        "distinct_rows": rows[1],
        "stored_on_repost": reposted,
        "exactly_once": rows[0] == rows[1] == distinct == stored and reposted == 0,
        "seconds": seconds,
        "events_per_s": len(events) / seconds,
        "service_cpu_s": cpu,
        "events_per_service_cpu_s": len(events) / cpu if cpu else None,
        "post_p50_ms": res["post_p50_ms"],
        "post_max_ms": res["post_max_ms"],
        "signer": str(SIGNER_PATH)
        if SIGNER_PATH.exists()
        else "local (cryptography), shared signer absent",
    }


def _signed(tracking: TrackingService, body: bytes) -> dict[str, str]:
    """The headers SendGrid sends with ``body``: its signature, timestamp and type."""
    return {**tracking.signer.headers_for(tracking.key, body), "Content-Type": "application/json"}


def _post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """One post; the service's answer (stored, duplicates)."""
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    if r.status_code != 200:
        raise RuntimeError(f"webhook answered {r.status_code}: {r.text[:300]}")
    answer: dict[str, Any] = r.json()
    return answer


def _post_all(client: httpx.Client, tracking: TrackingService, bodies: list[bytes]) -> Figures:
    """Every body once, one after another: wall time, service CPU, per-post latency."""
    stored = duplicates = 0
    latencies = []
    cpu0 = tracking.service.cpu_seconds()
    t0 = time.perf_counter()
    for body in bodies:
        headers = _signed(tracking, body)  # signing is the sender's work, not the service's
        t = time.perf_counter()
        answer = _post(client, body, headers)
        latencies.append(time.perf_counter() - t)
        stored += answer["stored"]
        duplicates += answer["duplicates"]
    seconds = time.perf_counter() - t0
    return {
        "stored_reported": stored,
        "duplicates_reported": duplicates,
        "seconds": seconds,
        "service_cpu_s": tracking.service.cpu_seconds() - cpu0,
        "post_p50_ms": median_ms(latencies),
        "post_max_ms": max(latencies) * 1000,
    }


def rows(results: dict[str, Any]) -> list[Row]:
    w = results["webhook"]
    return [
        (
            f"webhook: {w['events_posted']:,} events in {w['posts']} signed posts",
            f"{fmt(w['events_per_s'], 0)} events/s ({fmt(w['seconds'], 2)} s)",
        ),
        (
            "webhook: events per CPU-second of the service",
            f"{fmt(w['events_per_service_cpu_s'], 0)}",
        ),
        (
            "webhook: stored exactly once (rows = distinct events, re-posts add 0)",
            f"{fmt(w['exactly_once'])} ({w['rows_in_store']:,} rows / "
            f"{w['distinct_events']:,} distinct)",
        ),
    ]


BENCHMARK = Benchmark(
    name="webhook",
    run=run,
    rows=rows,
    sizes={
        "full": {"webhook_posts": 50, "webhook_recipients": 5_000},
        "smoke": {"webhook_posts": 2, "webhook_recipients": 200},
    },
    targets=(Target("events_per_s", ">=", 10_000, "events/s"),),
    shares=("tracking",),
)
