"""Fixtures of the send tests: a store with the demo campaign's row, and the demo spec."""

from __future__ import annotations

import pytest
from support.ledger_audience import CID

from equip_mailer.compose.spec import load_campaign
from equip_mailer.store import ensure_campaign, open_store


@pytest.fixture
def engine(db_url):
    """SQLite and PostgreSQL (see db_url), with the campaign registered."""
    eng = open_store(db_url)
    with eng.begin() as conn:
        ensure_campaign(conn, CID, "subject")
    yield eng
    eng.dispose()


@pytest.fixture
def demo(demo_path):
    return load_campaign(demo_path, allow_past=True)
