"""A campaign whose courses are signed up for here, in a real store, for sign-up tests.

``hosted_spec`` is the demo spec with EQUIP Basics (choose one of two afternoons) and EQUIP
in Action (attend all three days) taken here with the given places; ``NOW`` is a moment
when both are open (the demo's sessions are in 2019).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from support.spec_files import edited

from equip_mailer.compose.campaign import Campaign
from equip_mailer.compose.spec import load_campaign

NOW = dt.datetime(2019, 5, 1, 9, 0)  # naive UTC, like the store

_BASICS_URLS = (
    ', sign_up_url: "https://equip.example.org/courses/basics?date=2019-06-27"}',
    ', sign_up_url: "https://equip.example.org/courses/basics?date=2019-09-10"}',
)
_ACTION_URL = "    sign_up_url: https://equip.example.org/courses/equip-in-action\n"


def hosted_spec(
    tmp_path: Path,
    demo_path: Path,
    *,
    basics_places: tuple[int | None, int | None] = (20, 20),
    action_places: int | None = 12,
    extra: tuple[tuple[str, str], ...] = (),
) -> Path:
    """The demo with Basics and In Action hosted (``sign_up: equip``) and these places."""
    text = demo_path.read_text(encoding="utf-8")
    replacements: list[tuple[str, str]] = []
    if _ACTION_URL in text:  # the demo before it signed up here itself
        for url, places in zip(_BASICS_URLS, basics_places, strict=True):
            replacements.append((url, f", places: {places}}}" if places else "}"))
        replacements.append(
            (
                "    schedule: choose_one\n    attendance:",
                "    schedule: choose_one\n    sign_up: equip\n    attendance:",
            )
        )
        replacements.append((_ACTION_URL, "    sign_up: equip\n"))
        action = f", places: {action_places}}}" if action_places else "}"
        for day in ("2019-06-13", "2019-07-09", "2019-09-17"):
            replacements.append(
                (
                    f'{{date: {day}, start: "9:00", end: "17:00", venue: "Example Training Rooms, London E1"}}',
                    f'{{date: {day}, start: "9:00", end: "17:00", venue: "Example Training Rooms, London E1"{action}',
                )
            )
    return edited(tmp_path, demo_path, *replacements, *extra)


def hosted_campaign(tmp_path: Path, demo_path: Path, **options) -> Campaign:
    return load_campaign(hosted_spec(tmp_path, demo_path, **options), allow_past=True)
