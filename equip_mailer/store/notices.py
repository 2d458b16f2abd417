"""The notices table: single transactional messages (confirmations, waiting-list promotions,
cancellations, double opt-in and sign-in links), one row per message, with its own
exactly-once states like the campaign ledger's.

A row is written in the same transaction as the change it announces (a registration, a
cancellation), so a committed change always has its mail and a rolled-back one never does.
Rows hold personal data (address, name, the text itself): ``forget`` deletes them by
``email_key``, and retention purges sent ones.
"""

from __future__ import annotations

import sqlalchemy as sa

from .schema import metadata

NOTICE_STATES = ("pending", "sending", "sent", "failed", "uncertain")

notices = sa.Table(
    "notices",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # Idempotency: one message per key (e.g. "signup-confirm:42"); enqueuing again is a no-op.
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("campaign_id", sa.String(100)),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),  # lower-cased, for forget
    sa.Column("name", sa.Text),
    sa.Column("from_email", sa.String(320), nullable=False),
    sa.Column("from_name", sa.Text),
    sa.Column("reply_to", sa.Text),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("html", sa.Text),
    sa.Column("attachments", sa.Text),  # JSON list: filename, content_type, data (base64)
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("not_before", sa.DateTime),  # retry backoff after a passing failure
    sa.Column("claimed_by", sa.String(200)),  # host:pid:start of the sender (lock_owner)
    sa.Column("claimed_at", sa.DateTime),
    sa.Column("backend", sa.String(20)),
    sa.Column("message_id", sa.String(200)),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.Index("ix_notices_state", "state", "id"),
    sa.Index("ix_notices_email", "email_key"),
)
