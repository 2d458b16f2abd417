"""Settings: one table of every known setting, read from the environment, the project's
``equip-mailer.toml`` and the user's config file, in that order of precedence.

The table is the ``Settings`` dataclass itself: each field says its environment variable,
its kind (how a value is read and checked), whether it is a secret, and its default. A new
setting is one more field; the files, the environment, the error messages and the README
check (tests/test_config.py) all follow from it. Secrets (the SendGrid key, the link secret)
come from the environment or the user's config file, never the project file, which may be
shared or committed; ``Settings.__repr__`` masks them.

    # equip-mailer.toml, at the project root (the folder holding campaigns/)
    public_url = "https://equip.example.org"
    database_url = "sqlite:///equip-mailer.db"     # relative paths: from the project root
    sender_domain = "equip.example.org"

    # ~/.config/equip-mailer/config.toml (or $EQUIP_CONFIG): the user's, may hold secrets
    sendgrid_api_key = "SG.xxx"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import link_secret, settings_values
from .errors import ConfigError
from .project import PROJECT_FILE, Project

DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8025"
DEFAULT_DATABASE_URL = "sqlite:///equip-mailer.db"


@dataclass(frozen=True)
class Key:
    """How one setting is read: its variable, kind (see settings_values.KINDS), secrecy."""

    env: str
    kind: str
    secret: bool
    doc: str


def _setting(default: Any, env: str, doc: str, kind: str = "str", secret: bool = False) -> Any:
    return field(default=default, metadata={"key": Key(env, kind, secret, doc)})


@dataclass(frozen=True)
class Settings:
    sendgrid_api_key: str | None = _setting(
        None, "SENDGRID_API_KEY", "SendGrid API key; when set, `send` uses SendGrid", secret=True
    )
    sendgrid_api_host: str = _setting(
        DEFAULT_SENDGRID_HOST,
        "SENDGRID_API_HOST",
        "SendGrid base URL (the EU host, or a local stand-in for tests and rehearsals)",
        kind="url",
    )
    sendgrid_webhook_public_key: str | None = _setting(
        None,
        "SENDGRID_WEBHOOK_PUBLIC_KEY",
        "the Event Webhook verification key, as SendGrid's dashboard shows it",
    )
    database_url: str = _setting(
        DEFAULT_DATABASE_URL,
        "EQUIP_DATABASE_URL",
        "the store: `sqlite:///file.db` (relative to the project root) or `postgresql://host/db`",
        kind="database",
    )
    link_secret: str | None = _setting(
        None,
        "EQUIP_LINK_SECRET",
        "signs link and unsubscribe tokens; at least 32 bytes of entropy; keep it stable",
        secret=True,
    )
    public_url: str = _setting(
        DEFAULT_PUBLIC_URL,
        "EQUIP_PUBLIC_URL",
        "where `serve` is reachable from readers' mail (https, public, for a real send)",
        kind="url",
    )
    sender_domain: str | None = _setting(
        None,
        "EQUIP_SENDER_DOMAIN",
        "the domain authenticated in SendGrid that From addresses belong to",
        kind="domain",
    )
    outbox: Path = _setting(
        Path("outbox"), "EQUIP_OUTBOX", "folder of the outbox backend (.eml files)", kind="path"
    )
    # seconds; the sendgrid library sets no timeout of its own, so a stalled socket would hang
    sendgrid_timeout: float = _setting(
        30.0,
        "EQUIP_SENDGRID_TIMEOUT",
        "seconds per SendGrid request (the library sets none)",
        kind="seconds",
    )
    uncertain_settle_minutes: int = _setting(
        15,
        "EQUIP_UNCERTAIN_SETTLE_MINUTES",
        "minutes a batch with no answer waits for SendGrid's events before --retry-uncertain "
        "re-sends its unproven recipients",
        kind="int",
    )
    team: tuple[str, ...] = _setting(
        (),
        "EQUIP_TEAM",
        "addresses that may sign in to the team pages (/team/), lower-cased",
        kind="emails",
    )
    mail_from: str | None = _setting(
        None,
        "EQUIP_MAIL_FROM",
        'sender of the service\'s own mail (team sign-in links): "Name <address>" or an address',
    )
    retention_days: int = _setting(
        400,
        "EQUIP_RETENTION_DAYS",
        "days after which raw webhook payloads, user agents and IP hashes are purged",
        kind="int",
    )
    project: Project | None = field(default=None, compare=False)
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def __repr__(self) -> str:
        shown = []
        for name, key in KEYS.items():
            value = getattr(self, name)
            if key.secret and value:
                value = "***"
            elif key.kind == "emails":
                value = tuple(mask_email(address) for address in value)
            shown.append(f"{name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    def where(self, name: str) -> str:
        """Where a setting's value came from: its variable, a file and line, or the default."""
        if name in self.source:
            return self.source[name]
        return "the default" if getattr(self, name) == _DEFAULTS[name] else "the settings given"

    def require_link_secret(self) -> bytes:
        if not self.link_secret:
            raise ConfigError(
                "EQUIP_LINK_SECRET is not set",
                hint=f"Set EQUIP_LINK_SECRET to a long random string: {link_secret.MAKE_ONE}",
            )
        link_secret.check_strength(self.link_secret, self.where("link_secret"))
        return self.link_secret.encode("utf-8")


KEYS: dict[str, Key] = {f.name: f.metadata["key"] for f in fields(Settings) if f.metadata}
ENV_NAMES = {name: key.env for name, key in KEYS.items()}  # setting name -> variable
SECRET_FIELDS = {name for name, key in KEYS.items() if key.secret}
_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.metadata}


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "equip-mailer"


def load_settings(
    env: dict[str, str] | None = None,
    config_file: Path | None = None,
    create_link_secret: bool = True,
    *,
    project: Project | None = None,
) -> Settings:
    """Read settings for ``project``: environment, then its equip-mailer.toml, then the user's
    config file, then the default. With no link secret anywhere, make one and keep it in the
    config folder (stable across runs, so links in mail already sent keep working)."""
    env = dict(os.environ if env is None else env)
    user_file = config_file or Path(env.get("EQUIP_CONFIG") or config_dir() / "config.toml")
    layers = [_env_layer(env)]
    if project is not None and project.file is not None:
        layers.append(_file_layer(project.file, project=True))
    layers.append(_file_layer(user_file, project=False))
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name, key in KEYS.items():
        for layer in layers:
            if name in layer:
                raw, where = layer[name]
                label = where if where == key.env else f"{where}: {name}"
                values[name] = settings_values.read(key.kind, raw, label, project)
                source[name] = where
                break
    for name in ("database_url", "outbox"):  # their defaults are places in the project too
        if name not in values:
            default = _DEFAULTS[name]
            values[name] = settings_values.read(KEYS[name].kind, default, name, project)
    if "link_secret" not in values and create_link_secret:
        values["link_secret"], secret_file = link_secret.stored_secret(user_file.parent)
        source["link_secret"] = str(secret_file)
    return Settings(**values, project=project, source=source)


Layer = dict[str, tuple[Any, str]]  # setting name -> (raw value, where it came from)


def _env_layer(env: dict[str, str]) -> Layer:
    return {
        name: (env[key.env].strip(), key.env)
        for name, key in KEYS.items()
        if env.get(key.env, "").strip()
    }


def _file_layer(path: Path, *, project: bool) -> Layer:
    """A TOML file's settings, each with its file:line; unknown keys (and, in the project
    file, secrets) are errors at their line."""
    if not path.is_file():
        return {}
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML ({exc})", where=str(path)) from None
    layer: Layer = {}
    for name, value in data.items():
        where = f"{path}:{settings_values.line_of(text, name)}"
        key = KEYS.get(name)
        if key is None:
            # the project file refuses secrets, so it does not offer them as what to write
            offered = [k for k, v in KEYS.items() if not (project and v.secret)]
            raise ConfigError(
                f"unknown setting {name!r}{settings_values.did_you_mean(name, offered)}",
                where=where,
                hint=f"Known settings: {', '.join(offered)}.",
            )
        if key.secret and project:
            raise ConfigError(
                f"{name} is a secret and must not be in {PROJECT_FILE}, which may be shared "
                f"or committed; set {key.env} in the environment, or put it in the user's "
                f"config file ({config_dir() / 'config.toml'})",
                where=where,
            )
        secret = settings_values.secret_part(key.kind, value) if project else None
        if secret:
            raise ConfigError(
                f"{name} holds {secret}, and {PROJECT_FILE} may be shared or committed; "
                f"set {key.env} in the environment instead (or use ~/.pgpass)",
                where=where,
            )
        layer[name] = (value, where)
    return layer


def mask_email(address: str) -> str:
    """``ann.smith@nhs.net`` -> ``a***@n***.net``: enough to tell rows apart in a log, no more."""
    local, _, domain = address.partition("@")
    if not domain:
        return (local[:1] + "***") if local else "***"
    host, _, tld = domain.rpartition(".")
    host = host or domain
    return f"{local[:1]}***@{host[:1]}***" + (f".{tld}" if tld and host != domain else "")
