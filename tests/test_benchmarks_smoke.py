"""The benchmark runner keeps working: ``benchmarks/run.py --smoke`` exits 0 and reports every
figure. The figures themselves are not checked (benchmarks are not tests; at smoke sizes on a
shared CI machine they mean little), only that each one is there and is a number."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FIGURES = {
    "render": [
        "segment_ms",
        "segment_cpu_ms",
        "all_segments_ms",
        "first_call_ms",
        "premailer_ms",
        "css_inline_ms",
        "premailer_over_css_inline",
        "naive_ms_per_recipient",
    ],
    "send": [
        "wall_s",
        "recipients_per_s",
        "lists_s",
        "sync_s",
        "loop_s",
        "cpu_s",
        "peak_rss_mb",
        "naive_s_for_100k_extrapolated",
        "speedup_vs_naive",
        "wall_s_per_100k",
        "rss_kb_per_recipient",
        "rss_fixed_mb",
    ],
    "outbox": [
        "wall_s",
        "recipients_per_s",
        "lists_s",
        "sync_s",
        "loop_s",
        "cpu_s",
        "peak_rss_mb",
        "wall_s_per_100k",
        "floor_wall_s_per_100k",
        "over_floor",
        "speedup_vs_email_package",
        "rss_kb_per_recipient",
        "rss_fixed_mb",
    ],
    "webhook": [
        "events_per_s",
        "seconds",
        "events_per_service_cpu_s",
        "rows_in_store",
        "distinct_events",
    ],
    "redirect": ["requests_per_s", "p50_ms", "p99_ms", "max_ms", "service_cpu_ms_per_request"],
    "report": [
        "seconds",
        "load_s",
        "aggregate_s",
        "write_outputs_s",
        "peak_rss_mb",
        "peak_rss_with_outputs_mb",
    ],
    "team": [
        "first_count_s",
        "report_p50_ms",
        "report_p99_ms",
        "roster_p99_ms",
        "signups_p99_ms",
        "campaigns_p99_ms",
        "worst_p99_ms",
        "stale_p99_ms",
        "uncached_over_cached_p99",
    ],
}


def test_smoke_run_reports_every_figure(tmp_path):
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["size"] == "smoke"
    for bench, figures in FIGURES.items():
        for figure in figures:
            value = results[bench][figure]
            assert isinstance(value, (int, float)) and math.isfinite(value), (bench, figure, value)
    # The correctness checks the runner makes along the way (not speed).
    assert results["send"]["exactly_once"] is True
    assert results["send"]["sent"] == results["sizes"]["send_recipients"]
    assert results["outbox"]["exactly_once"] is True
    # The same send with its files in memory (tmpfs), where the machine has /dev/shm.
    memory = results["outbox"]["memory"]
    if memory is not None:
        for figure in ("wall_s", "floor_wall_s", "over_floor"):
            assert math.isfinite(memory[figure]) and memory[figure] > 0, figure
    else:
        assert any("in-memory figures are absent" in n for n in results["notes"])
    # A floor over the wall target (a slow disk) is said beside the MISS, and only then.
    floor_said = any("the wall target cannot be met here" in n for n in results["notes"])
    assert floor_said == (results["outbox"]["floor_wall_s_per_100k"] > 10)
    # The send and floor from a dropped page cache are full-size only (dropping it slows
    # the whole machine): at smoke size a note says they are absent.
    assert results["outbox"]["cold"] is None
    assert any("cold page cache figures are absent" in n for n in results["notes"])
    # The peer (mailmerge + aiosmtpd in the benchmark's own venv) and the PostgreSQL
    # workers run need PyPI and PostgreSQL; without them their figures are absent, said so.
    peer = results["peer"]
    if peer["available"]:
        for figure in ("mailmerge_messages_per_s", "outbox_over_mailmerge"):
            assert math.isfinite(peer[figure]) and peer[figure] > 0, figure
        for size in peer["sizes"].values():
            assert size["mailmerge"]["all_arrived"] is True
            assert size["outbox"]["exactly_once"] and size["sendgrid"]["exactly_once"]
    else:
        assert any(n.startswith("peer: not measured") for n in results["notes"])
    workers = results["workers"]
    if workers["available"]:
        for figure in ("requests_per_s_1", "requests_per_s_2", "p99_ms_1", "p99_ms_2"):
            assert math.isfinite(workers[figure]) and workers[figure] > 0, figure
        assert workers["every_click_recorded"] is True
        assert workers["two"]["processes_under_serve"] >= 2
    assert results["outbox"]["sent"] == results["sizes"]["outbox_recipients"]
    assert results["webhook"]["exactly_once"] is True
    assert results["redirect"]["every_click_recorded"] is True
    assert results["report"]["events_read"] > 0
    # Every target is listed with a status, and the table was printed.
    assert {(t["bench"], t["figure"]) for t in results["targets"]} >= {
        ("render", "segment_ms"),
        ("send", "wall_s"),
        ("send", "speedup_vs_naive"),
        ("send", "peak_rss_mb"),
        ("outbox", "wall_s"),
        ("outbox", "over_floor"),
        ("outbox", "peak_rss_mb"),
        ("webhook", "events_per_s"),
        ("redirect", "requests_per_s"),
        ("redirect", "p99_ms"),
        ("report", "seconds"),
        ("report", "peak_rss_mb"),
        ("team", "worst_p99_ms"),
    }
    assert "equip-mailer benchmarks (smoke)" in proc.stdout
    # Nothing left behind in the working folder (the runner works in its own temp folder).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["smoke.json"]
