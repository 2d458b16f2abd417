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
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.errors import ConfigError
from equip_mailer.store import suppressions

from .levels import LevelChange, recorded_levels

ERASED_PREFIX = "erased:"


def erased_key(secret: bytes, email: str) -> str:
    """The irreversible keyed hash an erased address is remembered by: "erased:<64 hex>".

    HMAC-SHA256 under a key derived from the link secret for this purpose alone, so the
    store by itself cannot be used to test guessed addresses, and the hash matches only
    under the secret the store's mail was signed with (which ``store.identity`` pins)."""
    key = hmac.new(secret, b"equip-mailer/erasure/v1", hashlib.sha256).digest()
    digest = hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()
    return ERASED_PREFIX + digest


@dataclass
class PeopleRecords:
    """Recorded levels and erased hashes, read once for a whole list."""

    levels: dict[str, LevelChange] = field(default_factory=dict)
    erased_hashes: frozenset[str] = frozenset()
    secret: bytes | None = None

    def level(self, key: str) -> LevelChange | None:
        return self.levels.get(key)

    def erased(self, key: str) -> bool:
        if not self.erased_hashes:
            return False
        if self.secret is None:  # load() refuses this combination; kept safe regardless
            return True
        return erased_key(self.secret, key) in self.erased_hashes


def load(conn: Connection, secret: bytes | None) -> PeopleRecords:
    """Read the store's records. Raises ConfigError when someone was erased and no link
    secret is at hand: without it an erased address on an old list could not be recognised."""
    tables = set(sa.inspect(conn).get_table_names())
    if "person_levels" not in tables:  # a store from before people were recorded
        return PeopleRecords(secret=secret)
    hashes = frozenset(
        conn.execute(
            sa.select(suppressions.c.email_key).where(
                suppressions.c.email_key.startswith(ERASED_PREFIX)
            )
        ).scalars()
    )
    if hashes and secret is None:
        raise ConfigError(
            f"{len(hashes)} erased {'person is' if len(hashes) == 1 else 'people are'} "
            "remembered only by a hash under the link secret, and EQUIP_LINK_SECRET is not set",
            hint="Set EQUIP_LINK_SECRET (the secret this store's mail was signed with).",
        )
    return PeopleRecords(levels=recorded_levels(conn), erased_hashes=hashes, secret=secret)
