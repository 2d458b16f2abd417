"""``equip-mailer serve``: the tracking service (click redirects, unsubscribe, SendGrid's event
webhook) run under uvicorn on this machine: one worker on SQLite, which wants one writer
process; ``--workers N`` on PostgreSQL, each worker with its own click writer."""

from __future__ import annotations

import socket

import click

from equip_mailer.cli.common import console, friendly_errors, main, settings
from equip_mailer.errors import EquipError


@main.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (put a TLS proxy in front for the public URL).",
)
@click.option(
    "--port",
    default=8025,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes, each with its own click writer (PostgreSQL; SQLite keeps one).",
)
@friendly_errors
def serve(host: str, port: int, workers: int) -> None:
    """Run the service readers and the team reach: tracked links and sign-up pages,
    unsubscribe, SendGrid's event webhook and the team pages.

    Serves /c/<token>/<link> (tracked links), the sign-up pages (/s/, /join/, /i/, /r/:
    places, the waiting list, cancelling; their confirmation mails go out from here),
    /u/<token> (unsubscribe), /team/ (the team's pages; EQUIP_TEAM says who may sign in),
    /webhooks/sendgrid and /healthz from EQUIP_DATABASE_URL, creating or migrating the
    store first; purges what
    is past EQUIP_RETENTION_DAYS at start and then daily (see `equip-mailer purge`). Set
    EQUIP_LINK_SECRET (the key the links were signed with) and SENDGRID_WEBHOOK_PUBLIC_KEY
    (without it the webhook refuses every post).

    On PostgreSQL, --workers N runs N worker processes (about one per core); SQLite keeps
    one worker and says so.

    \b
    Example:
      EQUIP_PUBLIC_URL=https://equip.example.org equip-mailer serve --port 8025
    """
    import logging

    import uvicorn

    from equip_mailer.people.retention import DailyPurge
    from equip_mailer.track.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    cfg = settings()
    listener = _listen(host, port)  # a busy port: one sentence, before the store is opened
    try:
        app = create_app(cfg, notices_outbox=cfg.outbox)  # ConfigError/StoreError: a sentence
    except BaseException:
        listener.close()
        raise
    if workers > 1 and app.state.service.engine.dialect.name != "postgresql":
        console.print(
            f"SQLite keeps one worker (it wants a single writer process), so --workers "
            f"{workers} runs 1. For more, move to PostgreSQL: see 'SQLite or PostgreSQL' in "
            "the README.",
            markup=False,
        )
        workers = 1
    console.print(
        f"Tracking service on http://{host}:{port}"
        + (f" ({workers} workers)" if workers > 1 else "")
        + "; Ctrl+C stops it.",
        markup=False,
    )
    # Retention (people.retention): purge once at start, then daily, in the service's queue.
    service = app.state.service
    purger = DailyPurge(
        service.engine, cfg.retention_days, writing=service.writing, outbox=cfg.outbox
    )
    purger.start()
    # One worker serves the app built here. Several each build their own (track.app's
    # worker_app, a factory uvicorn calls in every worker process); the app built here then
    # only checked the settings and keeps the daily purge in this, the supervising process.
    # uvicorn serves on the socket bound above, so no one can take the port in between.
    config = uvicorn.Config(
        app if workers == 1 else "equip_mailer.track.app:worker_app",
        factory=workers > 1,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
        proxy_headers=True,
    )
    try:
        if workers == 1:
            uvicorn.Server(config).run(sockets=[listener])
        else:
            from uvicorn.supervisors import Multiprocess

            listener.set_inheritable(True)  # the workers accept on it
            Multiprocess(config, sockets=[listener]).run()
    finally:
        purger.stop()
        listener.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or an error saying the port is taken."""
    import errno

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EquipError(
                f"port {port} on {host} is already in use (is another `equip-mailer serve` "
                "running?)",
                hint="Stop the other program, or choose another port with --port.",
            ) from None
        raise EquipError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock
