"""One stored campaign's report, the way ``equip-mailer report CAMPAIGN_ID`` makes it: the
machine flags refreshed, the frames read, the names borrowed from the spec the send recorded.

The command and the team's pages both call ``stored_report``, so a figure on the page is
the figure in report.html by construction, not by a second implementation kept in step.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .assemble import build_report
from .load import load_frames
from .model import Names, Report, names_from_spec


def stored_report(
    engine: Engine,
    campaign_id: str,
    human_only: bool = True,
    writing: AbstractContextManager[Any] | None = None,
    since_event: int | None = None,
) -> Report:
    """The report of a campaign in the store (ReportError if it has no row). ``writing`` is
    the service's write queue, held only while the machine flags are refreshed (the one
    write), never while the report is counted; ``since_event``: see refresh_machine_flags."""
    with writing if writing is not None else contextlib.nullcontext():
        refresh_machine_flags(engine, campaign_id, since_event)
    frames = load_frames(engine, campaign_id)
    return build_report(frames, names_from_recorded_spec(engine, campaign_id), human_only)


def recorded_spec_path(engine: Engine, campaign_id: str) -> str | None:
    """The spec file the campaign's send recorded (relative to where it ran), if any."""
    from equip_mailer.store.schema import campaigns

    with engine.connect() as conn:
        path: str | None = conn.execute(
            sa.select(campaigns.c.spec_path).where(campaigns.c.id == campaign_id)
        ).scalar()
    return path


def names_from_recorded_spec(engine: Engine, campaign_id: str) -> Names | None:
    """Display names from the spec file the send recorded, when it is still there and still
    describes this campaign; ids will do otherwise (names are a nicety)."""
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.errors import SpecError

    spec_path = recorded_spec_path(engine, campaign_id)
    if not spec_path or not Path(spec_path).is_file():
        return None
    try:
        spec = load_campaign(spec_path, allow_past=True)
    except SpecError:
        return None
    return names_from_spec(spec) if spec.id == campaign_id else None


def refresh_machine_flags(engine: Engine, campaign_id: str, since_event: int | None = None) -> None:
    """A delivered event can arrive after the scanner click it explains; one full pass
    before counting makes the human/machine split as good as the store allows.

    ``since_event``: a full pass was made when the store's newest event id was this, so
    only recipients with a newer event are passed again (a click's flag depends only on its
    recipient's own events, and flags are never taken back: the same result, for the cost
    of the new events instead of every click of the campaign)."""
    from equip_mailer.store.schema import campaigns, events
    from equip_mailer.track.machines import reclassify, reclassify_campaign

    with engine.begin() as conn:
        if not conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first():
            return
        if since_event is None:
            reclassify_campaign(conn, campaign_id)
            return
        touched = conn.execute(
            sa.select(events.c.ledger_id)
            .distinct()
            .where(
                events.c.id > since_event,
                events.c.campaign_id == campaign_id,
                events.c.ledger_id.is_not(None),
            )
        ).scalars()
        reclassify(conn, ((campaign_id, lid) for lid in touched))
