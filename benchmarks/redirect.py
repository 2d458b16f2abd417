"""redirect: ``GET /c/<reader token>/<link id>`` on the running service (one uvicorn worker,
its store holding the webhook benchmark's events) from the load generator in another
process; targets >= 1,500 req/s and p99 <= 20 ms.

Every answer must be a 302 and every click recorded. The service writes clicks just after
their redirect (a batching writer thread), so this waits (at most 5 s) for the last click to
be stored, reports how long that took, and reads the service's CPU only then: CPU per request
includes the writing. The baseline: the same load on a token that does not verify (a 404
page, no database, no thread), i.e. what uvicorn + Starlette cost on their own.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Context, Figures, Row, Target
from benchmarks.loadgen import run_load
from benchmarks.project import LINK_SECRET
from benchmarks.service import TrackingService, tracking_service
from benchmarks.table import fmt


def _tracker_clicks(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        count: int = conn.execute(
            "SELECT count(*) FROM events WHERE source = 'tracker'"
        ).fetchone()[0]
    return count


def run(ctx: Context) -> Figures:
    """Signed tokens for a few readers x the links, loaded; then the no-database floor."""
    from equip_mailer.send.links import click_path

    sizes = ctx.sizes
    tracking = tracking_service(ctx)
    seed, service = tracking.seed, tracking.service
    secret = LINK_SECRET.encode()
    n = sizes["redirect_requests"] + sizes["redirect_warmup"]
    readers = seed.ledger_ids[: sizes["redirect_recipients"]]
    rng = random.Random(4)
    paths = [click_path(secret, rng.choice(seed.link_ids), rng.choice(readers)) for _ in range(n)]
    before = _tracker_clicks(tracking.db)
    cpu0 = service.cpu_seconds()
    res = _load(ctx, tracking, "redirect-paths", paths, sizes["redirect_warmup"])
    # The service writes each click just after its redirect (the click writer): give the
    # last batch a bounded moment to land, and say how long it took. The service CPU is read
    # once they are all in, so it includes the writing.
    answered = res["requests"] + res["warmup_requests"]
    t_wait = time.perf_counter()
    while True:
        after = _tracker_clicks(tracking.db)
        if after >= before + answered or time.perf_counter() - t_wait > 5:
            break
        time.sleep(0.01)
    res["last_click_visible_after_ms"] = (time.perf_counter() - t_wait) * 1000
    res["service_cpu_ms_per_request"] = (service.cpu_seconds() - cpu0) * 1000 / max(1, answered)
    res["no_db_404"] = _no_database_floor(ctx, tracking)
    res["clicks_recorded"] = after - before
    res["every_click_recorded"] = (
        res["clicks_recorded"] == answered and res["statuses"].get("302", 0) == res["requests"]
    )
    res["bounded_by"] = (
        f"{sizes['redirect_requests']:,} requests or {sizes['redirect_seconds']} s, "
        f"{sizes['redirect_concurrency']} keep-alive connections"
    )
    return res


def _load(
    ctx: Context, tracking: TrackingService, name: str, paths: list[str], warmup: int
) -> Figures:
    return run_load(
        ctx,
        name,
        tracking.service.port,
        paths,
        warmup=warmup,
        concurrency=ctx.sizes["redirect_concurrency"],
        seconds=ctx.sizes["redirect_seconds"],
    )


def _no_database_floor(ctx: Context, tracking: TrackingService) -> Figures:
    """The same load on a token that does not verify: a 404 page, no database, no thread.
    What uvicorn (httptools/uvloop with uvicorn[standard], else h11) + Starlette cost."""
    bad = [f"/c/{'A' * 22}{i % 10}" for i in range(max(200, ctx.sizes["redirect_requests"] // 4))]
    cpu0 = tracking.service.cpu_seconds()
    floor = _load(ctx, tracking, "redirect-404-paths", bad, 50)
    cpu = tracking.service.cpu_seconds() - cpu0
    out = {k: floor[k] for k in ("requests", "requests_per_s", "p50_ms", "p99_ms", "statuses")}
    out["service_cpu_ms_per_request"] = (
        cpu * 1000 / max(1, floor["requests"] + floor["warmup_requests"])
    )
    return out


def rows(results: dict[str, Any]) -> list[Row]:
    d = results["redirect"]
    floor = d["no_db_404"]
    return [
        (
            f"redirect: {d['requests']:,} GET /c/<token>, {d['concurrency']} connections, 1 worker",
            f"{fmt(d['requests_per_s'], 0)} req/s",
        ),
        (
            "redirect: latency p50 / p99 / max",
            f"{fmt(d['p50_ms'], 2)} / {fmt(d['p99_ms'], 2)} / {fmt(d['max_ms'], 1)} ms",
        ),
        ("redirect: every request a 302 and a recorded click", fmt(d["every_click_recorded"])),
        (
            "redirect: last click stored, after the load generator exited",
            f"{fmt(d.get('last_click_visible_after_ms'), 0)} ms",
        ),
        ("redirect: service CPU per request", f"{fmt(d['service_cpu_ms_per_request'], 2)} ms"),
        (
            "redirect: load generator CPU per request (share of one core)",
            f"{fmt(d.get('load_generator_cpu_ms_per_request'), 2)} ms "
            f"({fmt(100 * d.get('load_generator_cpu_share', float('nan')), 0)} %)",
        ),
        (
            "redirect: same load, bad token -> 404, no database",
            f"{fmt(floor['requests_per_s'], 0)} req/s, p99 {fmt(floor['p99_ms'], 2)} ms, "
            f"{fmt(floor['service_cpu_ms_per_request'], 2)} ms CPU/request",
        ),
    ]


BENCHMARK = Benchmark(
    name="redirect",
    run=run,
    rows=rows,
    sizes={
        "full": {
            "redirect_requests": 20_000,
            "redirect_warmup": 500,
            "redirect_concurrency": 4,
            "redirect_seconds": 60,
            "redirect_recipients": 2_000,
        },
        "smoke": {
            "redirect_requests": 500,
            "redirect_warmup": 50,
            "redirect_concurrency": 4,
            "redirect_seconds": 20,
            "redirect_recipients": 100,
        },
    },
    targets=(
        Target("requests_per_s", ">=", 1_500, "req/s"),
        Target("p99_ms", "<=", 20, "ms p99"),
    ),
    shares=("tracking",),
)
