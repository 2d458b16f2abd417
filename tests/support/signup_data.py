"""A campaign whose courses are signed up for here, in a real store, for sign-up tests.

``hosted_spec`` is the demo spec with EQUIP Basics (choose one of two afternoons) and EQUIP
in Action (attend all three days) taken here with the given places; ``NOW`` is a moment
when both are open (the demo's sessions are in 2019).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from equip_mailer import store
from equip_mailer.compose.campaign import Campaign
from equip_mailer.compose.spec import load_campaign
from support.spec_files import edited

NOW = dt.datetime(2019, 5, 1, 9, 0)  # naive UTC, like the store

_BASICS = (
    '{date: 2019-06-27, start: "13:00", end: "17:00", venue: "Example Community Centre, London E1"',
    '{date: 2019-09-10, start: "13:00", end: "17:00", venue: "Example Community Centre, London E1"',
)
_ACTION_VENUE = 'venue: "Example Training Rooms, London E1"'


def hosted_spec(
    tmp_path: Path,
    demo_path: Path,
    *,
    basics_places: tuple[int | None, int | None] = (20, 20),
    action_places: int | None = 12,
    extra: tuple[tuple[str, str], ...] = (),
) -> Path:
    """The demo (EQUIP Basics and EQUIP in Action taken here) with these places."""
    replacements: list[tuple[str, str]] = []
    for session, places in zip(_BASICS, basics_places, strict=True):
        replacements.append(
            (f"{session}, places: 30}}", session + (f", places: {places}}}" if places else "}"))
        )
    action = f", places: {action_places}}}" if action_places else "}"
    for day in ("2019-06-13", "2019-07-09", "2019-09-17"):
        session = f'{{date: {day}, start: "9:00", end: "17:00", {_ACTION_VENUE}'
        replacements.append((session + ", places: 16}", session + action))
    return edited(tmp_path, demo_path, *replacements, *extra)


def hosted_campaign(tmp_path: Path, demo_path: Path, **options) -> Campaign:
    return load_campaign(hosted_spec(tmp_path, demo_path, **options), allow_past=True)


def seed_readers(engine, campaign: Campaign, n: int, segment: str = "getting-started") -> list[int]:
    """``n`` readers of the campaign in its ledger (as a send leaves them); their ledger ids."""
    now = store.utcnow()
    ids = []
    with engine.begin() as conn:
        store.ensure_campaign(conn, campaign.id, campaign.subject)
        for i in range(n):
            ids.append(
                conn.execute(
                    store.ledger.insert().values(
                        campaign_id=campaign.id,
                        email=f"reader{i}@nhs.example",
                        email_key=f"reader{i}@nhs.example",
                        first_name="Reader",
                        last_name=f"Number{i}",
                        practice="Example Health Centre",
                        role="Practice nurse",
                        qi_level="none",
                        segment=segment,
                        state="sent",
                        attempts=1,
                        created_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
            )
    return ids


def signup_app(settings, engine, outbox: Path, now: dt.datetime = NOW):
    """The tracking service with its sign-up pages, judging deadlines at ``now``."""
    from dataclasses import replace

    from equip_mailer.track.app import create_app

    app = create_app(settings, engine, notices_outbox=outbox)
    app.state.signup = replace(app.state.signup, now=lambda: now)
    return app


def form_fields(page: str) -> dict[str, str]:
    """The hidden and prefilled fields of a page's form, as a browser would send them."""
    import re

    fields = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="radio"' not in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    return fields
