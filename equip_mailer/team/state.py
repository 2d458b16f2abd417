"""What every team page needs from the settings, built once per app: the team, the public
URL (links in sign-in mail; Secure cookies when it is https), the key that CSRF tokens and
rate-limit hashes are derived from, and who sign-in mail comes from.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from starlette.requests import HTTPConnection

from equip_mailer.config import Settings

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
        if not address:
            host = public_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
            named = "." in host and not host.replace(".", "").isdigit()  # not an IP
            address = f"no-reply@{host if named else 'localhost'}"
        return cls(
            team=Team.of(settings.team),
            public_url=public_url,
            secure=public_url.lower().startswith("https://"),
            key=settings.require_link_secret(),
            sender_name=name or DEFAULT_SENDER_NAME,
            sender_email=address,
        )

    @staticmethod
    def of(request: HTTPConnection) -> TeamState:
        """The app's TeamState, made from ``app.state.settings`` on first use."""
        state: TeamState | None = getattr(request.app.state, "team_pages", None)
        if state is None:
            state = TeamState.from_settings(request.app.state.settings)
            request.app.state.team_pages = state
        return state
