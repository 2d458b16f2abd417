"""The tables every stage shares: campaigns, the link registry, the ledger, batches, events
and suppressions (SQLAlchemy Core, no ORM: the send loop and the click path run plain SQL).

A table defined here is created by a step in ``migrations.py``; defining it alone changes no
database.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),  # the spec's campaign id
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("spec_path", sa.Text),
    sa.Column("spec_hash", sa.String(64)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("sg_batch_id", sa.String(100)),  # SendGrid batch for scheduled sends
    sa.Column("send_at", sa.DateTime),
    sa.Column("cancelled_at", sa.DateTime),
    sa.Column("lock_owner", sa.String(200)),  # "host:pid" of a running send
    sa.Column("lock_at", sa.DateTime),
)

# The link registry: tokens name a row here, and the redirect target always comes from it.
links = sa.Table(
    "links",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(100), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),  # e.g. "basics" or "basics@2019-06-27"
    sa.Column("url", sa.Text, nullable=False),  # target, UTM already applied
    sa.Column("course_id", sa.String(100)),
    sa.Column("session", sa.String(100)),  # session label, e.g. "2019-06-27"
    sa.Column("label", sa.Text),
    sa.UniqueConstraint("campaign_id", "key", name="uq_links_campaign_key"),
)

# The ledger: one row per (campaign, recipient). Its id is the opaque recipient id used in
# custom_args and tokens, so no address ever leaves in a URL or a provider's metadata.
# "dropped": SendGrid accepted the request but its event says it will not deliver to this one
LEDGER_STATES = (
    "pending",
    "in_flight",
    "sent",
    "failed",
    "uncertain",
    "dropped",
    "suppressed",
    "cancelled",
)
ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(100), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False),  # lower-cased, for uniqueness
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("practice", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("qi_level", sa.String(20)),
    sa.Column("segment", sa.String(100), nullable=False),
    sa.Column("state", sa.String(20), nullable=False, default="pending"),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("batches.id")),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    # what settled an uncertain row (send/ledger_evidence.py), e.g. "webhook:delivered"
    sa.Column("evidence", sa.String(60)),
    sa.Column("evidence_at", sa.DateTime),
    sa.UniqueConstraint("campaign_id", "email_key", name="uq_ledger_campaign_email"),
    # One index for both "a campaign's rows in a state" and the send loop's next batch (one
    # segment's rows in one state, oldest first): every state change moves an entry in each
    # index holding the state, and a send changes each row's state twice (v9).
    sa.Index("ix_ledger_state_segment", "campaign_id", "state", "segment", "id"),
    sa.Index("ix_ledger_batch", "batch_id"),
)

# One row per provider request (<= 1000 recipients of one segment).
BATCH_STATES = ("in_flight", "sent", "failed", "uncertain", "cancelled")
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.String(100), sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("segment", sa.String(100), nullable=False),
    sa.Column("send_id", sa.String(64), nullable=False, unique=True),  # goes out in custom_args
    sa.Column("backend", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("http_status", sa.Integer),
    sa.Column("message_id", sa.String(200)),  # X-Message-Id from SendGrid
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Index("ix_batches_campaign_state", "campaign_id", "state"),
)

# Every click and every SendGrid event, normalised into one table; the raw JSON is kept.
EVENT_TYPES = (
    "processed",
    "delivered",
    "deferred",
    "bounce",
    "dropped",
    "spamreport",
    "unsubscribe",
    "group_unsubscribe",
    "group_resubscribe",
    "open",
    "click",
    "unknown",
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
    sa.Column("event", sa.String(30), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("source", sa.String(20), nullable=False),  # "tracker" (our /c/) or "webhook"
    sa.Column("campaign_id", sa.String(100)),
    sa.Column("ledger_id", sa.Integer),  # joins to the recipient
    sa.Column("send_id", sa.String(64)),  # joins to the batch
    sa.Column("segment", sa.String(100)),
    sa.Column("link_id", sa.Integer),
    sa.Column("url", sa.Text),
    sa.Column("user_agent", sa.Text),
    sa.Column("ip_hash", sa.String(64)),  # truncated hash, never the IP
    sa.Column("method", sa.String(10)),
    sa.Column("machine", sa.Boolean, nullable=False, default=False),
    sa.Column("machine_reason", sa.String(100)),
    sa.Column("reason", sa.Text),  # bounce/drop reason, status
    sa.Column("sg_message_id", sa.String(200)),
    sa.Column("sg_event_id", sa.String(200)),
    sa.Column("raw", sa.Text),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Index("ix_events_campaign_event", "campaign_id", "event"),
    sa.Index("ix_events_ledger", "ledger_id"),
    # ix_events_recipient_at (campaign_id, ledger_id, event, at) comes from migration 3,
    # ix_events_send (send_id, ledger_id) from migration 8.
)

# Addresses that no send may ever reach again.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column(
        "reason", sa.String(30), nullable=False
    ),  # unsubscribe, bounce, dropped, spamreport, manual
    sa.Column("source", sa.String(100)),
    sa.Column("campaign_id", sa.String(100)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
