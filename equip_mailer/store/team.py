"""The team pages' tables: sign-in links, sessions, rate-limit counters and the audit log.

They live in the store, not in memory, so a sign-out, a used link or a rate limit holds in
every process serving the pages. Secrets are kept only as SHA-256 hashes: a copy of the
database opens no session and replays no link. Team members' addresses (``email_key``,
``actor``) are personal data; the audit log's ``summary`` may name a reader, found by
``target_kind``/``target_id`` when that person is forgotten.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import metadata

# A single-use sign-in link: the token is mailed, only its hash is kept.
team_signin_links = sa.Table(
    "team_signin_links",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("email_key", sa.String(320), nullable=False),  # the address it was mailed to
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("used_at", sa.DateTime),
    sa.Index("ix_team_signin_links_expires", "expires_at"),
)

# A signed-in browser: the cookie holds a random id, the row its hash; sign-out revokes it.
team_sessions = sa.Table(
    "team_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Index("ix_team_sessions_expires", "expires_at"),
)

# Fixed-window counters: one row per (what is limited, whose hash, which window).
team_rate_limits = sa.Table(
    "team_rate_limits",
    metadata,
    sa.Column("bucket", sa.String(200), primary_key=True),  # "ip:<hash>:<window number>"
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Index("ix_team_rate_limits_expires", "expires_at"),
)

# Who changed what, when: every change made through the team pages, shown on them.
team_audit = sa.Table(
    "team_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),  # the team member's address
    sa.Column("action", sa.String(50), nullable=False),  # e.g. "signed in", "marked attended"
    sa.Column("campaign_id", sa.String(100)),
    sa.Column("target_kind", sa.String(50)),  # e.g. "registration"
    sa.Column("target_id", sa.String(100)),
    sa.Column("summary", sa.Text, nullable=False),
    sa.Index("ix_team_audit_campaign_at", "campaign_id", "at"),
    sa.Index("ix_team_audit_at", "at"),
)

TEAM_TABLES = (team_signin_links, team_sessions, team_rate_limits, team_audit)
