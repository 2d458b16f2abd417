"""Settings, built once from the environment (and an optional config file outside the repo).

Secrets never live in the repository and never reach a log: ``Settings.__repr__`` masks them.
Precedence: environment variable, then the config file, then the embedded default.

The config file is TOML at ``$EQUIP_CONFIG`` or ``~/.config/equip-mailer/config.toml``::

    sendgrid_api_key = "SG.xxx"
    link_secret = "long random string"
    public_url = "https://equip.example.org"
"""

from __future__ import annotations

import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8025"
DEFAULT_DATABASE_URL = "sqlite:///equip-mailer.db"

# setting name -> environment variable
ENV_NAMES = {
    "sendgrid_api_key": "SENDGRID_API_KEY",
    "sendgrid_api_host": "SENDGRID_API_HOST",
    "sendgrid_webhook_public_key": "SENDGRID_WEBHOOK_PUBLIC_KEY",
    "database_url": "EQUIP_DATABASE_URL",
    "link_secret": "EQUIP_LINK_SECRET",
    "public_url": "EQUIP_PUBLIC_URL",
    "sendgrid_timeout": "EQUIP_SENDGRID_TIMEOUT",
    "team": "EQUIP_TEAM",
    "mail_from": "EQUIP_MAIL_FROM",
}
SECRET_FIELDS = {"sendgrid_api_key", "link_secret"}


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "equip-mailer"


@dataclass(frozen=True)
class Settings:
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str = DEFAULT_SENDGRID_HOST
    sendgrid_webhook_public_key: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    link_secret: str | None = None
    public_url: str = DEFAULT_PUBLIC_URL
    # seconds; the sendgrid library sets no timeout of its own, so a stalled socket would
    # hang a send
    sendgrid_timeout: float = 30.0
    # who may sign in to the team pages (/team/): lower-cased addresses
    team: tuple[str, ...] = ()
    # sender of the service's own mail (team sign-in links): "Name <address>" or an address
    mail_from: str | None = None
    source: dict = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name == "team":
                value = tuple(mask_email(address) for address in value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    def require_link_secret(self) -> bytes:
        if not self.link_secret:
            raise ConfigError(
                "EQUIP_LINK_SECRET is not set",
                hint="Set EQUIP_LINK_SECRET to a long random string.",
            )
        return self.link_secret.encode("utf-8")


def load_settings(
    env: dict[str, str] | None = None,
    config_file: Path | None = None,
    create_link_secret: bool = True,
) -> Settings:
    """Read settings; with no link secret anywhere, make one and keep it in the config dir.

    The generated secret lets the demo run with no set-up, and stays stable across runs so
    links in mail already sent keep working.
    """
    env = dict(os.environ if env is None else env)
    path = config_file or Path(env.get("EQUIP_CONFIG") or config_dir() / "config.toml")
    file_values: dict = {}
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file is not valid TOML ({exc})", where=str(path)) from None
        unknown = set(file_values) - set(ENV_NAMES)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(sorted(unknown))}; known: "
                f"{', '.join(sorted(ENV_NAMES))}",
                where=str(path),
            )
    values: dict = {}
    source: dict = {}
    for name, var in ENV_NAMES.items():
        if env.get(var, "").strip():
            values[name] = env[var].strip()
            source[name] = f"${var}"
        elif name in file_values:
            values[name] = file_values[name]
            source[name] = str(path)
    if "sendgrid_timeout" in values:
        try:
            values["sendgrid_timeout"] = float(values["sendgrid_timeout"])
        except ValueError:
            raise ConfigError(
                f"EQUIP_SENDGRID_TIMEOUT must be a number of seconds, "
                f"not {values['sendgrid_timeout']!r}"
            ) from None
    if "team" in values:
        values["team"] = parse_team(values["team"], source["team"])
    if "public_url" in values:
        values["public_url"] = str(values["public_url"]).rstrip("/")
    if "link_secret" not in values and create_link_secret:
        values["link_secret"] = _stored_link_secret(path.parent)
        source["link_secret"] = str(path.parent / "link-secret")
    return Settings(**values, source=source)


def parse_team(value: object, where: str) -> tuple[str, ...]:
    """The team's addresses from ``EQUIP_TEAM`` ("a@x.org, b@y.org") or a TOML list,
    lower-cased and de-duplicated; anything that is not an address is a ConfigError."""
    items = value if isinstance(value, list) else str(value).replace(";", ",").split(",")
    team: list[str] = []
    for item in items:
        address = str(item).strip().lower()
        if not address:
            continue
        local, _, domain = address.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in address):
            raise ConfigError(
                f"team: {str(item).strip()!r} is not an email address",
                where=where,
                hint="List the team's addresses separated by commas, "
                "e.g. EQUIP_TEAM=ann@nhs.example,bob@nhs.example",
            )
        if address not in team:
            team.append(address)
    return tuple(team)


def _stored_link_secret(directory: Path) -> str:
    secret_file = directory / "link-secret"
    if secret_file.exists():
        return secret_file.read_text(encoding="utf-8").strip()
    directory.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    return secret


def mask_email(address: str) -> str:
    """``ann.smith@nhs.net`` -> ``a***@n***.net``: enough to tell rows apart in a log, no more."""
    local, _, domain = address.partition("@")
    if not domain:
        return (local[:1] + "***") if local else "***"
    host, _, tld = domain.rpartition(".")
    host = host or domain
    return f"{local[:1]}***@{host[:1]}***" + (f".{tld}" if tld and host != domain else "")
