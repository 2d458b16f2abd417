"""Before a real send: is the service at ``EQUIP_PUBLIC_URL`` the one that can answer this
mail's links?

It asks ``/healthz`` a fresh challenge and compares the proofs with its own (see
``track/health.py``): the same link secret (else every token is a 404), a version that
answers the form of link this one sends (else every link is a 404), this campaign's links
in the store it reads (else every link is a 404), and, when the campaign relies on
SendGrid's events, a webhook key. Neither the secret nor anything about the campaign
crosses the wire. ``check --online`` runs it too.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import httpx

from equip_mailer.errors import EquipError
from equip_mailer.link_secret import healthz_proofs

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from equip_mailer.compose.campaign import Campaign
    from equip_mailer.config import Settings

TIMEOUT = 10.0


class ServiceCheckError(EquipError):
    """The live service cannot answer this campaign's links (or cannot be asked)."""


SKIP_FOR_SEND = "--no-service-check skips this check."


def _hint(public_url: str, skip: str) -> str:
    return (
        f"Start `equip-mailer serve` behind {public_url} with the same EQUIP_LINK_SECRET and "
        f"EQUIP_DATABASE_URL as this send, then try again (README: 'Before a real send'). {skip}"
    )


def _ask(url: str, nonce: str, campaign_id: str, timeout: float, skip: str) -> dict:
    where = f"{url}/healthz"
    try:
        response = httpx.get(
            where,
            params={"challenge": nonce, "campaign": campaign_id},
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise ServiceCheckError(
            f"cannot reach the tracking service at {where} ({reason}), so no link in this "
            "mail could be followed",
            hint=_hint(url, skip),
        ) from None
    try:
        body = response.json() if response.status_code == 200 else {}
    except ValueError:
        body = {}
    proof = body.get("proof") if isinstance(body, dict) else None
    if not isinstance(proof, dict):
        raise ServiceCheckError(
            f"{where} answered HTTP {response.status_code} without the link check's proof: "
            "it is not an equip-mailer service of this version",
            hint=_hint(url, skip),
        )
    return proof


def confirm_service(
    public_url: str,
    secret: bytes,
    campaign_id: str,
    links_digest: str,
    *,
    needs_webhook: bool = False,
    timeout: float = TIMEOUT,
    skip: str = SKIP_FOR_SEND,
) -> None:
    """Raise ServiceCheckError unless the service at ``public_url`` holds ``secret``, knows
    the links whose digest is ``links_digest``, and (when asked) can verify webhook posts.
    ``skip`` ends the hint of a service that cannot be asked: how the caller's command does
    without the check (send and check have different options)."""
    nonce = secrets.token_urlsafe(24)
    got = _ask(public_url, nonce, campaign_id, timeout, skip)
    mine = healthz_proofs(secret, nonce, campaign_id, links_digest, True)
    if got.get("secret") != mine["secret"]:
        raise ServiceCheckError(
            f"the tracking service at {public_url} uses a different link secret, so every "
            "link in this mail would answer 404",
            hint="Give the service this machine's secret (README: 'Moving the link secret'), "
            "or send from the machine that holds the service's.",
        )
    if got.get("link_form") != mine["link_form"]:
        raise ServiceCheckError(
            f"the tracking service at {public_url} runs an earlier equip-mailer, which cannot "
            "answer the links this version puts in mail (one token per reader: "
            "/c/<token>/<link>), so every link in this mail would answer 404",
            hint="Update equip-mailer where the service runs and restart `equip-mailer serve` "
            "(links in mail it sent before keep working), then send again.",
        )
    if got.get("links") != mine["links"]:
        raise ServiceCheckError(
            f"the tracking service at {public_url} does not know campaign {campaign_id}'s "
            "links (it reads another store), so every link in this mail would answer 404",
            hint="Point the service's EQUIP_DATABASE_URL at the store this send uses.",
        )
    if needs_webhook and got.get("webhook") != mine["webhook"]:
        raise ServiceCheckError(
            f"the tracking service at {public_url} has no SENDGRID_WEBHOOK_PUBLIC_KEY, and this "
            "campaign relies on SendGrid's events",
            hint="Set it where the service runs to the key from SendGrid's Event Webhook page.",
        )


def confirm_live_service(engine: Engine, campaign: Campaign, settings: Settings) -> None:
    """The check a real send makes: every link the mail will carry is registered in the
    store first (as the send would), so a service reading another store cannot pass by
    knowing no links either."""
    from equip_mailer.compose.render.pipeline import render_campaign
    from equip_mailer.store import identity

    from .links import register_links
    from .preflight import relies_on_webhook

    rendered = render_campaign(campaign, pages_url=settings.public_url)
    with engine.begin() as conn:
        for segment in rendered.values():
            register_links(conn, campaign.id, list(segment.links))
        digest = identity.links_digest(conn, campaign.id)
    confirm_service(
        settings.public_url,
        settings.require_link_secret(),
        campaign.id,
        digest,
        needs_webhook=relies_on_webhook(campaign) is not None,
        timeout=settings.sendgrid_timeout,
    )
