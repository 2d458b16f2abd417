"""Run a real ASGI app under uvicorn on a free loopback port, in a thread, for tests.

    base_url, stop = start_app(app)
    ...  httpx.get(f"{base_url}/healthz")
    stop()

or ``with running_app(app) as base_url: ...``. The socket is bound before uvicorn starts
(port 0, so the kernel picks a free one and no other test can race for it).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import uvicorn


def bound_socket(host: str = "127.0.0.1") -> socket.socket:
    """A listening-ready socket on a free port: pass it to ``start_app(sock=...)`` when the
    app must know its own URL before it starts (links it mails must point at it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    return sock


def start_app(
    app,
    host: str = "127.0.0.1",
    *,
    sock: socket.socket | None = None,
    timeout: float = 10.0,
    log_level: str = "warning",
    access_log: bool = False,
) -> tuple[str, Callable[[], None]]:
    """Start ``app``; return its base URL and a function that stops it (waits for shutdown)."""
    sock = sock or bound_socket(host)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        workers=1,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

    return f"http://{host}:{port}", stop


@contextlib.contextmanager
def running_app(app, host: str = "127.0.0.1", **options) -> Iterator[str]:
    base_url, stop = start_app(app, host, **options)
    try:
        yield base_url
    finally:
        stop()
