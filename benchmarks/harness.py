"""What every benchmark plugs into: its description (`Benchmark`, `Target`), the `Context` a
run gets, and running a measurement in a fresh child process.

A benchmark is a module that builds one `Benchmark`: its sizes (full and smoke), its targets,
``run(ctx) -> figures`` and the table rows it prints. run.py lists them in `SUITE`; adding one
is a module and a line there. Measurements that must not be warmed or bloated by earlier ones
(and whose peak RSS must be their own) run in a child process through `Context.child`, which
re-runs run.py with ``--child module:function``; the child prints its figures as one JSON line.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

RUNNER = Path(__file__).resolve().parent / "run.py"
RESULT_PREFIX = "BENCH-RESULT "

Figures = dict[str, Any]  # one benchmark's figures, as they go into the JSON
Row = tuple[str, str]  # a line of the printed table: what was measured, the figure
ChildFn = Callable[[Path, dict[str, int], dict[str, Any]], Figures]


@dataclass(frozen=True)
class Target:
    """A figure's target, checked at the end of the run (PASS/MISS; in brackets at smoke
    size, where the figures are indicative only)."""

    figure: str
    op: str  # "<=" or ">="
    limit: int
    unit: str
    # The key that holds the value to compare when it is not `figure` itself: the send's
    # target is for 100,000 recipients, so a smaller run compares its figure scaled to that.
    read: str | None = None


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its name is its key in the JSON (and for ``--only``)."""

    name: str
    run: Callable[[Context], Figures]
    rows: Callable[[dict[str, Any]], list[Row]]  # from all results: one may cite another's
    sizes: dict[str, dict[str, int]]  # "full" and "smoke" -> size name -> value
    targets: tuple[Target, ...] = ()
    needs: tuple[str, ...] = ()  # benchmarks whose figures run() reads (run first)
    shares: tuple[str, ...] = ()  # names of Context.shared resources it uses


class Shared(Protocol):
    """A resource several benchmarks use in turn (the tracking service), closed once the
    last of them is done; ``close`` gets the figures of those that used it."""

    def close(self, users: list[Figures]) -> None: ...


S = TypeVar("S", bound=Shared)


@dataclass
class Context:
    """What a benchmark's run() gets: the temporary folder, the sizes, the figures so far."""

    work: Path
    size: str  # "full" or "smoke"
    sizes: dict[str, int]
    results: dict[str, Any]
    current: str = ""
    _shared: dict[str, Shared] = field(default_factory=dict)
    _users: dict[str, list[str]] = field(default_factory=dict)

    def child(
        self,
        fn: ChildFn,
        params: dict[str, Any] | None = None,
        *,
        work: Path | None = None,
        timeout: float = 900,
    ) -> Figures:
        """Run ``fn(work, sizes, params)`` in a fresh interpreter (cwd ``work``); its figures."""
        return run_child(fn, work or self.work, self.sizes, params or {}, timeout)

    def note(self, text: str) -> None:
        """A line printed under the targets and kept in the JSON's ``notes``."""
        self.results["notes"].append(text)

    def shared(self, name: str, start: Callable[[Context], S]) -> S:
        """The shared resource ``name``, started by ``start(ctx)`` on first use."""
        if name not in self._shared:
            self._shared[name] = start(self)
            self._users[name] = []
        self._users[name].append(self.current)
        return self._shared[name]  # type: ignore[return-value]

    def release(self, keep: set[str]) -> None:
        """Close every shared resource not named in ``keep``."""
        for name in [n for n in self._shared if n not in keep]:
            users = [self.results[u] for u in self._users.pop(name) if u in self.results]
            self._shared.pop(name).close(users)


def run_child(
    fn: ChildFn, work: Path, sizes: dict[str, int], params: dict[str, Any], timeout: float
) -> Figures:
    """Run ``fn`` through ``run.py --child`` in a fresh interpreter; return what it emitted."""
    target = f"{fn.__module__}:{fn.__name__}"
    params_text = json.dumps(params)
    if len(params_text) > 64_000:  # Linux caps one argument at 128 KiB: pass a file instead
        params_file = work / f"params-{fn.__name__}-{os.getpid()}.json"
        params_file.write_text(params_text, encoding="utf-8")
        params_text = "@" + str(params_file)
    cmd = [
        sys.executable,
        str(RUNNER),
        "--child",
        target,
        "--work",
        str(work),
        "--sizes",
        json.dumps(sizes),
        "--params",
        params_text,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(work))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            if proc.returncode != 0:
                break
            figures: Figures = json.loads(line[len(RESULT_PREFIX) :])
            return figures
    raise RuntimeError(
        f"benchmark child {target!r} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )


def child_main(target: str, work: Path, sizes: dict[str, int], params: dict[str, Any]) -> None:
    """The child's side: call ``module:function`` and print its figures as one line."""
    module, _, name = target.partition(":")
    fn: ChildFn = getattr(importlib.import_module(module), name)
    print(RESULT_PREFIX + json.dumps(fn(work, sizes, params)), flush=True)
