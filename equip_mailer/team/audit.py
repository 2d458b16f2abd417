"""The team pages' audit log: who changed what and when, written in the same transaction
as the change itself (so a change is never without its entry, nor an entry without its
change) and shown on the pages.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from equip_mailer.store import team_audit, utcnow


@dataclass(frozen=True)
class Entry:
    at: dt.datetime
    actor: str
    action: str
    campaign_id: str | None
    summary: str


def record(
    conn: Connection,
    actor: str,
    action: str,
    summary: str,
    *,
    campaign_id: str | None = None,
    target: tuple[str, str] | None = None,
    at: dt.datetime | None = None,
) -> None:
    """Log one change by ``actor`` (a team address); ``target`` is (kind, id) of the record
    changed, e.g. ("registration", "42"), so forgetting that person finds the entry."""
    conn.execute(
        team_audit.insert().values(
            at=at or utcnow(),
            actor=actor,
            action=action,
            campaign_id=campaign_id,
            target_kind=target[0] if target else None,
            target_id=target[1] if target else None,
            summary=summary,
        )
    )


def recent(
    conn: Connection,
    campaign_id: str | None = None,
    limit: int = 50,
    *,
    targets: tuple[str, list[str]] | None = None,
) -> list[Entry]:
    """The newest entries first; only one campaign's when ``campaign_id`` is given, only
    those about some records when ``targets`` is (kind, ids), e.g. a session's
    registrations."""
    query = sa.select(
        team_audit.c.at,
        team_audit.c.actor,
        team_audit.c.action,
        team_audit.c.campaign_id,
        team_audit.c.summary,
    )
    if campaign_id is not None:
        query = query.where(team_audit.c.campaign_id == campaign_id)
    if targets is not None:
        kind, ids = targets
        query = query.where(team_audit.c.target_kind == kind, team_audit.c.target_id.in_(ids))
    rows = conn.execute(query.order_by(team_audit.c.at.desc(), team_audit.c.id.desc()).limit(limit))
    return [Entry(r.at, r.actor, r.action, r.campaign_id, r.summary) for r in rows]
