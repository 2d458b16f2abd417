"""signup: sign-up submits (``POST /s/<token>``) on a running service, one uvicorn worker on
SQLite, while clicks (``GET /c/<reader token>/<link id>``) arrive on other connections;
targets >= 300 submits/s and p99 <= 50 ms. Then the race: 200 submits at once for a 20-place
session.

Each submit is a new reader: the form's CSRF check, the course lock (``BEGIN IMMEDIATE``),
the capacity count, the insert and its confirmation (or waiting-list) notice in the same
transaction, a 303 to the registration; the service's notice worker writes each mail to the
outbox meanwhile. The course has 4 afternoons of 100 places, so the run fills them and goes
on to the waiting list. The baseline is the same load with a CSRF token that does not
verify: a 403 page, no database (what the form parsing and uvicorn cost on their own).

The race opens 200 connections, then sends 200 submits for one 20-place afternoon at once:
exactly 20 confirmed and 180 waiting, numbered 1-200 without gaps, on SQLite and (when it
is reachable at 127.0.0.1:5432) on PostgreSQL through the same service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import random
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from benchmarks.harness import Benchmark, Context, Figures, Row, Target
from benchmarks.measure import percentile
from benchmarks.project import BROWSER_UA, CAMPAIGN_ID, LINK_SECRET
from benchmarks.service import Service, seed_tracking_store
from benchmarks.table import fmt

COOKIE = "benchmark-csrf-cookie-0123456789"
PG_ADMIN = "postgresql+psycopg://127.0.0.1:5432/test"


def _seed_course(database_url: str, places: list[int]) -> tuple[int, list[int]]:
    """A hosted course (choose one afternoon) a month ahead: its row and session ids."""
    from equip_mailer import store

    engine = store.open_store(database_url)
    now = store.utcnow()
    start = (now + dt.timedelta(days=30)).replace(hour=12, minute=0, second=0, microsecond=0)
    with engine.begin() as conn:
        store.ensure_campaign(conn, CAMPAIGN_ID, "EQUIP courses")
        course = conn.execute(
            store.signup_courses.insert().values(
                campaign_id=CAMPAIGN_ID,
                course_id=f"basics-{uuid.uuid4().hex[:6]}",
                name="EQUIP Basics",
                format="Half-day training",
                schedule="choose_one",
                hosted=True,
                waiting_list=True,
                closes_at=start,
                sender_email="equip@example.org",
                sender_name="EQUIP Tower Hamlets",
                active=True,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        sessions = []
        for i, n in enumerate(places):
            day = start + dt.timedelta(days=7 * i)
            sessions.append(
                conn.execute(
                    store.signup_sessions.insert().values(
                        signup_course_id=course,
                        session_key=day.date().isoformat(),
                        position=i,
                        starts_at=day,
                        ends_at=day + dt.timedelta(hours=4),
                        venue="Example Community Centre",
                        places=n,
                        active=True,
                        revision=0,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
            )
    engine.dispose()
    return course, sessions


def _submit(course: int, ledger_id: int, session: int, csrf_ok: bool = True) -> tuple[str, bytes]:
    from equip_mailer.signup.tokens import signup_token

    path = f"/s/{signup_token(LINK_SECRET.encode(), course, ledger_id)}"
    mac = hmac.new(LINK_SECRET.encode(), f"csrf|{COOKIE}|{path}".encode(), hashlib.sha256)
    body = urlencode(
        {
            "csrf": mac.hexdigest()[:32] if csrf_ok else "0" * 32,
            "session": session,
            "name": f"Reader {ledger_id}",
            "practice": "Example Surgery",
            "role": "Practice nurse",
            "access_needs": "",
        }
    ).encode()
    return path, body


async def _exchange(reader, writer, host: str, method: str, path: str, body: bytes = b"") -> int:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {BROWSER_UA}\r\n"
        f"Cookie: equip_csrf={COOKIE}\r\n"
    )
    if method == "POST":
        head += (
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
        )
    writer.write((head + "\r\n").encode() + body)
    answer = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in answer.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return int(answer[9:12])


async def _load(port: int, submits: list[tuple[str, bytes]], clicks: list[str], seconds: float):
    """Submits on 4 connections as fast as they are answered; clicks on 2 more, one every
    10 ms each (about 200 a second)."""
    host = f"127.0.0.1:{port}"
    queue = list(reversed(submits))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    done = False

    async def submitter() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue and time.perf_counter() < deadline:
            path, body = queue.pop()
            t = time.perf_counter()
            status = await _exchange(reader, writer, host, "POST", path, body)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    async def clicker() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while not done:
            await _exchange(reader, writer, host, "GET", clicks[n % len(clicks)])
            n += 1
            await asyncio.sleep(0.01)
        writer.close()
        return n

    t0 = time.perf_counter()
    click_tasks = [asyncio.create_task(clicker()) for _ in range(2)]
    await asyncio.gather(*(submitter() for _ in range(4)))
    elapsed = time.perf_counter() - t0
    done = True
    clicked = sum(await asyncio.gather(*click_tasks))
    return elapsed, latencies, statuses, clicked


def child_submits(work: Path, sizes: dict[str, int], params: dict[str, Any]) -> Figures:
    """In a fresh process: warm-up, the measured submits (with clicks), the 403 baseline."""
    rng = random.Random(5)
    plan = params["plan"]
    clicks = params["clicks"]
    warm = [(p, b.encode()) for p, b in plan[: params["warmup"]]]
    asyncio.run(_load(params["port"], warm, clicks, 30))
    measured = [(p, b.encode()) for p, b in plan[params["warmup"] :]]
    cpu0 = time.process_time()
    elapsed, lat, statuses, clicked = asyncio.run(_load(params["port"], measured, clicks, 120))
    cpu = time.process_time() - cpu0
    lat.sort()
    bad = [(p, b.encode()) for p, b in params["forged"]]
    rng.shuffle(bad)
    b_elapsed, b_lat, b_statuses, _ = asyncio.run(_load(params["port"], bad, clicks, 60))
    b_lat.sort()
    return {
        "submits": len(lat),
        "seconds": elapsed,
        "submits_per_s": len(lat) / elapsed if elapsed else 0.0,
        "p50_ms": percentile(lat, 50) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": lat[-1] * 1000 if lat else float("nan"),
        "statuses": {str(k): v for k, v in statuses.items()},
        "clicks_meanwhile": clicked,
        "load_generator_cpu_share": cpu / elapsed if elapsed else 0.0,
        "baseline_403": {
            "requests": len(b_lat),
            "requests_per_s": len(b_lat) / b_elapsed if b_elapsed else 0.0,
            "p99_ms": percentile(b_lat, 99) * 1000,
            "statuses": {str(k): v for k, v in b_statuses.items()},
        },
    }


async def _race(port: int, submits: list[tuple[str, bytes]]) -> dict[int, int]:
    """Open every connection first, then send every submit at once."""
    host = f"127.0.0.1:{port}"
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in submits]
    results = await asyncio.gather(
        *(
            _exchange(r, w, host, "POST", p, b)
            for (r, w), (p, b) in zip(conns, submits, strict=True)
        )
    )
    for _, w in conns:
        w.close()
    statuses: dict[int, int] = {}
    for s in results:
        statuses[s] = statuses.get(s, 0) + 1
    return statuses


def _race_on(ctx: Context, database_url: str, ledger_ids: list[int], service: Service) -> Figures:
    import sqlalchemy as sa

    from equip_mailer import store

    course, sessions = _seed_course(database_url, [20])
    submits = [_submit(course, i, sessions[0]) for i in ledger_ids[:200]]
    t = time.perf_counter()
    statuses = asyncio.run(_race(service.port, submits))
    seconds = time.perf_counter() - t
    engine = store.make_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(store.registrations.c.status, store.registrations.c.queue_seq)
            .where(store.registrations.c.signup_course_id == course)
            .order_by(store.registrations.c.queue_seq)
        ).all()
    engine.dispose()
    states = [r.status for r in rows]
    return {
        "statuses": {str(k): v for k, v in statuses.items()},
        "seconds": seconds,
        "confirmed": states.count("confirmed"),
        "waiting": states.count("waiting"),
        "exact": states == ["confirmed"] * 20 + ["waiting"] * 180
        and [r.queue_seq for r in rows] == list(range(1, 201)),
    }


def _postgres_url(ctx: Context) -> str | None:
    import socket

    import sqlalchemy as sa

    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=0.5).close()
    except OSError:
        ctx.note("signup: PostgreSQL not reachable on 127.0.0.1:5432; race run on SQLite only")
        return None
    name = f"equip_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)


def _drop_postgres(url: str) -> None:
    import sqlalchemy as sa

    name = sa.engine.make_url(url).database
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run(ctx: Context) -> Figures:
    sizes = ctx.sizes
    db = ctx.work / "signup.db"
    n = sizes["signup_submits"] + sizes["signup_warmup"]
    seed = seed_tracking_store(db, n + 400)
    url = f"sqlite:///{db}"
    course, sessions = _seed_course(url, [100, 100, 100, 100])
    rng = random.Random(6)
    readers = seed.ledger_ids[:n]
    plan = [_submit(course, r, rng.choice(sessions)) for r in readers]
    forged = [_submit(course, r, sessions[0], csrf_ok=False) for r in readers[: max(200, n // 4)]]
    from equip_mailer.send.links import click_path

    clicks = [
        click_path(LINK_SECRET.encode(), rng.choice(seed.link_ids), rng.choice(readers))
        for _ in range(2000)
    ]
    service = Service(ctx.work, url, "")
    try:
        res = ctx.child(
            child_submits,
            {
                "port": service.port,
                "plan": [(p, b.decode()) for p, b in plan],
                "forged": [(p, b.decode()) for p, b in forged],
                "clicks": clicks,
                "warmup": sizes["signup_warmup"],
            },
        )
        res["race_sqlite"] = _race_on(ctx, url, seed.ledger_ids[n : n + 200], service)
    finally:
        service.stop()
    res.update(_registrations(url, course))
    pg = _postgres_url(ctx)
    if pg:
        try:
            pg_seed = _seed_pg_readers(pg, 200)
            pg_service = Service(ctx.work, pg, "")
            try:
                res["race_postgresql"] = _race_on(ctx, pg, pg_seed, pg_service)
            finally:
                pg_service.stop()
        finally:
            _drop_postgres(pg)
    return res


def _seed_pg_readers(url: str, n: int) -> list[int]:
    import sqlalchemy as sa

    from equip_mailer import store

    engine = store.open_store(url)
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, CAMPAIGN_ID, "EQUIP courses")
        conn.execute(
            store.ledger.insert(),
            [
                {
                    "campaign_id": CAMPAIGN_ID,
                    "email": f"reader{i}@nhs.example",
                    "email_key": f"reader{i}@nhs.example",
                    "segment": "getting-started",
                    "state": "sent",
                    "attempts": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(n)
            ],
        )
        ids = [r[0] for r in conn.execute(sa.select(store.ledger.c.id).order_by(store.ledger.c.id))]
    engine.dispose()
    return ids


def _registrations(url: str, course: int) -> Figures:
    import sqlalchemy as sa

    from equip_mailer import store

    engine = store.make_engine(url)
    with engine.connect() as conn:
        counts = dict(
            conn.execute(
                sa.select(store.registrations.c.status, sa.func.count())
                .where(store.registrations.c.signup_course_id == course)
                .group_by(store.registrations.c.status)
            ).all()
        )
        notices = conn.execute(sa.select(sa.func.count()).select_from(store.notices)).scalar()
    engine.dispose()
    return {
        "confirmed": counts.get("confirmed", 0),
        "waiting": counts.get("waiting", 0),
        "never_oversold": counts.get("confirmed", 0) <= 400,
        "notices_enqueued": notices,
    }


def rows(results: dict[str, Any]) -> list[Row]:
    d = results["signup"]
    base = d["baseline_403"]
    out = [
        (
            f"signup: {d['submits']:,} POST /s/<token>, 4 connections, 1 worker, SQLite, "
            f"{d['clicks_meanwhile']:,} clicks meanwhile",
            f"{fmt(d['submits_per_s'], 0)} submits/s",
        ),
        (
            "signup: latency p50 / p99 / max",
            f"{fmt(d['p50_ms'], 2)} / {fmt(d['p99_ms'], 2)} / {fmt(d['max_ms'], 1)} ms",
        ),
        (
            "signup: confirmed / waiting (400 places), never oversold",
            f"{d['confirmed']:,} / {d['waiting']:,}, {fmt(d['never_oversold'])}",
        ),
        (
            "signup: same load, forged CSRF -> 403, no database",
            f"{fmt(base['requests_per_s'], 0)} req/s, p99 {fmt(base['p99_ms'], 2)} ms",
        ),
    ]
    for name in ("race_sqlite", "race_postgresql"):
        race = d.get(name)
        if race:
            out.append(
                (
                    f"signup: race, 200 at once for 20 places ({name.split('_')[1]})",
                    f"{race['confirmed']} confirmed / {race['waiting']} waiting, "
                    f"exact {fmt(race['exact'])}, {fmt(race['seconds'] * 1000, 0)} ms",
                )
            )
    return out


BENCHMARK = Benchmark(
    name="signup",
    run=run,
    rows=rows,
    sizes={
        "full": {"signup_submits": 5_000, "signup_warmup": 200},
        "smoke": {"signup_submits": 200, "signup_warmup": 20},
    },
    targets=(
        Target("submits_per_s", ">=", 300, "submits/s"),
        Target("p99_ms", "<=", 50, "ms p99"),
    ),
)
