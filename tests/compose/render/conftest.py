"""The demo campaign and its rendered segments, shared by the render tests (read-only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from equip_mailer.compose.render.personalisation import RenderedSegment
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def demo():
    return load_campaign(ROOT / "campaigns" / "2019-04-equip-training.yaml", allow_past=True)


@pytest.fixture(scope="module")
def rendered(demo) -> dict[str, RenderedSegment]:
    return render_campaign(demo)
