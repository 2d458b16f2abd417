"""The results: targets checked (PASS/MISS), the printed table, the machine they ran on, and
the JSON written to benchmarks/results/.

Each benchmark supplies its own rows and targets (see harness.Benchmark); this module only
lays them out, so a figure's wording lives beside the code that measures it.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmarks.harness import Benchmark


def fmt(value: Any, digits: int = 1) -> str:
    """A figure as the table shows it: thousands separated, booleans as yes/NO."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def check_targets(
    results: dict[str, Any], suite: Sequence[Benchmark], size: str
) -> list[dict[str, Any]]:
    """Every target of every benchmark with its value and status ("n/a" when not run)."""
    out = []
    for bench in suite:
        figures = results.get(bench.name, {})
        for t in bench.targets:
            value = figures.get(t.figure)
            if t.read and value is not None:
                value = figures[t.read]
            if value is None:
                status = "n/a"
            else:
                met = value <= t.limit if t.op == "<=" else value >= t.limit
                status = "PASS" if met else "MISS"
            out.append(
                {
                    "bench": bench.name,
                    "figure": t.figure,
                    "value": value,
                    "target": f"{t.op} {t.limit:,}",
                    "unit": t.unit,
                    "status": status if size == "full" else f"({status})",
                }
            )
    return out


def print_table(results: dict[str, Any], suite: Sequence[Benchmark], size: str) -> None:
    """The figures of the benchmarks that ran, then the targets, then the notes."""
    rows = [row for bench in suite if bench.name in results for row in bench.rows(results)]
    width = max(len(a) for a, _ in rows) if rows else 40
    print(f"\nequip-mailer benchmarks ({size})")
    for a, b in rows:
        print(f"  {a:<{width}}  {b}")
    print("\nTargets" + ("" if size == "full" else " (smoke sizes: indicative only)"))
    for t in results["targets"]:
        print(
            f"  {t['status']:<6} {t['bench']:<8} {t['figure']:<18} {fmt(t['value'], 2):>12}  "
            f"target {t['target']} {t['unit']}"
        )
    for note in results.get("notes", []):
        print(f"  note: {note}")


def machine_info() -> dict[str, Any]:
    """Python, platform, CPU and the load average: the machine is shared, say how busy."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        info["load_avg_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    return info


def write_json(results: dict[str, Any], path: Path) -> str:
    """Write the results to ``path`` (folders made as needed); the text written."""
    text = json.dumps(results, indent=2, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return text
