"""The hand-computed store (tests/support/report_fixture.py) read as the report reads it,
and the demo spec's names, for the report's module tests."""

from __future__ import annotations

import pytest
from support.report_fixture import CAMPAIGN, build_hand_computed_store

from equip_mailer.compose.spec import load_campaign
from equip_mailer.report.load import load_frames
from equip_mailer.report.model import Frames, Names, names_from_spec


@pytest.fixture
def names(demo_path) -> Names:
    return names_from_spec(load_campaign(demo_path, allow_past=True))


@pytest.fixture
def frames(sqlite_url) -> Frames:
    return load_frames(build_hand_computed_store(sqlite_url), CAMPAIGN)
