"""Fixtures for the tracking service's tests: a real store, a seeded campaign, and the real
app under uvicorn on a free loopback port with an httpx client that never follows redirects."""

from __future__ import annotations

import httpx
import pytest
from support.service import running_app
from support.tracking_data import CHROME, seed_campaign

from equip_mailer import store
from equip_mailer.track.app import create_app


@pytest.fixture
def engine(settings):
    engine = store.open_store(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def campaign(engine, settings):
    return seed_campaign(engine, settings.require_link_secret())


@pytest.fixture
def service(settings, engine):
    """(base_url, client) of the real app; the client never follows redirects."""
    with running_app(create_app(settings, engine)) as base_url:
        with httpx.Client(
            base_url=base_url, follow_redirects=False, timeout=10, headers={"User-Agent": CHROME}
        ) as client:
            yield base_url, client
