"""The one database every part shares: ledger, links, events, suppressions.

SQLite file by default (WAL, so the tracking service can read while a send writes);
PostgreSQL through the same code when ``EQUIP_DATABASE_URL`` names it.

Schema changes are ordered steps in ``MIGRATIONS``; ``open_store`` applies the missing ones
and records the version in ``meta``. Each step must be written so it can be applied to a
database at the previous version (add columns/tables; never rewrite an applied step).
Times are naive UTC everywhere (SQLite keeps no zone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .errors import StoreError

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
LEDGER_STATES = ("pending", "in_flight", "sent", "failed", "uncertain", "suppressed", "cancelled")
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
    sa.UniqueConstraint("campaign_id", "email_key", name="uq_ledger_campaign_email"),
    sa.Index("ix_ledger_campaign_state", "campaign_id", "state"),
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
    # ix_events_recipient_at (campaign_id, ledger_id, event, at) comes from migration 3.
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


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _v1(conn: Connection) -> None:
    metadata.create_all(
        conn, tables=[meta, campaigns, links, batches, ledger, events, suppressions]
    )


def _v2(conn: Connection) -> None:
    # One recipient's events of one type (the machine-click pass runs this per click).
    # Without it SQLite answers "campaign = ? AND ledger_id = ? AND event = ?" from
    # ix_events_campaign_event, scanning every event of that type in the campaign.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_events_recipient "
            "ON events (campaign_id, ledger_id, event)"
        )
    )
    # The send loop's next batch: one segment's rows in one state, oldest first.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_ledger_segment_state "
            "ON ledger (campaign_id, segment, state, id)"
        )
    )


def _v3(conn: Connection) -> None:
    # The machine-click pass reads one recipient's clicks of the last few seconds: with the
    # time in the index that is a range scan, not a filter over all their clicks.
    conn.execute(
        sa.text(
            "CREATE INDEX IF NOT EXISTS ix_events_recipient_at "
            "ON events (campaign_id, ledger_id, event, at)"
        )
    )
    conn.execute(sa.text("DROP INDEX IF EXISTS ix_events_recipient"))  # a prefix of the new one


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial schema", _v1),
    (2, "indexes: events by recipient and type, ledger by segment and state", _v2),
    (3, "index: events by recipient, type and time", _v3),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def make_engine(url: str) -> Engine:
    """An engine tuned per backend: SQLite gets WAL and a busy timeout so the tracking
    service and a send can share the file."""
    try:
        sa_url = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise StoreError(
            f"EQUIP_DATABASE_URL is not a database URL: {url!r}",
            hint="Use e.g. sqlite:///equip-mailer.db or postgresql+psycopg://host/db",
        ) from None
    if sa_url.drivername == "postgresql":
        sa_url = sa_url.set(drivername="postgresql+psycopg")
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(sa_url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # Waiting (busy_timeout) rather than failing when the service and a send write at
            # once; WAL so readers never block. synchronous=FULL because with NORMAL a commit
            # can roll back after a power loss, and a claim or a "sent" lost that way would
            # mean a second copy.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    else:
        engine = sa.create_engine(sa_url, pool_pre_ping=True)
    return engine


def migrate(engine: Engine) -> int:
    """Bring the schema to ``SCHEMA_VERSION``; returns the version found before."""
    with engine.begin() as conn:
        if not sa.inspect(conn).has_table("meta"):
            found = 0
        else:
            row = conn.execute(
                sa.select(meta.c.value).where(meta.c.key == "schema_version")
            ).first()
            found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"the database is at schema version {found}, newer than this "
                f"equip-mailer ({SCHEMA_VERSION})",
                hint="Upgrade equip-mailer.",
            )
        for version, _name, step in MIGRATIONS:
            if version > found:
                step(conn)
                if found == 0 and version == 1:
                    conn.execute(meta.insert().values(key="schema_version", value=str(version)))
                else:
                    conn.execute(
                        meta.update()
                        .where(meta.c.key == "schema_version")
                        .values(value=str(version))
                    )
    return found


def open_store(url: str) -> Engine:
    """Engine with the schema up to date. Connection failures become one plain sentence."""
    engine = make_engine(url)
    try:
        migrate(engine)
    except sa.exc.DBAPIError as exc:  # unreachable server, not a database file, ...
        raise StoreError(
            f"cannot open the database {engine.url.render_as_string(hide_password=True)} "
            f"({exc.orig})"
        ) from None
    return engine


def insert_ignore(
    conn: Connection, table: sa.Table, rows: Iterable[dict], index_elements: list[str]
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL; returns rows inserted."""
    rows = list(rows)
    if not rows:
        return 0
    name = conn.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:  # pragma: no cover - only the two supported backends
        raise StoreError(f"unsupported database backend {name}")
    if name == "sqlite":
        # executemany of one cached statement: compiling a 1,000-row multi-VALUES insert
        # costs more than running it. sqlite3 sums rowcount over executemany.
        return conn.execute(
            insert(table).on_conflict_do_nothing(index_elements=index_elements), rows
        ).rowcount
    # One multi-VALUES statement per chunk, counting RETURNING rows: rowcount is -1 on psycopg.
    chunk = max(1, 30000 // max(1, len(rows[0])))
    inserted = 0
    for start in range(0, len(rows), chunk):
        stmt = (
            insert(table)
            .values(rows[start : start + chunk])
            .on_conflict_do_nothing(index_elements=index_elements)
            .returning(table.c[index_elements[0]])
        )
        inserted += len(conn.execute(stmt).all())
    return inserted


def suppressed_keys(conn: Connection) -> set[str]:
    return {r[0] for r in conn.execute(sa.select(suppressions.c.email_key))}


def add_suppression(
    conn: Connection,
    email: str,
    reason: str,
    source: str | None = None,
    campaign_id: str | None = None,
) -> bool:
    """Idempotent: returns True if the address was not suppressed before."""
    return (
        insert_ignore(
            conn,
            suppressions,
            [
                {
                    "email_key": email.strip().lower(),
                    "email": email.strip(),
                    "reason": reason,
                    "source": source,
                    "campaign_id": campaign_id,
                    "created_at": utcnow(),
                }
            ],
            ["email_key"],
        )
        > 0
    )


def ensure_campaign(
    conn: Connection,
    campaign_id: str,
    subject: str,
    spec_path: str | None = None,
    spec_hash: str | None = None,
) -> None:
    """Create the campaign row, or refresh its subject/spec on a later run."""
    now = utcnow()
    found = conn.execute(sa.select(campaigns.c.id).where(campaigns.c.id == campaign_id)).first()
    if found:
        conn.execute(
            campaigns.update()
            .where(campaigns.c.id == campaign_id)
            .values(subject=subject, spec_path=spec_path, spec_hash=spec_hash, updated_at=now)
        )
    else:
        conn.execute(
            campaigns.insert().values(
                id=campaign_id,
                subject=subject,
                spec_path=spec_path,
                spec_hash=spec_hash,
                created_at=now,
                updated_at=now,
            )
        )
