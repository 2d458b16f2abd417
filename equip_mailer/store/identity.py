"""The store's link identity: which link secret its mail was signed with, and a digest of
a campaign's link registry.

Tokens in sent mail verify only under the secret that signed them, and lead somewhere only
through this store's link rows. So the store remembers the secret's fingerprint (never the
secret) at the first send, and ``send``, ``serve`` and ``check`` refuse another one; and the
live-service check compares ``links_digest`` on both sides to be sure the service reads the
same links the sender registered.
"""

from __future__ import annotations

import getpass
import hashlib
import socket
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer import link_secret
from equip_mailer.errors import ConfigError

from .rows import insert_ignore, utcnow
from .schema import links, meta

FINGERPRINT = "link_secret_fingerprint"
ORIGIN = "link_secret_origin"
SINCE = "link_secret_since"


@dataclass(frozen=True)
class Recorded:
    fingerprint: str
    origin: str  # where the secret came from, on which machine (no secret in it)
    since: str  # ISO date of the first send


def recorded(conn: Connection) -> Recorded | None:
    if not sa.inspect(conn).has_table("meta"):
        return None
    found = dict(
        conn.execute(
            sa.select(meta.c.key, meta.c.value).where(meta.c.key.in_((FINGERPRINT, ORIGIN, SINCE)))
        ).all()
    )
    if FINGERPRINT not in found:
        return None
    return Recorded(found[FINGERPRINT], found.get(ORIGIN, "unknown"), found.get(SINCE, "?"))


def _origin(where: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"{where}, user {user} on {socket.gethostname()}"


def remember(conn: Connection, secret: bytes, where: str) -> Recorded:
    """Record the secret's fingerprint unless one is recorded already; return the record.
    Raises like ``check`` when the recorded one differs."""
    check(conn, secret, where)
    insert_ignore(
        conn,
        meta,
        [
            {"key": FINGERPRINT, "value": link_secret.fingerprint(secret)},
            {"key": ORIGIN, "value": _origin(where)},
            {"key": SINCE, "value": utcnow().date().isoformat()},
        ],
        ["key"],
    )
    record = recorded(conn)
    assert record is not None  # just written (or written by a concurrent first send)
    check(conn, secret, where)  # a concurrent first send may have won with another secret
    return record


def check(conn: Connection, secret: bytes, where: str) -> None:
    """Refuse a secret other than the one this store's mail was signed with."""
    record = recorded(conn)
    if record is None:
        return
    mine = link_secret.fingerprint(secret)
    if mine == record.fingerprint:
        return
    raise ConfigError(
        f"the link secret from {where} (fingerprint {link_secret.short(mine)}) is not the one "
        f"this store's mail was signed with (fingerprint {link_secret.short(record.fingerprint)}"
        f", from {record.origin}, first used {record.since}), so every link in mail already "
        "sent would answer 404",
        hint="Supply the original secret: copy that link-secret file to this machine's "
        "~/.config/equip-mailer/link-secret (mode 600), or set EQUIP_LINK_SECRET to its "
        "contents. README: 'Moving the link secret'.",
    )


def links_digest(conn: Connection, campaign_id: str) -> str:
    """SHA-256 over a campaign's link rows (id, key, target): equal on two stores when a
    token made by one leads to the same place through the other."""
    digest = hashlib.sha256(campaign_id.encode("utf-8"))
    rows = conn.execute(
        sa.select(links.c.id, links.c.key, links.c.url)
        .where(links.c.campaign_id == campaign_id)
        .order_by(links.c.id)
    )
    count = 0
    for link_id, key, url in rows:
        digest.update(f"\x00{link_id}\x00{key}\x00{url}".encode())
        count += 1
    return digest.hexdigest() if count else ""
