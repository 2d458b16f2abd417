"""What ``send`` settles before anything is sent: the run's settings and backend, the link
secret's identity (the store remembers its fingerprint), the live service that will answer
the links, and the store's copies of the courses and of SendGrid's suppressions.

Each check refuses in one sentence that says what to do; nothing here sends mail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from equip_mailer.cli.common import (
    console,
    err_console,
)
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.config import Settings
    from equip_mailer.send.batch import Backend
    from equip_mailer.send.campaign_mail import CampaignMail
    from equip_mailer.send.dispatch import SendOptions


@dataclass(frozen=True)
class SendRun:
    """What one ``send`` works from, settled once before anything is read or sent."""

    spec: Campaign
    cfg: Settings
    engine: Engine
    backend_name: str  # "outbox" or "sendgrid"
    options: SendOptions
    mail: CampaignMail
    outbox_dir: Path
    now: bool = False  # --retry-uncertain without the settling period


def make_backend(run: SendRun) -> Backend:
    from equip_mailer.send.backends.outbox import OutboxBackend
    from equip_mailer.send.backends.outbox_files import writers_from_env
    from equip_mailer.send.backends.sendgrid import SendGridBackend

    cfg = run.cfg
    if run.backend_name == "sendgrid":
        if not cfg.sendgrid_api_key:
            raise EquipError(
                "--backend sendgrid needs SENDGRID_API_KEY",
                hint="Set SENDGRID_API_KEY, or leave --backend out to use the outbox.",
            )
        return SendGridBackend(
            cfg.sendgrid_api_key,
            run.mail,
            host=cfg.sendgrid_api_host,
            timeout=cfg.sendgrid_timeout,
        )
    return OutboxBackend(run.outbox_dir, run.mail, writers=writers_from_env())


def close_backend(transport: Backend | None) -> None:
    """Let go of what ``make_backend``'s backend keeps between batches once ``send`` is done
    with it: the outbox's writer threads, which would otherwise idle until the process ends
    (``send`` run in-process, as the tests run it, ends long before). SendGrid's backend
    keeps nothing open: its client opens a connection per request."""
    from equip_mailer.send.backends.outbox import OutboxBackend

    if isinstance(transport, OutboxBackend):
        transport.close()


def check_link_identity(run: SendRun) -> None:
    """Refuse a link secret other than the one this store's mail was signed with."""
    from equip_mailer.store import identity

    with run.engine.connect() as conn:
        identity.check(conn, run.cfg.require_link_secret(), run.cfg.where("link_secret"))


def remember_link_identity(run: SendRun) -> None:
    """At the first send, the store records which secret its mail is signed with."""
    from equip_mailer.store import identity

    with run.engine.begin() as conn:
        identity.remember(conn, run.cfg.require_link_secret(), run.cfg.where("link_secret"))


def check_live_service(run: SendRun, *, skip: bool) -> None:
    """Before a real send: the service at EQUIP_PUBLIC_URL holds this secret and reads this
    store. Skipped, with a warning, against a loopback SendGrid stand-in or when asked."""
    from equip_mailer.send.preflight import is_loopback
    from equip_mailer.send.service_check import confirm_live_service

    if skip or is_loopback(run.cfg.sendgrid_api_host):
        why = (
            "--no-service-check"
            if skip
            else f"SENDGRID_API_HOST ({run.cfg.sendgrid_api_host}) is a loopback stand-in"
        )
        err_console.print(
            f"Warning: the live service at {run.cfg.public_url} was not checked ({why}); "
            "its links are not known to work.",
            markup=False,
            soft_wrap=True,
        )
        return
    confirm_live_service(run.engine, run.spec, run.cfg)
    console.print(
        f"Service at {run.cfg.public_url}: holds this link secret and knows this campaign's links.",
        markup=False,
        soft_wrap=True,
    )


def warn_of_an_earlier_id(run: SendRun) -> None:
    """The ledger that keeps a send to one copy each is per campaign id: a spec file sent
    before under another id (an id corrected after a first run, or last quarter's file
    reused) goes to everyone on its lists again. Say so, with the earlier id, before the
    counts and the question, while the old id can still be put back."""
    import sqlalchemy as sa

    from equip_mailer.store import campaigns, ledger

    spec = run.spec
    if spec.source is None:
        return
    here = spec.source.resolve()
    sent = (ledger.c.state == "sent") | (ledger.c.evidence.is_not(None))
    with run.engine.connect() as conn:
        if conn.execute(
            sa.select(ledger.c.id).where(ledger.c.campaign_id == spec.id, sent).limit(1)
        ).first():
            return  # this id has gone out already: a later run of the same campaign
        others = conn.execute(
            sa.select(campaigns.c.id, campaigns.c.spec_path).where(
                campaigns.c.id != spec.id, campaigns.c.spec_path.is_not(None)
            )
        ).all()
        for other_id, spec_path in others:
            if spec.path(spec_path).resolve() != here:
                continue
            n, last = conn.execute(
                sa.select(sa.func.count(), sa.func.max(ledger.c.sent_at)).where(
                    ledger.c.campaign_id == other_id, sent
                )
            ).one()
            if not n:
                continue
            console.print(
                f"Warning: {spec.shown_source} was sent before as campaign {other_id!r} "
                f"({n:,} recipients"
                + (f", last on {last:%Y-%m-%d}" if last else "")
                + f"); under its id now, {spec.id!r}, everyone on the lists gets it again. "
                f"If you only corrected the id, put {other_id!r} back.",
                markup=False,
                soft_wrap=True,
            )


def sync_signups(spec: Campaign, cfg: Settings, engine: Engine, outbox_dir: Path) -> None:
    """The sign-up pages work from the store: copy the courses there (places, dates, the
    deadline), give places that became free to the people waiting, mail them, and mail the
    people whose dates moved. Every command that copies the courses comes through here
    (``send``, ``attendance``): a copy made elsewhere would absorb a moved date unannounced."""
    from equip_mailer.send.notice_transports import notice_transport
    from equip_mailer.send.notices import NoticeSender
    from equip_mailer.signup import service
    from equip_mailer.signup.notify import MailLinks
    from equip_mailer.store import utcnow

    links = MailLinks(cfg.public_url, cfg.require_link_secret())
    synced = service.sync(service.Writer(engine, links), spec, utcnow())
    if synced.promoted or synced.rescheduled:
        NoticeSender(engine, notice_transport(cfg, outbox_dir)).deliver_pending()
    if synced.promoted:
        console.print(
            f"Sign-ups: {len(synced.promoted)} people on waiting lists got a place that became "
            "free (places grew), and were emailed.",
            markup=False,
        )
    if synced.rescheduled:
        who = "1 person" if synced.rescheduled == 1 else f"{synced.rescheduled} people"
        console.print(
            f"Sign-ups: {who} signed up for dates whose time or venue changed "
            f"{'was' if synced.rescheduled == 1 else 'were'} emailed the new details (with "
            "an updated calendar for a place).",
            markup=False,
        )
    for s in synced.stranded:
        console.print(
            f"Warning: {s.course} on {s.session} is no longer in the campaign file, but "
            f"{s.people} {'person holds' if s.people == 1 else 'people hold'} a place or "
            "wait for one on it and have not been told. Put the date back, or cancel their "
            "places on the team's roster page (each is emailed) and tell them the new date.",
            markup=False,
        )


def sync_suppressions(run: SendRun) -> None:
    """Before a real send, SendGrid's suppression lists since the last sync: whoever bounced
    or unsubscribed while the webhook was down is left out too. Unreadable lists are one
    note: the store's suppressions (kept by the webhook) still apply."""
    from equip_mailer.errors import DeliveryError
    from equip_mailer.track.suppression_sync import SendGridSuppressions, sync_suppressions

    cfg = run.cfg
    assert cfg.sendgrid_api_key  # the sendgrid backend was made with it
    source = SendGridSuppressions(
        cfg.sendgrid_api_key, host=cfg.sendgrid_api_host, timeout=cfg.sendgrid_timeout
    )
    try:
        secret = cfg.link_secret.encode("utf-8") if cfg.link_secret else None
        report = sync_suppressions(run.engine, source, secret)
    except DeliveryError as exc:
        if exc.status == 401:  # the key itself is refused: every batch would fail the same way
            raise DeliveryError(
                f"SendGrid rejected the API key (HTTP 401) when asked for its suppression "
                f"lists, so nothing was sent: {exc.message}",
                status=401,
                hint="Check SENDGRID_API_KEY (a key with Mail Send and Suppressions read "
                "access), then run the same command again.",
            ) from None
        console.print(
            f"Note: {exc.message}; going on with the suppressions already in the store "
            "(`equip-mailer suppressions sync` tries again).",
            markup=False,
            soft_wrap=True,
        )
        return
    if report.newly_suppressed:
        console.print(report.summary(), markup=False, soft_wrap=True)
