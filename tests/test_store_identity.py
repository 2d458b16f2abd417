"""The store remembers which link secret its mail was signed with, and refuses another."""

from __future__ import annotations

import pytest
from support.link_secrets import LINK_SECRET, OTHER_LINK_SECRET

from equip_mailer import link_secret, store
from equip_mailer.errors import ConfigError
from equip_mailer.store import identity


def test_the_first_send_records_the_fingerprint_and_a_later_other_secret_is_refused(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        assert identity.recorded(conn) is None
        identity.check(conn, OTHER_LINK_SECRET.encode(), "anywhere")  # nothing recorded yet
        record = identity.remember(conn, LINK_SECRET.encode(), "EQUIP_LINK_SECRET")
    assert record.fingerprint == link_secret.fingerprint(LINK_SECRET.encode())
    assert record.origin.startswith("EQUIP_LINK_SECRET, user ")
    with engine.begin() as conn:
        identity.remember(conn, LINK_SECRET.encode(), "elsewhere")  # the same: fine, unchanged
        assert identity.recorded(conn) == record
        with pytest.raises(ConfigError) as caught:
            identity.check(conn, OTHER_LINK_SECRET.encode(), "/home/sam/.config/x/link-secret")
    message = str(caught.value)
    assert "is not the one this store's mail was signed with" in message
    assert link_secret.short(record.fingerprint) in message and "first used" in message
    assert LINK_SECRET not in message and OTHER_LINK_SECRET not in message
    assert "set EQUIP_LINK_SECRET" in caught.value.hint
    engine.dispose()


def test_a_store_that_is_not_migrated_yet_has_no_record(sqlite_url):
    engine = store.make_engine(sqlite_url)
    with engine.connect() as conn:
        assert identity.recorded(conn) is None
    engine.dispose()
