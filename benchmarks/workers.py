"""workers: click redirects (``GET /c/<reader token>/<link id>``) on PostgreSQL through
``equip-mailer serve`` with one worker and with ``--workers 2``, from the same load
generator as the redirect benchmark: req/s, p50/p99, and every click recorded.

Each run gets a fresh PostgreSQL database (on 127.0.0.1:5432, dropped afterwards) seeded as
a finished send leaves it; every worker writes its clicks with its own batching writer. The
load uses more connections than the redirect benchmark (8), so the kernel hands both workers
some. On this 2-core machine the load generator shares the cores with the workers and
PostgreSQL, so the second worker's gain is a lower bound of what a dedicated server sees.
Without PostgreSQL the figures are absent and a note says why.
"""

from __future__ import annotations

import random
import time
from typing import Any

from benchmarks.harness import Benchmark, Context, Figures, Row
from benchmarks.loadgen import run_load
from benchmarks.project import LINK_SECRET
from benchmarks.service import Service, seed_tracking_store
from benchmarks.table import fmt


def _clicks(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM events WHERE source = 'tracker'")
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _one(ctx: Context, workers: int) -> Figures:
    from benchmarks.signup import _drop_postgres, _postgres_url
    from equip_mailer.send.links import click_path

    sizes = ctx.sizes
    url = _postgres_url(ctx)
    if url is None:
        return {}
    try:
        seed = seed_tracking_store(url, sizes["workers_recipients"])
        rng = random.Random(7)
        secret = LINK_SECRET.encode()
        n = sizes["workers_requests"] + sizes["workers_warmup"]
        paths = [
            click_path(secret, rng.choice(seed.link_ids), rng.choice(seed.ledger_ids))
            for _ in range(n)
        ]
        service = Service(ctx.work, url, "", workers=workers)
        try:
            running = len([p for p in service.children() if p])
            cpu0 = service.cpu_seconds()
            res = run_load(
                ctx,
                f"workers-{workers}-paths",
                service.port,
                paths,
                warmup=sizes["workers_warmup"],
                concurrency=sizes["workers_concurrency"],
                seconds=sizes["workers_seconds"],
            )
            answered = res["requests"] + res["warmup_requests"]
            t = time.perf_counter()
            while (stored := _clicks(url)) < answered and time.perf_counter() - t < 10:
                time.sleep(0.05)
            res["service_cpu_ms_per_request"] = (
                (service.cpu_seconds() - cpu0) * 1000 / max(1, answered)
            )
        finally:
            service.stop()
        res["workers"] = workers
        res["processes_under_serve"] = running
        res["clicks_recorded"] = stored
        res["every_click_recorded"] = (
            stored == answered and res["statuses"].get("302", 0) == res["requests"]
        )
        return res
    finally:
        _drop_postgres(url)


def run(ctx: Context) -> Figures:
    one = _one(ctx, 1)
    if not one:
        return {"available": False}
    two = _one(ctx, 2)
    return {
        "available": True,
        "one": one,
        "two": two,
        "requests_per_s_1": one["requests_per_s"],
        "requests_per_s_2": two["requests_per_s"],
        "p99_ms_1": one["p99_ms"],
        "p99_ms_2": two["p99_ms"],
        "two_over_one": two["requests_per_s"] / one["requests_per_s"],
        "every_click_recorded": one["every_click_recorded"] and two["every_click_recorded"],
    }


def rows(results: dict[str, Any]) -> list[Row]:
    w = results["workers"]
    if not w.get("available"):
        return [("workers: redirects on PostgreSQL, 1 and 2 workers", "not measured")]
    out: list[Row] = []
    for key, n in (("one", 1), ("two", 2)):
        r = w[key]
        out.append(
            (
                f"workers: redirect on PostgreSQL, {n} worker{'s' if n > 1 else ''} "
                f"({r['concurrency']} connections)",
                f"{fmt(r['requests_per_s'], 0)} req/s, p50 {fmt(r['p50_ms'], 2)} / "
                f"p99 {fmt(r['p99_ms'], 1)} ms, service CPU "
                f"{fmt(r['service_cpu_ms_per_request'], 2)} ms/request",
            )
        )
    out.append(
        (
            "workers: 2 workers / 1 worker (req/s); every click recorded",
            f"{fmt(w['two_over_one'], 2)}x; {fmt(w['every_click_recorded'])}",
        )
    )
    return out


BENCHMARK = Benchmark(
    name="workers",
    run=run,
    rows=rows,
    sizes={
        "full": {
            "workers_requests": 20_000,
            "workers_warmup": 500,
            "workers_concurrency": 8,
            "workers_seconds": 60,
            "workers_recipients": 2_000,
        },
        "smoke": {
            "workers_requests": 300,
            "workers_warmup": 50,
            "workers_concurrency": 4,
            "workers_seconds": 10,
            "workers_recipients": 200,
        },
    },
)
