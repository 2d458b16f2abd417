"""A bounded HTTP load generator in its own process: asyncio, a few keep-alive HTTP/1.1
connections, a warm-up then the measured requests, until every path was requested or the
time is up. Req/s, latency percentiles, and its own CPU (it shares the cores with the
service it loads).

Hand-written rather than httpx, whose per-request cost is about what the service spends and
would measure the client instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Context, Figures
from benchmarks.measure import peak_rss_mb, percentile
from benchmarks.project import BROWSER_UA


async def _load(host: str, port: int, paths: list[str], concurrency: int, seconds: float) -> dict:
    """Keep-alive HTTP/1.1 GETs over ``concurrency`` connections until every path was
    requested once or ``seconds`` passed. Returns per-request latencies and statuses."""
    queue = list(reversed(paths))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue and time.perf_counter() < deadline:
                path = queue.pop()
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"User-Agent: {BROWSER_UA}\r\nAccept: */*\r\n\r\n"
                ).encode()
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "seconds": time.perf_counter() - t0,
        "latencies": latencies,
        "statuses": statuses,
        "errors": errors,
    }


def child_loadgen(work: Path, sizes: dict[str, int], params: dict[str, Any]) -> Figures:
    """In a fresh process: the warm-up (at most 30 s), then the measured load."""
    paths = json.loads(Path(params["paths_file"]).read_text())
    host, port = "127.0.0.1", int(params["port"])
    warm = asyncio.run(_load(host, port, paths[: params["warmup"]], params["concurrency"], 30))
    cpu0 = time.process_time()
    res = asyncio.run(
        _load(host, port, paths[params["warmup"] :], params["concurrency"], params["seconds"])
    )
    cpu = time.process_time() - cpu0
    lat = sorted(res["latencies"])
    n = len(lat)
    return {
        "requests": n,
        "warmup_requests": len(warm["latencies"]),
        "concurrency": params["concurrency"],
        "seconds": res["seconds"],
        "requests_per_s": n / res["seconds"] if res["seconds"] else 0.0,
        "p50_ms": percentile(lat, 50) * 1000,
        "p90_ms": percentile(lat, 90) * 1000,
        "p99_ms": percentile(lat, 99) * 1000,
        "max_ms": (lat[-1] * 1000) if lat else float("nan"),
        "statuses": {str(k): v for k, v in res["statuses"].items()},
        "errors": res["errors"] + warm["errors"],
        # the load generator shares the 2 cores with the service: its own CPU per request
        "load_generator_cpu_ms_per_request": cpu * 1000 / max(1, n),
        "load_generator_cpu_share": cpu / res["seconds"] if res["seconds"] else 0.0,
        "load_generator_peak_rss_mb": peak_rss_mb(),
    }


def run_load(
    ctx: Context,
    name: str,
    port: int,
    paths: list[str],
    *,
    warmup: int,
    concurrency: int,
    seconds: float,
) -> Figures:
    """Load 127.0.0.1:``port`` with ``paths`` (the first ``warmup`` of them unmeasured) from
    a child process, for at most ``seconds``; the paths go through ``<name>.json`` in the
    work folder."""
    paths_file = ctx.work / f"{name}.json"
    paths_file.write_text(json.dumps(paths))
    params = {
        "paths_file": str(paths_file),
        "port": port,
        "warmup": warmup,
        "concurrency": concurrency,
        "seconds": seconds,
    }
    return ctx.child(child_loadgen, params)
