import sqlalchemy as sa

from equip_mailer import store


def test_schema_is_created_once_and_versioned(db_url):
    engine = store.open_store(db_url)
    assert store.migrate(engine) == store.SCHEMA_VERSION  # second run finds it current
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert {"campaigns", "links", "ledger", "batches", "events", "suppressions"} <= tables


def test_suppression_is_idempotent_and_case_insensitive(db_url):
    engine = store.open_store(db_url)
    with engine.begin() as conn:
        assert store.add_suppression(conn, "Ann.Example@Example.org", "unsubscribe") is True
        assert store.add_suppression(conn, "ann.example@example.org", "bounce") is False
        assert store.suppressed_keys(conn) == {"ann.example@example.org"}


def test_bad_url_is_a_plain_error():
    import pytest

    from equip_mailer.errors import StoreError

    with pytest.raises(StoreError, match="not a database URL"):
        store.open_store("nonsense")


def test_a_file_that_is_not_a_database_is_a_plain_error(tmp_path):
    import pytest

    from equip_mailer.errors import StoreError

    junk = tmp_path / "equip.db"
    junk.write_bytes(b"this is a spreadsheet, not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        store.open_store(f"sqlite:///{junk}")


def test_a_database_made_by_an_older_version_is_migrated_in_place(db_url):
    """A store left at schema 1 (the first release) keeps its rows and gains later steps."""
    engine = store.make_engine(db_url)
    with engine.begin() as conn:
        store.MIGRATIONS[0][2](conn)
        conn.execute(store.meta.insert().values(key="schema_version", value="1"))
        store.add_suppression(conn, "kept@example.org", "unsubscribe")
    assert store.migrate(engine) == 1
    with engine.connect() as conn:
        version = conn.execute(sa.select(store.meta.c.value)).scalar()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("events")}
        assert store.suppressed_keys(conn) == {"kept@example.org"}
    assert version == str(store.SCHEMA_VERSION)
    assert "ix_events_recipient_at" in indexes and "ix_events_recipient" not in indexes


def test_sqlite_commits_survive_a_power_loss(sqlite_url):
    # WAL with synchronous=NORMAL may lose the last commits on power loss: a lost claim or
    # "sent" mark would mean a second copy. FULL syncs the WAL at every commit.
    engine = store.open_store(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def _store_at(db_url: str, version: int, *changes: str):
    """A store as an older release left it: today's steps up to ``version`` (which create
    tables as today's schema has them), then ``changes`` undoing what later steps did."""
    engine = store.make_engine(db_url)
    with engine.begin() as conn:
        for number, _name, step in store.MIGRATIONS:
            if number <= version:
                step(conn)
        for sql in changes:
            conn.execute(sa.text(sql))
        conn.execute(store.meta.insert().values(key="schema_version", value=str(version)))
    return engine


def test_a_store_from_before_schema_9_gets_one_ledger_index_for_state_and_segment(db_url):
    """Schema 8 kept two indexes holding the ledger's state (campaign, state) and (campaign,
    segment, state, id): each state change moved an entry in both. Migrating replaces them
    with (campaign, state, segment, id), which answers both kinds of query."""
    engine = _store_at(
        db_url,
        8,  # as schema 8 left it: the first release's index in place of today's
        "DROP INDEX ix_ledger_state_segment",
        "CREATE INDEX ix_ledger_campaign_state ON ledger (campaign_id, state)",
    )
    assert store.migrate(engine) == 8
    with engine.connect() as conn:
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("ledger")}
    assert indexes["ix_ledger_state_segment"] == ["campaign_id", "state", "segment", "id"]
    assert "ix_ledger_campaign_state" not in indexes
    assert "ix_ledger_segment_state" not in indexes


def test_a_store_from_before_schema_10_counts_registrations_from_the_indexes(db_url):
    """Schema 9 kept registrations by (course, status, queue_seq): a sign-up's counts read
    every registration of the course from the table. Migrating replaces it with (course,
    status, session, queue_seq) and (course, queue_seq), keeping the rows."""
    engine = _store_at(
        db_url,
        9,  # as schema 9 left it: the old index in place of today's two
        "DROP INDEX ix_registrations_course_status_session",
        "DROP INDEX ix_registrations_course_seq",
        "CREATE INDEX ix_registrations_course_status_seq "
        "ON registrations (signup_course_id, status, queue_seq)",
    )
    assert store.migrate(engine) == 9
    with engine.connect() as conn:
        indexes = {
            i["name"]: i["column_names"] for i in sa.inspect(conn).get_indexes("registrations")
        }
    engine.dispose()
    assert indexes["ix_registrations_course_status_session"] == [
        "signup_course_id",
        "status",
        "session_id",
        "queue_seq",
    ]
    assert indexes["ix_registrations_course_seq"] == ["signup_course_id", "queue_seq"]
    assert "ix_registrations_course_status_seq" not in indexes


def test_a_store_from_before_schema_11_keeps_no_plain_event_key_of_someone_erased(
    db_url, tmp_path, monkeypatch
):
    """Before a874476, forget left an erased person's webhook events their plain dedupe key
    (SHA-256 of the address and of fields in the same row: it confirms a guessed address),
    and the events of their single emails also their raw payload, which still named the
    notice forget had deleted. Migrating clears those payloads; purge then retires every
    such key once SendGrid can no longer repeat the event, and a repeat arriving before that
    is still recognised (and keyed by the webhook)."""
    import datetime as dt

    from support.link_secrets import LINK_SECRET

    from equip_mailer.people import forget as erasure
    from equip_mailer.people.retention import purge
    from equip_mailer.track.webhook import dedupe_key, store_events

    secret = LINK_SECRET.encode()
    engine = _store_at(db_url, 10)
    now = store.utcnow()
    with engine.begin() as conn:
        store.ensure_campaign(conn, "c", "Subject")
        ledger_id = conn.execute(
            store.ledger.insert().values(
                campaign_id="c",
                email="Ann@NHS.example",
                email_key="ann@nhs.example",
                segment="s",
                state="sent",
                attempts=1,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        notice_id = conn.execute(
            store.notices.insert().values(
                key="signup:1:0:confirmed",
                kind="signup-confirmed",
                email="Ann@NHS.example",
                email_key="ann@nhs.example",
                from_email="equip@example.org",
                subject="Your place",
                text="Dear Ann",
                state="sent",
                attempts=1,
                message_id="14c5d75ce93.dfd.64b469",
                created_at=now,
            )
        ).inserted_primary_key[0]
    base = {"email": "ann@nhs.example", "sg_message_id": "14c5d75ce93.dfd.64b469.filter1"}
    newsletter = {**base, "recipient": str(ledger_id), "campaign_id": "c"}
    single = {**base, "notice_id": str(notice_id), "kind": "signup-confirmed"}
    ten_days_ago = int(now.replace(tzinfo=dt.UTC).timestamp()) - 10 * 86400
    earlier = [  # received ten days ago: SendGrid will not post them again
        {**newsletter, "event": "delivered", "timestamp": ten_days_ago},
        {**single, "event": "delivered", "timestamp": ten_days_ago},
    ]
    recent = [  # received an hour ago: a retry may still come
        {**newsletter, "event": "open", "timestamp": ten_days_ago + 863000},
        {**single, "event": "processed", "timestamp": ten_days_ago + 863000},
    ]
    with engine.begin() as conn:
        store_events(conn, earlier, ip_key=secret, received_at=now - dt.timedelta(days=10))
        store_events(conn, recent, ip_key=secret, received_at=now - dt.timedelta(hours=1))
    plain = {dedupe_key(e) for e in earlier + recent}
    # erased as forget did before a874476: the same rows, without keying their events
    with monkeypatch.context() as old_code:
        old_code.setattr(erasure, "_rekey_events", lambda *args: 0)
        erasure.forget(engine, "ann@nhs.example", secret, outbox=tmp_path, now=now)

    def keys() -> set[str]:
        with engine.connect() as conn:
            return set(conn.execute(sa.select(store.events.c.dedupe_key)).scalars())

    assert keys() == plain  # the old store, as it was
    assert store.migrate(engine) == 10
    purge(engine, 400, now)
    assert keys() & plain == {dedupe_key(e) for e in recent}  # kept to recognise a retry
    with engine.begin() as conn:  # SendGrid retries the post within its 72 hours
        retried = store_events(conn, recent, ip_key=secret)
    purge(engine, 400, now + dt.timedelta(days=5))

    assert (retried.stored, retried.duplicates) == (0, 2)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.events.c.event, store.events.c.raw)).all()
    assert sorted(r.event for r in rows) == ["delivered", "delivered", "open", "processed"]
    assert {r.raw for r in rows} == {None}
    assert not keys() & plain
    engine.dispose()
