"""``equip-mailer suppressions sync``: SendGrid's bounces, invalid addresses, spam reports and
unsubscribes copied into the store's suppressions, so nobody SendGrid has suppressed is
mailed again even if the webhook was down when it happened (track/suppression_sync.py)."""

from __future__ import annotations

from equip_mailer.cli.common import console, friendly_errors, main, settings
from equip_mailer.errors import EquipError


@main.group()
def suppressions() -> None:
    """Addresses no campaign may reach again: bring in SendGrid's own lists.

    \b
    Example:
      equip-mailer suppressions sync
    """


@suppressions.command("sync")
@friendly_errors
def sync() -> None:
    """Pull what SendGrid added to its suppression lists since the last sync (bounces,
    invalid addresses, spam reports, global unsubscribes; blocks are counted, never
    suppressed) into the store. Every send through SendGrid does this first.

    \b
    Example:
      equip-mailer suppressions sync
    """
    from equip_mailer.store import open_store
    from equip_mailer.track.suppression_sync import SendGridSuppressions, sync_suppressions

    cfg = settings()
    if not cfg.sendgrid_api_key:
        raise EquipError(
            "suppressions sync needs SENDGRID_API_KEY",
            hint="Set SENDGRID_API_KEY (a key with read access to Suppressions).",
        )
    engine = open_store(cfg.database_url)
    try:
        source = SendGridSuppressions(
            cfg.sendgrid_api_key, host=cfg.sendgrid_api_host, timeout=cfg.sendgrid_timeout
        )
        secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
        report = sync_suppressions(engine, source, secret)
    finally:
        engine.dispose()
    console.print(report.summary(), markup=False, soft_wrap=True)
