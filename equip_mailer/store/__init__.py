"""The one database every stage shares: ledger, links, events, suppressions, sign-ups, the
team pages' sessions and audit log, people's attendance and QI levels.

``open_store(url)`` gives an engine with the schema up to date; the tables are SQLAlchemy Core
``Table`` objects in ``schema``; ``migrations`` holds the ordered schema steps; ``rows`` the
small shared writes; ``signups`` the sign-up tables; ``team`` the team pages';
``transactions`` the write transactions that assign places; ``people`` attendance and QI
level history; ``identity`` the link secret's
fingerprint and a campaign's links digest. Everything is re-exported here so callers write
``store.ledger``, ``store.open_store(url)``, ``store.identity.check(...)``.
"""

from . import identity
from .engine import make_engine, open_store
from .migrations import MIGRATIONS, SCHEMA_VERSION, migrate
from .notices import NOTICE_STATES, notices
from .people import LEVEL_SOURCES, PEOPLE_TABLES, attendance, attendance_log, person_levels
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
from .signups import (
    REGISTRATION_SOURCES,
    REGISTRATION_STATES,
    SIGNUP_TABLES,
    registrations,
    signup_courses,
    signup_invites,
    signup_sessions,
)
from .team import team_audit, team_rate_limits, team_sessions, team_signin_links
from .transactions import immediate, lock_row

__all__ = [
    "LEVEL_SOURCES",
    "PEOPLE_TABLES",
    "attendance",
    "attendance_log",
    "person_levels",
    "BATCH_STATES",
    "REGISTRATION_SOURCES",
    "REGISTRATION_STATES",
    "SIGNUP_TABLES",
    "immediate",
    "lock_row",
    "registrations",
    "signup_courses",
    "signup_invites",
    "signup_sessions",
    "EVENT_TYPES",
    "LEDGER_STATES",
    "MIGRATIONS",
    "NOTICE_STATES",
    "SCHEMA_VERSION",
    "add_suppression",
    "batches",
    "campaigns",
    "ensure_campaign",
    "events",
    "identity",
    "insert_ignore",
    "ledger",
    "links",
    "make_engine",
    "meta",
    "metadata",
    "migrate",
    "notices",
    "open_store",
    "suppressed_keys",
    "suppressions",
    "team_audit",
    "team_rate_limits",
    "team_sessions",
    "team_signin_links",
    "utcnow",
]
