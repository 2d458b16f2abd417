"""What every team page needs from the settings, built once per app: the team, the public
URL (links in sign-in mail; Secure cookies when it is https), the key that CSRF tokens and
rate-limit hashes are derived from, and who sign-in mail comes from.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from equip_mailer.config import Settings
from equip_mailer.errors import ConfigError

from .members import Team

DEFAULT_SENDER_NAME = "EQUIP team pages"


@dataclass(frozen=True)
class TeamState:
    team: Team
    public_url: str  # no trailing slash
    secure: bool  # the public URL is https: cookies are Secure and __Host- prefixed
    key: bytes  # the link secret; every use is labelled (csrf, rate, ...) so none collide
    sender_name: str
    sender_email: str

    @classmethod
    def from_settings(cls, settings: Settings) -> TeamState:
        public_url = settings.public_url.rstrip("/")
        name, address = parseaddr(settings.mail_from or "")
        return cls(
            team=Team.of(settings.team),
            public_url=public_url,
            secure=public_url.lower().startswith("https://"),
            key=settings.require_link_secret(),
            sender_name=name or DEFAULT_SENDER_NAME,
            sender_email=address or default_sender(settings),
        )

    @staticmethod
    def of(request: HTTPConnection) -> TeamState:
        """The app's TeamState, made from ``app.state.settings`` on first use."""
        state: TeamState | None = getattr(request.app.state, "team_pages", None)
        if state is None:
            state = TeamState.from_settings(request.app.state.settings)
            request.app.state.team_pages = state
        return state


def default_sender(settings: Settings) -> str:
    """Sign-in mail's From without EQUIP_MAIL_FROM: no-reply at the domain authenticated in
    SendGrid (EQUIP_SENDER_DOMAIN), else at the public URL's domain. A public URL that is
    an IP address or localhost gives no domain: mail through SendGrid from one would be
    refused (no verified sender), so the service says so at start; the outbox takes any."""
    host = urlsplit(settings.public_url).hostname or ""
    try:
        ipaddress.ip_address(host)
        named = False
    except ValueError:
        named = "." in host
    domain = settings.sender_domain or (host if named else None)
    if domain:
        return f"no-reply@{domain}"
    if settings.sendgrid_api_key:
        raise ConfigError(
            f"the team's sign-in mail has no sender: EQUIP_MAIL_FROM is not set and "
            f"EQUIP_PUBLIC_URL ({settings.public_url}) names no domain to send from",
            hint="Set EQUIP_MAIL_FROM to an address at the domain authenticated in SendGrid "
            "(e.g. 'EQUIP team <no-reply@equip.example.org>'), or set EQUIP_SENDER_DOMAIN.",
        )
    return "no-reply@localhost"
