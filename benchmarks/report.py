"""report: ``load_frames`` + ``build_report`` over 1,000,000 events of a finished campaign
(100,000 ledger rows, the demo's links) in a child process; targets <= 10 s and <= 1 GB
peak RSS. Writing the outputs (html, xlsx, csv) is timed and reported separately.

The events are written straight into SQLite with ``executemany`` before the timed part:
processed 10 %, delivered 9.7 %, bounce 0.2 %, dropped 0.1 %, open 30 %, click 50 % (a fifth
of them machine clicks), so the report reads the 900,000 events of the five types it uses.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.harness import Benchmark, Context, Figures, Row, Target
from benchmarks.measure import cpu_seconds, current_rss_mb, peak_rss_mb
from benchmarks.project import CAMPAIGN_ID, db_time, write_project
from benchmarks.table import fmt

SENT_AT = dt.datetime(2019, 4, 22, 10, 0)
EVENT_MIX = [
    ("processed", 0.10),
    ("delivered", 0.097),
    ("bounce", 0.002),
    ("dropped", 0.001),
    ("open", 0.30),
    ("click", 0.50),
]
MACHINE_REASONS = ["after-delivery", "ua:microsoft-safelinks", "burst", "head"]
PRACTICES = [f"Practice {i}" for i in range(60)]
ROLES = ["GP", "Practice nurse", "Receptionist", "Practice manager", "Pharmacist", "Citizen"]


def seed_report_store(work: Path, n_events: int, n_recipients: int) -> tuple[Path, Path]:
    """A finished campaign with ``n_events`` events: (database, spec)."""
    from equip_mailer import store
    from equip_mailer.compose.render.pipeline import render_campaign
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.send.links import register_links

    project = work / "report-project"
    spec_path = write_project(project, 10)  # lists unused: the ledger is written here
    campaign = load_campaign(spec_path, allow_past=True)
    db = work / "report.db"
    engine = store.open_store(f"sqlite:///{db}")
    rendered = render_campaign(campaign)
    specs = {link.key: link for r in rendered.values() for link in r.links}
    with engine.begin() as conn:
        store.ensure_campaign(conn, campaign.id, campaign.subject, str(spec_path))
        link_ids = list(register_links(conn, campaign.id, list(specs.values())).values())
    engine.dispose()

    segments = [s.id for s in campaign.segments]
    total = sum(int(n_events * share) for _, share in EVENT_MIX)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        _insert_batches(conn, campaign.id, segments, (n_recipients + 999) // 1000)
        _insert_ledger(conn, campaign.id, segments, n_recipients)
        conn.executemany(
            "INSERT INTO events (dedupe_key, event, at, source, campaign_id, ledger_id, link_id,"
            " machine, machine_reason, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            _event_rows(campaign.id, link_ids, n_events, n_recipients),
        )
        conn.commit()
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    if stored != total:
        raise RuntimeError(f"report seed wrote {stored} events, meant {total}")
    return db, spec_path


def _insert_batches(
    conn: sqlite3.Connection, campaign_id: str, segments: list[str], n_batches: int
) -> None:
    conn.executemany(
        "INSERT INTO batches (id, campaign_id, segment, send_id, backend, state, size, attempts,"
        " created_at, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
        [
            (
                b + 1,
                campaign_id,
                segments[b % 3],
                uuid.uuid4().hex,
                "sendgrid",
                "sent",
                1000,
                1,
                db_time(SENT_AT),
                db_time(SENT_AT),
            )
            for b in range(n_batches)
        ],
    )


def _insert_ledger(
    conn: sqlite3.Connection, campaign_id: str, segments: list[str], n_recipients: int
) -> None:
    """One row per recipient, sent a minute after the start; one in 200 failed."""
    sent_at = db_time(SENT_AT + dt.timedelta(minutes=1))
    conn.executemany(
        "INSERT INTO ledger (id, campaign_id, email, email_key, first_name, last_name, practice,"
        " role, qi_level, segment, state, batch_id, attempts, created_at, updated_at, sent_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            (
                i,
                campaign_id,
                f"r{i}@nhs.example",
                f"r{i}@nhs.example",
                "Reader",
                str(i),
                PRACTICES[i % 60],
                ROLES[i % 6],
                "none",
                segments[((i - 1) // 1000) % 3],
                "sent" if i % 200 else "failed",
                (i - 1) // 1000 + 1,
                1,
                sent_at,
                sent_at,
                sent_at,
            )
            for i in range(1, n_recipients + 1)
        ),
    )


def _event_rows(
    campaign_id: str, link_ids: list[int], n_events: int, n_recipients: int
) -> Iterator[tuple[Any, ...]]:
    """The events in `EVENT_MIX` proportions, at random readers over two weeks."""
    rng = random.Random(5)
    received = db_time(SENT_AT + dt.timedelta(days=8))
    k = 0
    for name, share in EVENT_MIX:
        for _ in range(int(n_events * share)):
            k += 1
            lid = rng.randint(1, n_recipients)
            at = SENT_AT + dt.timedelta(seconds=rng.randint(60, 14 * 86400))
            click = name == "click"
            machine = click and rng.random() < 0.2
            yield (
                f"{k:064x}",
                name,
                db_time(at),
                "tracker" if click else "webhook",
                campaign_id,
                lid,
                rng.choice(link_ids) if click else None,
                int(machine),
                rng.choice(MACHINE_REASONS) if machine else None,
                received,
            )


def child_report(work: Path, sizes: dict[str, int], params: dict[str, Any]) -> Figures:
    """In a fresh process: load + aggregate (the target), then the output files."""
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.report.assemble import build_report
    from equip_mailer.report.files import write_report
    from equip_mailer.report.load import load_frames
    from equip_mailer.report.model import names_from_spec
    from equip_mailer.store import open_store

    rss_imports = current_rss_mb()
    engine = open_store(f"sqlite:///{params['db']}")
    names = names_from_spec(load_campaign(params["spec"], allow_past=True))
    t0 = time.perf_counter()
    frames = load_frames(engine, CAMPAIGN_ID)
    t1 = time.perf_counter()
    rep = build_report(frames, names)
    t2 = time.perf_counter()
    cpu = cpu_seconds()
    rss_aggregate = peak_rss_mb()
    paths = write_report(rep, work / "report-out")
    t3 = time.perf_counter()
    return {
        "events": int(params["events"]),
        "events_read": len(frames.events),
        "recipients": len(frames.ledger),
        "load_s": t1 - t0,
        "aggregate_s": t2 - t1,
        "seconds": t2 - t0,
        "write_outputs_s": t3 - t2,
        "files_written": len(paths),
        "cpu_s_process_total": cpu,
        "rss_after_imports_mb": rss_imports,
        "peak_rss_mb": rss_aggregate,
        "peak_rss_with_outputs_mb": peak_rss_mb(),
    }


def run(ctx: Context) -> Figures:
    t = time.perf_counter()
    db, spec = seed_report_store(
        ctx.work, ctx.sizes["report_events"], ctx.sizes["report_recipients"]
    )
    setup_s = time.perf_counter() - t
    params = {"db": str(db), "spec": str(spec), "events": ctx.sizes["report_events"]}
    res = ctx.child(child_report, params)
    res["setup_s"] = setup_s
    res["db_mb"] = db.stat().st_size / 2**20
    return res


def rows(results: dict[str, Any]) -> list[Row]:
    p = results["report"]
    return [
        (
            f"report: {p['events']:,} events, load_frames + aggregation",
            f"{fmt(p['seconds'], 2)} s (load {fmt(p['load_s'], 2)} + "
            f"aggregate {fmt(p['aggregate_s'], 2)})",
        ),
        ("report: writing html + xlsx + csv", f"{fmt(p['write_outputs_s'], 2)} s"),
        (
            "report: peak RSS (load + aggregate / with outputs)",
            f"{fmt(p['peak_rss_mb'])} / {fmt(p['peak_rss_with_outputs_mb'])} MB",
        ),
    ]


BENCHMARK = Benchmark(
    name="report",
    run=run,
    rows=rows,
    sizes={
        "full": {"report_events": 1_000_000, "report_recipients": 100_000},
        "smoke": {"report_events": 20_000, "report_recipients": 2_000},
    },
    targets=(
        Target("seconds", "<=", 10, "s (load + aggregate)"),
        Target("peak_rss_mb", "<=", 1024, "MB peak RSS"),
    ),
)
