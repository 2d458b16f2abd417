"""Fixtures for the team pages: a real store and the real service under uvicorn, whose
team is ann@ and bob@nhs.example and whose notices go to an outbox in tmp_path."""

from __future__ import annotations

import pytest
from support.browser import open_browser, require_webdriver
from support.team_pages import team_service

from equip_mailer import store


@pytest.fixture
def engine(settings):
    engine = store.open_store(settings.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def team(settings, engine, tmp_path):
    with team_service(settings, engine, tmp_path / "outbox") as svc:
        yield svc


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium at 1280 px whose downloads go to ``tmp_path/downloads``."""
    require_webdriver()
    driver = open_browser(1280, 900, downloads=tmp_path / "downloads")
    yield driver
    driver.quit()
