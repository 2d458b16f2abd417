"""`equip-mailer serve --workers N` on PostgreSQL: several worker processes, each with its own
click writer; one stopped with SIGTERM under load writes every click it answered before it
exits. SQLite keeps one worker and says so."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from support.link_secrets import LINK_SECRET
from support.tracking_data import REPO, seed_campaign

from equip_mailer.send.links import click_path
from equip_mailer.store import open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(db_url: str, port: int, workers: int, home: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "EQUIP_DATABASE_URL": db_url,
        "EQUIP_LINK_SECRET": LINK_SECRET,
        "EQUIP_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "XDG_CONFIG_HOME": str(home / ".config"),
    }
    env.pop("SENDGRID_API_KEY", None)
    cli = [sys.executable, "-c", "from equip_mailer.cli import main; main()"]
    return subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_up(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"serve did not start: {proc.communicate()[0]}")
        time.sleep(0.1)


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes: the children the service spawned to serve."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return sorted(found)


def _serving_connections(pid: int, port: int) -> int:
    """How many established client connections to ``port`` process ``pid`` holds."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rpartition(":")[2], 16)
        if local_port == port and fields[3] == "01":  # ESTABLISHED
            inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


class Load:
    """Clicks over a few keep-alive connections, reconnecting when a worker closes one;
    counts the redirects answered."""

    def __init__(self, port: int, paths: list[str], connections: int = 6):
        self.port, self.paths, self.connections = port, paths, connections
        self.answered = 0
        self.other: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _client(self, k: int) -> None:
        i = k
        reader = writer = None
        while not self.stop.is_set():
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                path = self.paths[i % len(self.paths)]
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: t\r\nUser-Agent: Mozilla/5.0 "
                    "(Windows NT 10.0; Win64; x64) Chrome/120.0\r\n\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                if length:
                    await reader.readexactly(int(length.group(1)))
                if status == 302:
                    self.answered += 1
                else:
                    self.other[status] = self.other.get(status, 0) + 1
                i += self.connections
                if b"connection: close" in head.lower():
                    writer.close()
                    writer = None
            except (OSError, asyncio.IncompleteReadError):
                if writer is not None:
                    writer.close()
                writer = None  # the worker went away mid-request: not answered, try again
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(k) for k in range(self.connections)))


def _tracker_clicks(db_url: str) -> int:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.text("SELECT count(*) FROM events WHERE source = 'tracker'")
            ).scalar_one()
    finally:
        engine.dispose()


def test_a_worker_stopped_under_load_stores_every_click_it_answered(pg_url, tmp_path):
    engine = open_store(pg_url)
    secret = LINK_SECRET.encode()
    camp = seed_campaign(engine, secret, emails=tuple(f"reader{i}@example.org" for i in range(40)))
    engine.dispose()
    paths = [
        click_path(secret, link_id, ledger_id)
        for ledger_id in camp.recipients.values()
        for link_id in camp.link_ids.values()
    ]
    port = _free_port()
    proc = _serve(pg_url, port, 2, tmp_path)
    try:
        _wait_up(proc, port)
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        load = Load(port, paths)
        load.thread.start()
        deadline = time.monotonic() + 120
        while load.answered < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Stop a worker that is serving some of the load's connections (the kernel may have
        # handed them all to one), as an orchestrator stops one process.
        busy = max(workers, key=lambda pid: _serving_connections(pid, port))
        assert _serving_connections(busy, port) > 0
        os.kill(busy, signal.SIGTERM)
        # The load carries on with the other worker (and the one uvicorn starts in its place).
        target = load.answered + 300
        while load.answered < target and time.monotonic() < deadline:
            time.sleep(0.05)
        load.stop.set()
        load.thread.join(30)
        answered = load.answered
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0]
    assert "2 workers" in output
    assert load.other == {}, load.other
    # The stopped worker answered clicks and wrote every one of them before exiting...
    stopped = re.search(
        rf"click writer of process {busy} stopped: (\d+) clicks written, (\d+) dropped",
        output,
    )
    assert stopped, output[-3000:]
    assert int(stopped.group(1)) > 0 and stopped.group(2) == "0"
    # ...and so did the others: every redirect answered is a stored click (a request cut off
    # with its worker may be stored without its answer arriving, never the other way).
    written = sum(
        int(n) for n in re.findall(r"click writer of process \d+ stopped: (\d+) clicks", output)
    )
    stored = _tracker_clicks(pg_url)
    assert stored == written >= answered >= 500


def test_sqlite_keeps_one_worker_and_says_so(tmp_path):
    port = _free_port()
    proc = _serve(f"sqlite:///{tmp_path / 'serve.db'}", port, 3, tmp_path)
    try:
        _wait_up(proc, port)
        assert _workers(proc.pid) == []  # served in the command's own process
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    said = " ".join(output.split())  # the console wraps long lines
    assert "SQLite keeps one worker" in said and "--workers 3 runs 1" in said
    assert "move to PostgreSQL" in said
