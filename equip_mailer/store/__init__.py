"""The one database every stage shares: ledger, links, events, suppressions (and, as the
pipeline grows, sign-ups, people and the team's sessions).

``open_store(url)`` gives an engine with the schema up to date; the tables are SQLAlchemy Core
``Table`` objects in ``schema``; ``migrations`` holds the ordered schema steps; ``rows`` the
small shared writes. Everything is re-exported here so callers write ``store.ledger``,
``store.open_store(url)``.
"""

from .engine import make_engine, open_store
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .rows import add_suppression, ensure_campaign, insert_ignore, suppressed_keys, utcnow
from .schema import (
    BATCH_STATES,
    EVENT_TYPES,
    LEDGER_STATES,
    batches,
    campaigns,
    events,
    ledger,
    links,
    meta,
    metadata,
    suppressions,
)

__all__ = [
    "BATCH_STATES",
    "EVENT_TYPES",
    "LEDGER_STATES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "add_suppression",
    "batches",
    "campaigns",
    "ensure_campaign",
    "events",
    "insert_ignore",
    "ledger",
    "links",
    "make_engine",
    "meta",
    "metadata",
    "migrate",
    "open_store",
    "suppressed_keys",
    "suppressions",
    "utcnow",
]
