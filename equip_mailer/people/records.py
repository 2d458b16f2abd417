"""What check and send learn from the store about the people on a list: the QI level the
training gave them, and whether they asked to be forgotten.

``load_audience`` takes a ``PeopleRecords`` and asks it two things per recipient: the
recorded level (the higher of it and the list's wins) and whether the address was erased.
An erased address is kept only as a keyed hash (``erased_key``), so the check hashes each
list address with the same key; when nobody was ever erased it hashes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.errors import ConfigError
from equip_mailer.store import suppressions

from .levels import LevelChange, recorded_levels

ERASED_PREFIX = "erased:"


def erasure_key(secret: bytes) -> bytes:
    """The key erased addresses are hashed under: derived from the link secret for this
    purpose alone, so the store by itself cannot be used to test guessed addresses, and a
    hash matches only under the secret the store's mail was signed with (which
    ``store.identity`` pins)."""
    return hmac.new(secret, b"equip-mailer/erasure/v1", hashlib.sha256).digest()


def erased_key(secret: bytes, email: str, *, key: bytes | None = None) -> str:
    """The irreversible keyed hash an erased address is remembered by: "erased:<64 hex>"
    (HMAC-SHA256 of the lower-cased address; pass ``key`` to skip deriving it again)."""
    key = key if key is not None else erasure_key(secret)
    digest = hmac.digest(key, email.strip().lower().encode("utf-8"), "sha256").hex()
    return ERASED_PREFIX + digest


def erased_event_key(secret: bytes, dedupe_key: str, *, key: bytes | None = None) -> str:
    """What an erased person's webhook event is deduplicated by from then on. Its old key is
    a plain SHA-256 of the address and of fields stored beside it (track/webhook.py
    ``dedupe_key``), so hashing a guessed address would confirm it; this keyed hash of the
    old key still recognises a retry of the event (the webhook computes it the same way)."""
    key = key if key is not None else erasure_key(secret)
    return hmac.new(key, b"event:" + dedupe_key.encode("utf-8"), hashlib.sha256).hexdigest()


def _erased_hashes() -> sa.ColumnElement[bool]:
    """The suppressions ``forget`` left: a range of the key, not LIKE 'erased:%', which
    SQLite matches without regard to case and so cannot answer from the key's index (every
    webhook post asks, over a table of many thousands of suppressions)."""
    after = ERASED_PREFIX[:-1] + chr(ord(ERASED_PREFIX[-1]) + 1)  # "erased;"
    key = suppressions.c.email_key
    return sa.and_(key >= ERASED_PREFIX, key < after)


def erased_among(conn: Connection, secret: bytes, emails: Iterable[str]) -> set[str]:
    """Which of ``emails`` (returned lower-cased) were erased by ``forget``: for what comes
    in after an erasure (a webhook event SendGrid retried or sent late) and must not write
    the address back. Hashes nothing when nobody was ever erased."""
    keys = {e.strip().lower() for e in emails if "@" in e}
    anyone = conn.execute(
        sa.select(suppressions.c.email_key).where(_erased_hashes()).limit(1)
    ).first()
    if not keys or anyone is None:
        return set()
    derived = erasure_key(secret)
    hashed = {erased_key(secret, k, key=derived): k for k in keys}
    found: set[str] = set()
    wanted = list(hashed)
    for start in range(0, len(wanted), 500):
        found.update(
            conn.execute(
                sa.select(suppressions.c.email_key).where(
                    suppressions.c.email_key.in_(wanted[start : start + 500])
                )
            ).scalars()
        )
    return {hashed[h] for h in found}


@dataclass
class PeopleRecords:
    """Recorded levels and erased hashes, read once for a whole list."""

    levels: dict[str, LevelChange] = field(default_factory=dict)
    erased_hashes: frozenset[str] = frozenset()
    secret: bytes | None = None

    def __post_init__(self) -> None:
        # derived once: a list of 100,000 addresses is hashed in a twentieth of a second
        self._key = erasure_key(self.secret) if self.secret is not None else b""

    def level(self, key: str) -> LevelChange | None:
        return self.levels.get(key)

    def erased(self, key: str) -> bool:
        if not self.erased_hashes:
            return False
        if self.secret is None:  # load() refuses this combination; kept safe regardless
            return True
        # erased_key inlined: this runs once per list row (``key`` is lower-cased already)
        digest = hmac.digest(self._key, key.encode("utf-8"), "sha256").hex()
        return ERASED_PREFIX + digest in self.erased_hashes


def load(conn: Connection, secret: bytes | None) -> PeopleRecords:
    """Read the store's records. Raises ConfigError when someone was erased and no link
    secret is at hand: without it an erased address on an old list could not be recognised."""
    tables = set(sa.inspect(conn).get_table_names())
    if "person_levels" not in tables:  # a store from before people were recorded
        return PeopleRecords(secret=secret)
    hashes = frozenset(
        conn.execute(sa.select(suppressions.c.email_key).where(_erased_hashes())).scalars()
    )
    if hashes and secret is None:
        raise ConfigError(
            f"{len(hashes)} erased {'person is' if len(hashes) == 1 else 'people are'} "
            "remembered only by a hash under the link secret, and EQUIP_LINK_SECRET is not set",
            hint="Set EQUIP_LINK_SECRET (the secret this store's mail was signed with).",
        )
    return PeopleRecords(levels=recorded_levels(conn), erased_hashes=hashes, secret=secret)
