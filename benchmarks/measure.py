"""How the benchmarks measure: peak and current RSS, CPU seconds (our own or another
process's), medians and percentiles, a free loopback port.

Read from /proc where Linux offers it, because peak RSS (VmHWM) and a child's CPU are the
figures that stay comparable on a shared machine; getrusage is the fallback.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
from pathlib import Path


def _status_mb(field: str, status: Path = Path("/proc/self/status")) -> float | None:
    """A ``kB`` line of a /proc status file (``VmHWM``, ``VmRSS``), in MB."""
    try:
        for line in status.read_text(encoding="ascii").splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def current_rss_mb() -> float:
    """This process's resident set now (VmRSS), in MB; 0 where /proc is absent."""
    return _status_mb("VmRSS") or 0.0


def process_peak_rss_mb(pid: int) -> float | None:
    """Another process's peak resident set (VmHWM), in MB; None once it is gone."""
    return _status_mb("VmHWM", Path(f"/proc/{pid}/status"))


def cpu_seconds() -> float:
    """User + system CPU this process has used so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU another process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def median_ms(samples: list[float]) -> float:
    """The median of samples in seconds, in milliseconds."""
    return statistics.median(samples) * 1000


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q``th percentile of already sorted values (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
