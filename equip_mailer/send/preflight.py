"""What must hold before a real SendGrid send, checked before any request.

Links and ``List-Unsubscribe`` in real readers' mail point at ``EQUIP_PUBLIC_URL``: a
loopback default, plain http or a scheme-less name makes every sign-up and one-click
unsubscribe dead, and nothing can recall the mail. A campaign that counts on SendGrid's
events needs the webhook key; the From address must sit in the domain authenticated at
SendGrid; the spec must name the privacy notice its mail links to. ``send`` refuses on
any of these (whatever ``SENDGRID_API_HOST`` is); ``check`` prints the same verdicts as
warnings.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from equip_mailer.config import Settings
from equip_mailer.errors import EquipError

if TYPE_CHECKING:
    from equip_mailer.compose.campaign import Campaign

PRIVATE_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain")


@dataclass(frozen=True)
class Verdict:
    """One reason a real send would be refused, and what to do about it."""

    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; {self.fix}"


class PreflightError(EquipError):
    """A real send refused before any request; ``verdicts`` says every reason."""

    def __init__(self, verdicts: list[Verdict]):
        self.verdicts = verdicts
        lines = [str(v) for v in verdicts]
        message = (
            lines[0]
            if len(lines) == 1
            else "a real send would fail its readers:\n" + "\n".join(f"- {ln}" for ln in lines)
        )
        super().__init__(
            message,
            hint="Nothing was sent. Rehearse meanwhile with --test-to, --dry-run or the outbox.",
        )


def host_problem(host: str) -> str | None:
    """Why readers' mail cannot reach ``host``, or None when it is a public name."""
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(PRIVATE_SUFFIXES):
        return f"{host} is this machine or a local network name"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        if "." not in name:
            return f"{host} is not a full domain name"
        return None
    if ip.is_loopback or ip.is_unspecified:
        return f"{host} is this machine"
    if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast:
        return f"{host} is a private address"
    return f"{host} is a numeric address (spam filters add points; certificates name domains)"


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (a local stand-in for SendGrid, in tests)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url_verdicts(settings: Settings) -> list[Verdict]:
    url, where = settings.public_url, settings.where("public_url")
    fix = "set EQUIP_PUBLIC_URL (or public_url in equip-mailer.toml) to the https:// address "
    fix += "where `equip-mailer serve` is reachable from the internet"
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return [Verdict(f"the public URL {url} (from {where}) is not an https:// address", fix)]
    problem = host_problem(parts.hostname)
    if problem:
        return [Verdict(f"the public URL {url} (from {where}) cannot be reached: {problem}", fix)]
    return []


def relies_on_webhook(campaign: Campaign) -> str | None:
    """What of the campaign only SendGrid's events can tell, or None."""
    if campaign.tracking.clicks == "sendgrid":
        return "its clicks are tracked by SendGrid (tracking.clicks: sendgrid)"
    if campaign.tracking.opens:
        return "it counts opens (tracking.opens: true)"
    return None


def webhook_verdicts(campaign: Campaign, settings: Settings) -> list[Verdict]:
    reason = relies_on_webhook(campaign)
    if reason is None or settings.sendgrid_webhook_public_key:
        return []
    return [
        Verdict(
            f"SENDGRID_WEBHOOK_PUBLIC_KEY is not set and campaign {campaign.id} relies on "
            f"SendGrid's events: {reason}",
            "set it to the verification key from SendGrid's Event Webhook settings",
        )
    ]


def sender_verdicts(campaign: Campaign, settings: Settings) -> list[Verdict]:
    address = campaign.sender.email
    domain = address.rpartition("@")[2].lower()
    named = settings.sender_domain
    if not named:
        return [
            Verdict(
                "no sender domain is named",
                "set sender_domain in equip-mailer.toml (or EQUIP_SENDER_DOMAIN) to the domain "
                "you authenticated in SendGrid (Settings > Sender Authentication)",
            )
        ]
    if domain != named and not domain.endswith("." + named):
        return [
            Verdict(
                f"the From address {address} is not in the sender domain {named} "
                f"(from {settings.where('sender_domain')})",
                "send from an address at that domain, or name the domain you authenticated",
            )
        ]
    return []


def privacy_verdicts(campaign: Campaign) -> list[Verdict]:
    """Readers must be able to find what is held about them (UK GDPR, articles 13-14): every
    mail and sign-up page links to the privacy notice, so a real send needs one."""
    if campaign.footer.privacy_url:
        return []
    return [
        Verdict(
            f"campaign {campaign.id} names no privacy notice (footer.privacy_url), which every "
            "mail and sign-up page must link to",
            "add footer: privacy_url: https://... (the page saying what is held, why and for "
            "how long; README 'Data and privacy' has the table to start from)",
        )
    ]


def verdicts(campaign: Campaign, settings: Settings) -> list[Verdict]:
    """Every reason a real SendGrid send of ``campaign`` would be refused."""
    return [
        *public_url_verdicts(settings),
        *webhook_verdicts(campaign, settings),
        *sender_verdicts(campaign, settings),
        *privacy_verdicts(campaign),
    ]


def refuse_unsafe(campaign: Campaign, settings: Settings) -> None:
    found = verdicts(campaign, settings)
    if found:
        raise PreflightError(found)
