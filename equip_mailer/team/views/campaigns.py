"""The campaigns page: every campaign in the store with its ledger (how many sent, failed,
uncertain, and which batches need attention) and what to do about it, as the exact command
``equip-mailer status`` would suggest.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from equip_mailer.send.ledger import Ledger, ProblemBatch
from equip_mailer.send.ledger_advice import Advice, next_steps
from equip_mailer.signup.catalogue import first_session_day
from equip_mailer.store import LEDGER_STATES, batches, campaigns
from equip_mailer.track.state import Service

from ..guard import Member, members_only
from ..render import page
from ..report_cache import ReportCache, cache_of


@dataclass(frozen=True)
class CampaignState:
    id: str
    subject: str
    created_at: dt.datetime
    first_sent: dt.datetime | None  # its first batch; None: nothing sent yet (a dry run)
    send_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    counts: dict[str, int]  # ledger state -> recipients, in LEDGER_STATES order
    problems: list[ProblemBatch]  # failed/uncertain batches with recipients still in them
    advice: list[Advice]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def campaign_state(
    engine: Engine, row: sa.Row, counts: dict[str, int] | None = None
) -> CampaignState:
    """``counts``: the ledger's recipients per state, when already read (the report cache
    reads them at most once a second)."""
    ledger = Ledger(engine, row.id)
    found = counts if counts is not None else ledger.counts()
    counts = {state: found[state] for state in LEDGER_STATES if found.get(state)}
    with engine.connect() as conn:  # the campaign's first batch and first session, at once
        first_sent = first_batch(conn, row.id)
        first_day = first_session_day(conn, row.id)
    # sessions before today: send refuses the spec without --allow-past, as status prints it
    past = first_day is not None and first_day < dt.date.today()
    return CampaignState(
        id=row.id,
        subject=row.subject,
        created_at=row.created_at,
        first_sent=first_sent,
        send_at=row.send_at,
        cancelled_at=row.cancelled_at,
        counts=counts,
        problems=[b for b in ledger.problem_batches() if b.still],
        advice=next_steps(row.spec_path or f"campaigns/{row.id}.yaml", counts, allow_past=past),
    )


def first_batch(conn: Connection, campaign_id: str) -> dt.datetime | None:
    """When the campaign's first batch went: the row itself is made by a dry run or a
    sign-up import too, before anything is sent."""
    return conn.execute(
        sa.select(sa.func.min(batches.c.created_at)).where(batches.c.campaign_id == campaign_id)
    ).scalar()


def campaign_row(conn: Connection, campaign_id: str) -> sa.Row | None:
    return conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()


def all_campaigns(engine: Engine, cache: ReportCache | None = None) -> list[CampaignState]:
    """Newest first; with ``cache``, the ledger counts come from its version of the store."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(campaigns).order_by(campaigns.c.created_at.desc(), campaigns.c.id)
        ).all()
    out = []
    for row in rows:
        version = cache.version(row.id) if cache is not None else None
        counts = dict(version.ledger_states) if version is not None else None
        out.append(campaign_state(engine, row, counts))
    return out


@members_only
async def campaigns_page(request: Request, member: Member) -> Response:
    cache = cache_of(request.app.state)
    found = await run_in_threadpool(all_campaigns, Service.of(request).engine, cache)
    for c in found[:3]:  # the reports one is likely to open next start counting now
        await run_in_threadpool(cache.prefetch, c.id)
    return page(
        request,
        "campaigns.html.j2",
        {"title": "Campaigns", "member": member, "campaigns": found, "states": LEDGER_STATES},
    )


ROUTES: list[BaseRoute] = [Route("/team/", campaigns_page, methods=["GET"])]
