#!/usr/bin/env python3
"""equip-mailer benchmarks: one runner, its own synthetic data, a table and JSON.

    python benchmarks/run.py            # full sizes (a few minutes on 2 cores)
    python benchmarks/run.py --smoke    # tiny sizes, a few seconds: keeps the runner working
    python benchmarks/run.py --only send,redirect

This module only runs the suite; each benchmark is a module of its own (its docstring says
what it measures and against what), in this order: render.py, send.py (against a naive
pipeline), webhook.py and redirect.py (one running tracking service, service.py, loaded by
loadgen.py), report.py. harness.py, measure.py and table.py are what they share: children,
measurements, the table and JSON. See benchmarks/README.md for the figures.

Everything listens on 127.0.0.1 only and lives in a temporary folder that is removed at the
end (``--keep`` keeps it). The JSON goes to stdout and to benchmarks/results/latest.json
(``latest-smoke.json`` with --smoke; ``--out`` to choose).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Run as a script, Python puts benchmarks/ first on sys.path, where render.py or report.py
# would shadow any top-level module of that name: import them as the `benchmarks` package
# from the repository instead (and tests/ for the fake SendGrid server in tests/support/).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
for _p in (str(REPO), str(REPO / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from benchmarks import (  # noqa: E402
    outbox,
    peer,
    redirect,
    render,
    report,
    send,
    signup,
    team,
    webhook,
    workers,
)
from benchmarks.harness import Benchmark, Context, child_main  # noqa: E402
from benchmarks.table import check_targets, machine_info, print_table, write_json  # noqa: E402

# Every benchmark, in the order they run and print. A new one: its module, and a line here.
SUITE: tuple[Benchmark, ...] = (
    render.BENCHMARK,
    send.BENCHMARK,
    outbox.BENCHMARK,
    peer.BENCHMARK,
    webhook.BENCHMARK,
    redirect.BENCHMARK,
    workers.BENCHMARK,
    signup.BENCHMARK,
    report.BENCHMARK,
    team.BENCHMARK,
)
RESULTS = HERE / "results"


def sizes_for(size: str) -> dict[str, int]:
    """Every benchmark's sizes for "full" or "smoke", in one dict (as the JSON shows them)."""
    return {k: v for bench in SUITE for k, v in bench.sizes[size].items()}


def plan(want: set[str]) -> list[Benchmark]:
    """The benchmarks to run, in suite order: those asked for and those they need."""
    by_name = {b.name: b for b in SUITE}
    todo = set(want)
    while missing := {n for name in todo for n in by_name[name].needs} - todo:
        todo |= missing
    return [b for b in SUITE if b.name in todo]


def run_suite(ctx: Context, benches: list[Benchmark], started: float) -> None:
    """Run each benchmark into ctx.results; close a shared resource after its last user."""
    try:
        for i, bench in enumerate(benches):
            ctx.current = bench.name
            ctx.results[bench.name] = bench.run(ctx)
            ctx.release({name for later in benches[i + 1 :] for name in later.shares})
            print(f"{bench.name} done ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    finally:
        ctx.release(set())


def parse_args(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    names = ",".join(b.name for b in SUITE)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    ap.add_argument("--only", help=f"comma-separated subset of {names}")
    ap.add_argument(
        "--out", type=Path, help="JSON file to write (default benchmarks/results/latest.json)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SIZE=N",
        help="override one size, e.g. --set send_recipients=10000 (see the JSON's sizes)",
    )
    # A measurement in a fresh process (harness.run_child): module:function and its inputs.
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    return ap, ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    ap, args = parse_args(argv)
    if args.child:
        params = args.params
        if params.startswith("@"):  # too long for a command line: written to a file
            params = Path(params[1:]).read_text(encoding="utf-8")
        child_main(args.child, args.work, json.loads(args.sizes), json.loads(params))
        return 0

    size = "smoke" if args.smoke else "full"
    names = {b.name for b in SUITE}
    want = names if not args.only else {b.strip() for b in args.only.split(",") if b.strip()}
    if unknown := want - names:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    out_path = args.out or RESULTS / ("latest.json" if size == "full" else "latest-smoke.json")
    work = Path(tempfile.mkdtemp(prefix="equip-bench-"))
    started = time.perf_counter()
    sizes = sizes_for(size)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in sizes or not value.strip().isdigit():
            ap.error(f"--set {item}: expected one of {', '.join(sorted(sizes))} = a whole number")
        sizes[key] = int(value)
    results: dict[str, Any] = {
        "size": size,
        "sizes": sizes,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "notes": [],
    }
    try:
        run_suite(Context(work, size, results["sizes"], results), plan(want), started)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    try:
        results["machine"]["load_avg_at_end"] = list(os.getloadavg())
    except OSError:
        pass
    results["targets"] = check_targets(results, SUITE, size)
    print_table(results, SUITE, size)
    text = write_json(results, out_path)
    print("\n" + text)
    print(f"\nwritten to {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
