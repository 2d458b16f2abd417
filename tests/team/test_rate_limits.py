"""Rate limits counted in the store: they hold across engines (processes) and reset with
the window."""

from __future__ import annotations

import datetime as dt

from equip_mailer import store
from equip_mailer.team import rate_limits

NOW = dt.datetime(2026, 3, 2, 9, 0)
LIMIT = rate_limits.Limit("test", 3, dt.timedelta(minutes=15))


def test_the_fourth_request_in_a_window_is_refused_whichever_process_counts_it(db_url):
    first, second = store.open_store(db_url), store.open_store(db_url)  # two "workers"
    answers = []
    for i in range(5):
        engine = (first, second)[i % 2]
        with engine.begin() as conn:
            answers.append(rate_limits.allow(conn, LIMIT, "who", NOW + dt.timedelta(seconds=i)))
    assert answers == [True, True, True, False, False]
    with first.begin() as conn:
        assert rate_limits.allow(conn, LIMIT, "someone else", NOW)
        assert rate_limits.allow(conn, LIMIT, "who", NOW + dt.timedelta(minutes=15))  # new window


def test_hashes_are_keyed_and_do_not_hold_the_value():
    a = rate_limits.keyed_hash(b"key-1", "address", "ann@nhs.example")
    assert a == rate_limits.keyed_hash(b"key-1", "address", "ann@nhs.example")
    assert a != rate_limits.keyed_hash(b"key-2", "address", "ann@nhs.example")
    assert a != rate_limits.keyed_hash(b"key-1", "ip", "ann@nhs.example")
    assert "ann" not in a
