"""``equip-mailer serve``: the tracking service (click redirects, unsubscribe, SendGrid's event
webhook) run under uvicorn on this machine, in one worker because SQLite wants one writer."""

from __future__ import annotations

import click

from equip_mailer.cli.common import console, friendly_errors, main, settings


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
@friendly_errors
def serve(host: str, port: int) -> None:
    """Run the tracking service: click redirects, unsubscribe, SendGrid's event webhook.

    Serves /c/<token> (tracked links), /u/<token> (unsubscribe), /webhooks/sendgrid and
    /healthz from EQUIP_DATABASE_URL, creating or migrating the store first; purges what
    is past EQUIP_RETENTION_DAYS at start and then daily (see `equip-mailer purge`). Set
    EQUIP_LINK_SECRET (the key the links were signed with) and SENDGRID_WEBHOOK_PUBLIC_KEY
    (without it the webhook refuses every post).

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
    app = create_app(cfg)  # ConfigError/StoreError -> one plain sentence
    console.print(
        f"Tracking service on http://{host}:{port} (database "
        f"{_masked_db_url(cfg.database_url)}); Ctrl+C stops it.",
        markup=False,
    )
    # Retention (people.retention): purge once at start, then daily, in the service's queue.
    service = app.state.service
    purger = DailyPurge(service.engine, cfg.retention_days, writing=service.writing)
    purger.start()
    # One worker: the app object is built here, and SQLite wants a single writer process.
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            workers=1,
            log_level="info",
            access_log=False,
            proxy_headers=True,
        )
    finally:
        purger.stop()


def _masked_db_url(url: str) -> str:
    """The database URL to show on screen: its password hidden."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(invalid URL)"
