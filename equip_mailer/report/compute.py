"""Click-through reports: what each quarter's newsletter drew, computed from the store.

The team reads these in a browser, pastes them into board papers and opens them in Excel,
so the figures must be the same everywhere: one set of pure functions turns four frames
read from the store (ledger, events, links, batches) into ``Table``s, and the writers in
``report_output`` only format them.

Definitions, chosen so a rate never exceeds 100 % and a re-run gives the same answer:

- **sent**: the ledger says ``sent``, or an event (delivered, open, click) proves the mail
  arrived even though the ledger is unsure (e.g. ``uncertain`` after a timeout).
- **delivered**: a SendGrid ``delivered`` event, or a click/open (which proves delivery even
  if the webhook missed the event). When the campaign has *no* delivered events at all (sent
  through the outbox, or the webhook was never set up) delivered falls back to sent, and the
  report says so in a note.
- **bounced**: a ``bounce`` or ``dropped`` event: the mail did not reach the reader.
- **clicks**: ``click`` events that join to a recipient of this campaign. If our own tracker
  recorded any clicks, SendGrid's click events are left out: with both switched on the same
  click would be counted twice, and our tracker knows the link for certain.
- **machine clicks** (mail scanners, link checkers) are flagged by the tracking code; the
  headline figures use human clicks only unless ``human_only=False`` (``--all``), and the
  machine and raw figures are always shown beside them.
- **click-through rate** = unique clickers / delivered.
- **opens** are shown only when the store has open events, and always marked unreliable
  (Apple Mail Privacy Protection opens everything; many clients block the pixel).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pandas.api.types import union_categoricals
from sqlalchemy.engine import Engine

from equip_mailer.errors import EquipError
from equip_mailer.store import batches, campaigns, events, ledger, links

# Only these events matter to a report; the rest (processed, deferred, ...) are never read.
REPORT_EVENTS = ("delivered", "bounce", "dropped", "open", "click")
HOURLY_DAYS = 7  # clicks over time: hourly for the first 7 days after the first send
NOT_GIVEN = "(not given)"
OTHER_LINKS = "Other links (about, contact, ...)"
UNKNOWN_LINK = "Link not identified"


class ReportError(EquipError, LookupError):
    """The report cannot be made (unknown campaign id)."""


# ---------------------------------------------------------------------------------------
# Data in


@dataclass(frozen=True)
class Frames:
    """What a report needs from the store for one campaign, and nothing more.

    ledger:  id, segment, practice, role, state, sent_at  (one row per recipient)
    events:  event, at, source, ledger_id, link_id (-1 when unknown), machine, machine_reason
    links:   id, key, course_id, session, label
    batches: id, segment, state, size, created_at
    """

    campaign_id: str
    subject: str | None
    ledger: pd.DataFrame
    events: pd.DataFrame
    links: pd.DataFrame
    batches: pd.DataFrame
    in_store: bool = True  # False: the campaign has no row at all (never sent)


@dataclass(frozen=True)
class Names:
    """Display names and orders from the campaign spec (optional: ids are used without it)."""

    title: str | None = None
    subject: str | None = None
    segments: dict[str, str] = field(default_factory=dict)  # id -> name, spec order
    courses: dict[str, str] = field(default_factory=dict)  # id -> name, spec order
    sessions: dict[str, list[str]] = field(
        default_factory=dict
    )  # course id -> ISO dates with their own link
    course_links: frozenset[str] = frozenset()  # course ids with one course-wide link


def names_from_spec(campaign) -> Names:
    """Names from a loaded ``spec.Campaign``; reports stay readable without one."""
    return Names(
        title=campaign.title,
        subject=campaign.subject,
        segments={s.id: s.name for s in campaign.segments},
        courses={c.id: c.name for c in campaign.courses},
        sessions={c.id: [s.key for s in c.sessions if s.sign_up_url] for c in campaign.courses},
        course_links=frozenset(
            c.id
            for c in campaign.courses
            if c.sign_up_url or any(not s.sign_up_url for s in c.sessions)
        ),
    )


def empty_frames(campaign_id: str, subject: str | None = None) -> Frames:
    """Frames for a campaign the store has never seen: every table reads 'not sent yet'."""
    return Frames(
        campaign_id=campaign_id,
        subject=subject,
        in_store=False,
        ledger=_typed_ledger(pd.DataFrame(columns=LEDGER_COLUMNS)),
        events=_typed_events(pd.DataFrame(columns=EVENT_COLUMNS)),
        links=pd.DataFrame(columns=LINK_COLUMNS),
        batches=pd.DataFrame(columns=BATCH_COLUMNS),
    )


LEDGER_COLUMNS = ["id", "segment", "practice", "role", "state", "sent_at"]
EVENT_COLUMNS = ["event", "at", "source", "ledger_id", "link_id", "machine", "machine_reason"]
LINK_COLUMNS = ["id", "key", "course_id", "session", "label"]
BATCH_COLUMNS = ["id", "segment", "state", "size", "created_at"]


def known_campaigns(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.select(campaigns.c.id).order_by(campaigns.c.id))]


def load_frames(engine: Engine, campaign_id: str) -> Frames:
    """Read one campaign from the store with a few narrow SELECTs.

    Sized for a million events in seconds: only the report's event types are read, and each
    event comes back as four integers (see ``_read_events``), so no text is parsed or copied
    per row. Raises ReportError if the campaign id is not in the store.
    """
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(campaigns.c.subject).where(campaigns.c.id == campaign_id)
        ).first()
        if row is None:
            known = known_campaigns(engine)
            raise ReportError(
                f"there is no campaign {campaign_id!r} in the database",
                hint=(
                    "Campaigns in the database: " + ", ".join(known) + "."
                    if known
                    else "The database has no campaigns yet; send one first, or give the campaign "
                    "spec (campaigns/....yaml) to get a 'not sent yet' report."
                ),
            )
        subject = row[0]
        epoch = _epoch_seconds(conn.dialect.name)
        ledger_frame = _read(
            conn,
            sa.select(
                ledger.c.id,
                ledger.c.segment,
                ledger.c.practice,
                ledger.c.role,
                ledger.c.state,
                epoch(ledger.c.sent_at).label("sent_at"),
            ).where(ledger.c.campaign_id == campaign_id),
            LEDGER_COLUMNS,
            _typed_ledger,
        )
        event_frame = _read_events(conn, campaign_id, epoch)
        link_frame = _read(
            conn,
            sa.select(
                links.c.id,
                links.c.key,
                links.c.course_id,
                links.c.session,
                links.c.label,
            )
            .where(links.c.campaign_id == campaign_id)
            .order_by(links.c.id),
            LINK_COLUMNS,
        )
        batch_frame = _read(
            conn,
            sa.select(
                batches.c.id,
                batches.c.segment,
                batches.c.state,
                batches.c.size,
                epoch(batches.c.created_at).label("created_at"),
            ).where(batches.c.campaign_id == campaign_id),
            BATCH_COLUMNS,
        )
    batch_frame["created_at"] = _from_epoch(batch_frame["created_at"])
    return Frames(
        campaign_id=campaign_id,
        subject=subject,
        ledger=ledger_frame,
        events=event_frame,
        links=link_frame,
        batches=batch_frame,
    )


def _epoch_seconds(dialect: str):
    if dialect == "sqlite":
        if sqlite3.sqlite_version_info >= (3, 38, 0):
            return lambda col: sa.func.unixepoch(col)  # faster than strftime('%s')
        return lambda col: sa.cast(sa.func.strftime("%s", col), sa.BigInteger)
    return lambda col: sa.cast(sa.extract("epoch", col), sa.BigInteger)


def _read_events(conn, campaign_id: str, epoch) -> pd.DataFrame:
    """The campaign's report events as (kind, at, ledger_id, link_id) integers, then a frame.

    Creating a Python string per row is what makes a million rows slow, so the text columns
    are packed into one integer in SQL: bits 0-2 the event (index in REPORT_EVENTS), bit 3
    "source is our tracker", bit 4 "machine", bits 5+ the machine reason (index + 1 in the
    campaign's few distinct reasons, read first). NULL ids come back as -1.
    """
    reasons = [
        r[0]
        for r in conn.execute(
            sa.select(events.c.machine_reason)
            .distinct()
            .where(
                events.c.campaign_id == campaign_id,
                events.c.event == "click",
                events.c.machine_reason.is_not(None),
            )
            .order_by(events.c.machine_reason)
        )
    ]
    event_code = sa.case(
        {name: i for i, name in enumerate(REPORT_EVENTS)}, value=events.c.event, else_=0
    )
    packed = (
        event_code
        + 8 * sa.case((events.c.source == "tracker", 1), else_=0)
        + 16 * sa.case((events.c.machine, 1), else_=0)
    )
    if reasons:
        packed = packed + 32 * sa.case(
            {r: i + 1 for i, r in enumerate(reasons)}, value=events.c.machine_reason, else_=0
        )
    stmt = sa.select(
        packed.label("kind"),
        epoch(events.c.at).label("at"),
        sa.func.coalesce(events.c.ledger_id, -1).label("ledger_id"),
        sa.func.coalesce(events.c.link_id, -1).label("link_id"),
    ).where(events.c.campaign_id == campaign_id, events.c.event.in_(REPORT_EVENTS))
    values = _read_ints(conn, stmt, 4)
    kind = values[:, 0]
    reason_codes = (kind >> 5) - 1
    return pd.DataFrame(
        {
            "event": pd.Categorical.from_codes(kind & 7, categories=list(REPORT_EVENTS)),
            "at": values[:, 1].astype("datetime64[s]"),
            "source": pd.Categorical.from_codes((kind >> 3) & 1, categories=["webhook", "tracker"]),
            "ledger_id": values[:, 2],
            "link_id": values[:, 3],
            "machine": ((kind >> 4) & 1).astype(bool),
            "machine_reason": pd.Categorical.from_codes(
                np.where(reason_codes < len(reasons), reason_codes, -1),
                categories=pd.Index(reasons, dtype="object"),
            ),
        }
    )


def _read_ints(conn, stmt, width: int, chunk: int = 200_000) -> np.ndarray:
    """An (n, width) int64 array of an all-integer SELECT, fetched chunk by chunk."""
    parts = [
        np.array(rows, dtype=np.int64).reshape(-1, width)
        for rows in _fetch_chunks(conn, stmt, chunk)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.int64)


def _fetch_chunks(conn, stmt, chunk: int):
    """Rows of ``stmt`` in lists of at most ``chunk`` tuples, so a caller can convert each
    before the next is fetched."""
    cur, args, sql = _raw(conn, stmt)
    try:
        cur.execute(sql, args)
        while rows := cur.fetchmany(chunk):
            yield rows
    finally:
        cur.close()


def _raw(conn, stmt):
    """A DB-API cursor with the compiled SQL and its parameters: SQLAlchemy Row objects cost
    more than the query itself for a million rows."""
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    args = [params[name] for name in compiled.positiontup] if compiled.positional else params
    return conn.connection.driver_connection.cursor(), args, str(compiled)


def _read(conn, stmt, columns: list[str], convert=None, chunk: int = 200_000) -> pd.DataFrame:
    """Rows of ``stmt`` as a frame, fetched in chunks through the raw DB-API cursor.

    Holding every row as a Python tuple at once would cost memory; each chunk is converted
    (``convert``: numbers and categoricals) before the next is fetched, then joined.
    """
    convert = convert or (lambda frame: frame)
    parts = [
        convert(pd.DataFrame.from_records(rows, columns=columns, coerce_float=False))
        for rows in _fetch_chunks(conn, stmt, chunk)
    ]
    if not parts:
        return convert(pd.DataFrame(columns=columns))
    if len(parts) == 1:
        return parts[0]
    out = {}
    for col in parts[0].columns:
        if isinstance(parts[0][col].dtype, pd.CategoricalDtype):
            out[col] = pd.Series(union_categoricals([p[col] for p in parts], ignore_order=True))
        else:
            out[col] = pd.concat([p[col] for p in parts], ignore_index=True)
    return pd.DataFrame(out)


def _from_epoch(values: pd.Series) -> pd.Series:
    return pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit="s")


def _cat(values: pd.Series) -> pd.Categorical:
    """Repeated text as a categorical with plain-object categories, so chunks can be joined."""
    values = values.astype("object")
    categories = pd.Index(sorted(set(values.dropna())), dtype="object")
    return pd.Categorical(values, categories=categories)


def _typed_ledger(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "id": pd.to_numeric(frame["id"]).astype("int64"),
            "segment": _cat(frame["segment"]),
            "practice": _cat(frame["practice"].astype("object").fillna(NOT_GIVEN)),
            "role": _cat(frame["role"].astype("object").fillna(NOT_GIVEN)),
            "state": _cat(frame["state"]),
            "sent_at": _from_epoch(frame["sent_at"]),
        }
    )
    return out


def _typed_events(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event": _cat(frame["event"]),
            "at": _from_epoch(frame["at"]),
            "source": _cat(frame["source"]),
            "ledger_id": pd.to_numeric(frame["ledger_id"]).astype("int64"),
            "link_id": pd.to_numeric(frame["link_id"]).astype("int64"),
            "machine": pd.to_numeric(frame["machine"]).astype("bool"),
            "machine_reason": _cat(frame["machine_reason"]),
        }
    )


# ---------------------------------------------------------------------------------------
# Tables out


@dataclass(frozen=True)
class Table:
    """One table of the report, ready to print: column names are what the reader sees.

    ``formats`` says how each column is shown (int, pct, text, datetime, date) so the HTML,
    the spreadsheet and the terminal agree; ``total`` marks a last row that sums the others.
    """

    key: str  # file stem and sheet name: "funnel", "courses"
    title: str
    frame: pd.DataFrame
    formats: dict[str, str]
    note: str | None = None
    total: bool = False


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    detail: str = ""


@dataclass(frozen=True)
class Report:
    campaign_id: str
    subject: str | None
    title: str | None
    human_only: bool
    sent: bool  # False: nothing has gone out yet
    first_send: dt.datetime | None
    last_event: dt.datetime | None
    headline: list[Figure]
    tables: dict[str, Table]
    notes: list[str]
    series: pd.DataFrame  # clicks over time, every period (for the chart)
    by_segment: pd.DataFrame  # id-indexed figures, for comparing quarters
    by_course: pd.DataFrame

    @property
    def date_range(self) -> str:
        if not self.first_send:
            return "not sent yet"
        end = max(self.last_event or self.first_send, self.first_send)
        start_text = _day(self.first_send)
        return start_text if _day(end) == start_text else f"{start_text} to {_day(end)}"


def _day(value: dt.datetime | pd.Timestamp) -> str:
    return f"{value.day} {value:%b %Y}"


@dataclass(frozen=True)
class _Prepared:
    """Per-recipient flags and the click rows the tables are cut from."""

    people: pd.DataFrame  # ledger + sent, delivered, bounced, opened, clicked, clicks, machine
    clicks: pd.DataFrame  # all click rows used (human and machine), with course/session
    delivered_fallback: bool
    opens_tracked: bool
    dropped_webhook_clicks: int
    unmatched_events: int


def prepare(frames: Frames, human_only: bool = True) -> _Prepared:
    """Per-recipient flags, computed with index lookups and bincount (no Python loops)."""
    led = frames.ledger.reset_index(drop=True)
    ev = frames.events
    n = len(led)
    pos = ledger_positions(led["id"].to_numpy(), ev["ledger_id"].to_numpy())  # -1: not ours
    matched = pos >= 0
    unmatched = int((~matched).sum())
    if unmatched:
        ev = ev.loc[matched]
        pos = pos[matched]
    is_event = _code_matcher(ev["event"])
    is_source = _code_matcher(ev["source"])

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(pos[mask], minlength=n) if n else np.zeros(0, dtype=np.int64)

    clicks_mask = is_event("click")
    dropped_webhook = 0
    tracker = is_source("tracker")
    if (clicks_mask & tracker).any():
        webhook = clicks_mask & ~tracker
        dropped_webhook = int(webhook.sum())
        clicks_mask = clicks_mask & ~webhook
    machine = ev["machine"].to_numpy(dtype=bool)
    human_clicks = count(clicks_mask & ~machine)
    machine_clicks = count(clicks_mask & machine)
    delivered_mask = is_event("delivered")
    delivered_events = count(delivered_mask)
    open_mask = is_event("open")
    opens = count(open_mask)
    bounced = count(is_event("bounce") | is_event("dropped"))
    any_click = (human_clicks + machine_clicks) > 0
    delivered_fallback = not delivered_mask.any()
    state_sent = (led["state"].astype("object") == "sent").to_numpy()
    sent = state_sent | (delivered_events > 0) | any_click | (opens > 0)
    if delivered_fallback:
        delivered = sent & (bounced == 0)
    else:
        delivered = (delivered_events > 0) | any_click | (opens > 0)
    clicked = (human_clicks > 0) if human_only else any_click
    people = led.assign(
        sent=sent,
        delivered=delivered,
        bounced=(bounced > 0) & ~delivered,
        opened=opens > 0,
        clicked=clicked,
        clicked_any=any_click,
        clicks=human_clicks if human_only else human_clicks + machine_clicks,
        human_clicks=human_clicks,
        machine_clicks=machine_clicks,
        all_clicks=human_clicks + machine_clicks,
    )
    clicks = ev.loc[clicks_mask, ["at", "ledger_id", "link_id", "machine", "machine_reason"]]
    clicks = clicks.assign(pos=pos[clicks_mask])
    return _Prepared(
        people=people,
        clicks=clicks,
        delivered_fallback=delivered_fallback,
        opens_tracked=bool(open_mask.any()),
        dropped_webhook_clicks=dropped_webhook,
        unmatched_events=unmatched,
    )


def ledger_positions(ledger_ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted id in ``ledger_ids`` (-1 if absent). Ledger ids are database row
    ids, dense enough for a lookup array, which beats hashing a million values."""
    ledger_ids = ledger_ids.astype(np.int64, copy=False)
    wanted = wanted.astype(np.int64, copy=False)
    if len(ledger_ids) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    top = int(ledger_ids.max())
    if ledger_ids.min() < 0 or top > 50_000_000:
        return pd.Index(ledger_ids).get_indexer(wanted)
    lookup = np.full(top + 2, -1, dtype=np.int64)
    lookup[ledger_ids] = np.arange(len(ledger_ids))
    inside = (wanted >= 0) & (wanted <= top)
    return np.where(inside, lookup[np.clip(wanted, 0, top + 1)], -1)


def _code_matcher(column: pd.Series):
    """``is_("click")`` -> boolean array, comparing categorical codes instead of strings."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        categories = list(column.cat.categories)
        return lambda name: (
            codes == categories.index(name)
            if name in categories
            else np.zeros(len(codes), dtype=bool)
        )
    values = column.astype("object").to_numpy()
    return lambda name: values == name


def _group_stats(
    group: np.ndarray, n_groups: int, clicks: pd.DataFrame, human_only: bool
) -> pd.DataFrame:
    """Per group (an index 0..n_groups-1 per click, -1 for none): unique clickers and clicks
    as the headline counts them, machine clicks, and all clicks. Unique people are counted by
    sorting (group, person) pairs: integers only, however many clicks there are."""
    machine = clicks["machine"].to_numpy(dtype=bool)
    person = clicks["pos"].to_numpy()
    valid = group >= 0
    chosen = valid & ~machine if human_only else valid
    span = int(person.max()) + 1 if len(person) else 1
    pairs = _distinct(group[chosen].astype(np.int64) * span + person[chosen])
    return pd.DataFrame(
        {
            "unique": np.bincount(pairs // span, minlength=n_groups)[:n_groups],
            "total": np.bincount(group[chosen], minlength=n_groups)[:n_groups],
            "machine": np.bincount(group[valid & machine], minlength=n_groups)[:n_groups],
            "total_all": np.bincount(group[valid], minlength=n_groups)[:n_groups],
        }
    ).astype("int64")


def _distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct integers. numpy 2's np.unique hashes, several times slower here than
    a plain sort for half a million ints."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def _rate(num, den):
    """A share as a float, NaN when there is nothing to divide by (shown as a dash)."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def _ordered_categories(values: pd.Series, preferred: list[str]) -> list[str]:
    seen = [v for v in pd.unique(values.astype("object")) if isinstance(v, str)]
    return list(preferred) + sorted(v for v in seen if v not in preferred)


def _clicker_label(human_only: bool) -> str:
    return "Unique human clickers" if human_only else "Unique clickers (incl. machine)"


def funnel(prep: _Prepared, names: Names, human_only: bool = True) -> tuple[Table, pd.DataFrame]:
    """Sent, delivered, bounced, clickers and click-through rate per segment, with a total.

    Segments named in the spec appear even with no recipients (a row of zeros and a dash
    for the rate), so a reader sees the segment was empty rather than missing.
    """
    people = prep.people
    order = _ordered_categories(people["segment"], list(names.segments))
    seg = pd.Categorical(people["segment"].astype("object"), categories=order)
    flags = people[
        ["sent", "delivered", "bounced", "clicked", "opened", "machine_clicks", "all_clicks"]
    ].copy()
    # Figures count sent recipients only; an unsent row still shows in the segment (as 0).
    for col in ("delivered", "bounced", "clicked", "opened"):
        flags[col] = flags[col] & flags["sent"]
    grouped = flags.assign(segment=seg).groupby("segment", observed=False).sum()
    grouped = grouped.reindex(order, fill_value=0).astype("int64")
    grouped.loc["__total__"] = grouped.sum()
    clicker = _clicker_label(human_only)
    table = pd.DataFrame(
        {
            "Segment": [names.segments.get(s, s) for s in order] + ["All segments"],
            "Sent": grouped["sent"].to_numpy(),
            "Delivered": grouped["delivered"].to_numpy(),
            "Bounced": grouped["bounced"].to_numpy(),
            clicker: grouped["clicked"].to_numpy(),
            "Click-through rate": _rate(grouped["clicked"], grouped["delivered"]),
            "Machine clicks": grouped["machine_clicks"].to_numpy(),
            "All clicks (raw)": grouped["all_clicks"].to_numpy(),
        }
    )
    formats = {
        "Segment": "text",
        "Sent": "int",
        "Delivered": "int",
        "Bounced": "int",
        clicker: "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
        "All clicks (raw)": "int",
    }
    if prep.opens_tracked:
        table["Opens (unreliable)"] = grouped["opened"].to_numpy()
        formats["Opens (unreliable)"] = "int"
    keyed = pd.DataFrame(
        {
            "name": table["Segment"].to_numpy()[:-1],
            "sent": grouped["sent"].to_numpy()[:-1],
            "delivered": grouped["delivered"].to_numpy()[:-1],
            "clickers": grouped["clicked"].to_numpy()[:-1],
        },
        index=order,
    )
    note = (
        "Click-through rate = unique clickers / delivered. Bounced counts bounces and "
        "drops reported by SendGrid. A dash means there is nothing to divide by."
    )
    return Table("funnel", "Funnel per segment", table, formats, note, total=True), keyed


def _course_order(frames: Frames, names: Names) -> list[str]:
    ids = [c for c in frames.links["course_id"].astype("object") if isinstance(c, str)]
    return list(names.courses) + sorted(set(ids) - set(names.courses))


def courses(
    prep: _Prepared, frames: Frames, names: Names, delivered: int, human_only: bool = True
) -> tuple[Table, pd.DataFrame]:
    """Unique clickers and total clicks per course, with links that are not a course after."""
    course_order = _course_order(frames, names)
    order = course_order + [OTHER_LINKS, UNKNOWN_LINK]
    rank = {c: i for i, c in enumerate(course_order)}
    link_ids = pd.to_numeric(frames.links["id"]).astype("int64").to_numpy()
    link_group = np.array(
        [
            rank.get(c, len(course_order)) if isinstance(c, str) else len(course_order)
            for c in frames.links["course_id"].astype("object")
        ]
        + [len(order) - 1],
        dtype=np.int64,
    )  # last: an unknown link
    at = pd.Index(link_ids).get_indexer(prep.clicks["link_id"].to_numpy())
    group = link_group[np.where(at >= 0, at, len(link_ids))]
    stats = _group_stats(group, len(order), prep.clicks, human_only)
    stats.index = order
    stats = stats[(stats.index.isin(course_order)) | (stats["total_all"] > 0)]
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in stats.index],
            _clicker_label(human_only): stats["unique"].to_numpy(),
            "Total clicks": stats["total"].to_numpy(),
            "Click-through rate": _rate(stats["unique"], np.full(len(stats), delivered)),
            "Machine clicks": stats["machine"].to_numpy(),
        }
    )
    formats = {
        "Course": "text",
        _clicker_label(human_only): "int",
        "Total clicks": "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
    }
    note = (
        "Unique clickers counts each person once per course, however often they clicked; "
        "total clicks counts every click. Rate = unique clickers on the course / all delivered."
    )
    keyed = pd.DataFrame(
        {
            "name": table["Course"].to_numpy(),
            "clickers": stats["unique"].to_numpy(),
            "clicks": stats["total"].to_numpy(),
            "delivered": delivered,
        },
        index=stats.index,
    )
    return Table("courses", "Clicks per course", table, formats, note), keyed


def sessions(prep: _Prepared, frames: Frames, names: Names, human_only: bool = True) -> Table:
    """Clicks per session link. A course with one sign-up link for all its sessions gets one
    row ("all sessions, one link"), since a click cannot tell which date the reader chose."""
    lk = frames.links
    rows = pd.DataFrame(
        {
            "link_id": pd.to_numeric(lk["id"]).astype("int64"),
            "course_id": lk["course_id"].astype("object"),
            "session": lk["session"].astype("object"),
        }
    )
    rows = rows[rows["course_id"].notna()]
    if rows.empty and names.courses:
        # Never sent: no links registered yet, so list what the spec will create.
        spec_rows = []
        for cid in names.courses:
            for date in names.sessions.get(cid, []):
                spec_rows.append((-1, cid, date))
            if cid in names.course_links:
                spec_rows.append((-1, cid, None))
        rows = pd.DataFrame(spec_rows, columns=["link_id", "course_id", "session"])
    course_rank = {c: i for i, c in enumerate(_course_order(frames, names))}
    rows = rows.assign(
        rank=rows["course_id"].map(course_rank), sort_session=rows["session"].fillna("9999")
    )
    rows = rows.sort_values(["rank", "sort_session"], kind="stable").reset_index(drop=True)
    # rows from the spec alone have link id -1, which no click carries
    row_ids = rows["link_id"].to_numpy(dtype=np.int64)
    real = np.flatnonzero(row_ids >= 0)
    at = pd.Index(row_ids[real]).get_indexer(prep.clicks["link_id"].to_numpy())
    group = np.where(at >= 0, real[np.clip(at, 0, None)] if len(real) else -1, -1)
    stats = _group_stats(group, len(rows), prep.clicks, human_only)
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in rows["course_id"]],
            "Session": [_session_label(s) for s in rows["session"]],
            _clicker_label(human_only): stats["unique"].to_numpy() if len(rows) else [],
            "Total clicks": stats["total"].to_numpy() if len(rows) else [],
            "Machine clicks": stats["machine"].to_numpy() if len(rows) else [],
        }
    )
    formats = {
        "Course": "text",
        "Session": "text",
        _clicker_label(human_only): "int",
        "Total clicks": "int",
        "Machine clicks": "int",
    }
    return Table(
        "sessions",
        "Clicks per session",
        table,
        formats,
        "Courses with one sign-up link for all dates show as 'All sessions (one link)'.",
    )


def _session_label(session) -> str:
    if not isinstance(session, str) or not session:
        return "All sessions (one link)"
    try:
        date = dt.date.fromisoformat(session[:10])
    except ValueError:
        return session
    return f"{date:%a} {date.day} {date:%b %Y}"


def by_group(prep: _Prepared, column: str, title: str, key: str, human_only: bool = True) -> Table:
    """Recipients, delivered, clickers, clicks and rate per practice or role, busiest first.

    The recipient count sits beside the clicks so a big practice is not mistaken for an
    engaged one."""
    people = prep.people[prep.people["sent"]]
    label = column.capitalize()
    grouped = people.groupby(column, observed=True).agg(
        sent=("sent", "sum"),
        delivered=("delivered", "sum"),
        clicked=("clicked", "sum"),
        clicks=("clicks", "sum"),
        machine=("machine_clicks", "sum"),
    )
    grouped = grouped.astype("int64")
    grouped["rate"] = _rate(grouped["clicked"], grouped["delivered"])
    grouped = grouped.reset_index()
    grouped[column] = grouped[column].astype("object")
    grouped = grouped.sort_values(
        ["clicked", "rate", column],
        ascending=[False, False, True],
        kind="stable",
        na_position="last",
    )
    table = pd.DataFrame(
        {
            label: grouped[column].to_numpy(),
            "Recipients": grouped["sent"].to_numpy(),
            "Delivered": grouped["delivered"].to_numpy(),
            _clicker_label(human_only): grouped["clicked"].to_numpy(),
            "Total clicks": grouped["clicks"].to_numpy(),
            "Click-through rate": grouped["rate"].to_numpy(),
            "Machine clicks": grouped["machine"].to_numpy(),
        }
    )
    formats = {
        label: "text",
        "Recipients": "int",
        "Delivered": "int",
        _clicker_label(human_only): "int",
        "Total clicks": "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
    }
    return Table(key, title, table, formats, "Recipients = people the newsletter was sent to.")


def first_send(frames: Frames) -> pd.Timestamp | None:
    """The first send: earliest ledger sent_at, else the earliest batch."""
    sent_at = frames.ledger["sent_at"].dropna()
    if len(sent_at):
        return sent_at.min()
    created = (
        frames.batches["created_at"].dropna()
        if len(frames.batches)
        else pd.Series([], dtype="datetime64[s]")
    )
    return created.min() if len(created) else None


def clicks_over_time(prep: _Prepared, start: pd.Timestamp | None) -> pd.DataFrame:
    """Human and machine clicks per period: hourly for the first 7 days, then daily.

    Hours run from the hour of the first send to midnight seven days after the send date;
    after that each period is a calendar day (UTC). Empty periods are kept (zeros) up to the
    last click, so a chart shows the quiet hours too.
    """
    cols = ["Period start", "Period", "Human clicks", "Machine clicks"]
    clicks = prep.clicks
    if start is None:
        return pd.DataFrame(columns=cols)
    t0 = pd.Timestamp(start).floor("h")
    if len(clicks):
        t0 = min(t0, clicks["at"].min().floor("h"))
    switch = pd.Timestamp(start).normalize() + pd.Timedelta(days=HOURLY_DAYS)
    at = clicks["at"]
    bucket = at.dt.floor("h").where(at < switch, at.dt.floor("D"))
    last = bucket.max() if len(bucket) else t0
    hours = pd.date_range(t0, min(last, switch - pd.Timedelta(hours=1)), freq="h")
    days = pd.date_range(switch, last, freq="D") if last >= switch else pd.DatetimeIndex([])
    index = hours.append(days)
    machine = clicks["machine"].to_numpy()
    human = pd.Series(1, index=bucket[~machine]).groupby(level=0).size()
    mach = pd.Series(1, index=bucket[machine]).groupby(level=0).size()
    out = pd.DataFrame(
        {
            "Period start": index,
            "Period": np.where(index < switch, "hour", "day"),
            "Human clicks": human.reindex(index, fill_value=0).to_numpy().astype("int64"),
            "Machine clicks": mach.reindex(index, fill_value=0).to_numpy().astype("int64"),
        }
    )
    return out


def clicks_per_day(prep: _Prepared, human_only: bool = True) -> Table:
    """Clicks and clickers per calendar day (UTC), days with clicks only: the over-time
    table a page can hold (the hourly detail goes to the files)."""
    clicks = prep.clicks
    day = clicks["at"].dt.floor("D")
    days = pd.DatetimeIndex(_distinct(day.to_numpy())) if len(clicks) else pd.DatetimeIndex([])
    group = days.get_indexer(day) if len(clicks) else np.zeros(0, dtype=np.int64)
    stats = _group_stats(group, len(days), clicks, human_only)
    clicker = _clicker_label(human_only)
    table = pd.DataFrame(
        {
            "Day": days,
            clicker: stats["unique"].to_numpy(),
            "Human clicks": (stats["total_all"] - stats["machine"]).to_numpy(),
            "Machine clicks": stats["machine"].to_numpy(),
        }
    )
    return Table(
        "days",
        "Clicks per day",
        table,
        {"Day": "date", clicker: "int", "Human clicks": "int", "Machine clicks": "int"},
        "Days with no clicks are left out. The hour-by-hour figures for the first "
        "week are in over_time.csv and the spreadsheet.",
    )


# machine_reason values written by equip_mailer.machines, in words a board paper can use
REASON_WORDS = {
    "after-delivery": "clicked within seconds of delivery",
    "head": "link check (HEAD request)",
    "burst": "many links within seconds",
    "ua:empty": "no browser named",
}


def reason_label(reason) -> str:
    if not isinstance(reason, str) or not reason:
        return "no reason given"
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    return reason.removeprefix("ua:")


def machine_vs_human(prep: _Prepared) -> Table:
    """Every click, split into human and each machine reason, with the people behind them."""
    clicks = prep.clicks
    reasons = clicks["machine_reason"]
    if not isinstance(reasons.dtype, pd.CategoricalDtype):
        reasons = reasons.astype("object").astype("category")
    labels = ["Human", "Machine: no reason given"] + [
        "Machine: " + reason_label(r) for r in reasons.cat.categories
    ]
    group = np.where(clicks["machine"].to_numpy(dtype=bool), reasons.cat.codes.to_numpy() + 2, 0)
    stats = _group_stats(group, len(labels), clicks.assign(machine=False), human_only=False)
    stats.index = labels
    stats = stats.groupby(level=0, sort=False).sum()  # reasons sharing a label
    machine_rows = [k for k in stats.index if k != "Human" and stats.loc[k, "total"] > 0]
    order = ["Human"] + sorted(machine_rows, key=lambda k: (-int(stats.loc[k, "total"]), k))
    total = stats.loc[order, "total"]
    people = stats.loc[order, "unique"]
    all_clicks = int(total.sum())
    table = pd.DataFrame(
        {
            "Clicks by": order + ["All clicks"],
            "Clicks": list(total.astype("int64")) + [all_clicks],
            "Share of clicks": list(_rate(total, np.full(len(total), all_clicks)))
            + [1.0 if all_clicks else np.nan],
            "People": list(people.astype("int64")) + [len(_distinct(clicks["pos"].to_numpy()))],
        }
    )
    formats = {"Clicks by": "text", "Clicks": "int", "Share of clicks": "pct", "People": "int"}
    note = (
        "Machine clicks are mail scanners and link checkers opening links before (or "
        "instead of) the reader; the tracking service flags them and says why. "
        "People can appear in more than one row."
    )
    return Table("machine", "Machine and human clicks", table, formats, note, total=True)


def build_report(frames: Frames, names: Names | None = None, human_only: bool = True) -> Report:
    """Every table of one campaign's report, plus headline figures and notes."""
    names = names or Names()
    prep = prepare(frames, human_only)
    people = prep.people
    sent_people = people[people["sent"]]
    sent_n = int(len(sent_people))
    delivered_n = int(sent_people["delivered"].sum())
    clickers_n = int((sent_people["clicked"]).sum())
    start = first_send(frames)
    funnel_table, by_segment = funnel(prep, names, human_only)
    course_table, by_course = courses(prep, frames, names, delivered_n, human_only)
    series = clicks_over_time(prep, start)
    busy = series[(series["Human clicks"] > 0) | (series["Machine clicks"] > 0)].reset_index(
        drop=True
    )
    time_table = Table(
        "over_time",
        "Clicks over time",
        busy,
        {
            "Period start": "datetime",
            "Period": "text",
            "Human clicks": "int",
            "Machine clicks": "int",
        },
        "Hourly for the first 7 days after the send date, then daily (UTC). "
        "Periods with no clicks are left out of this table.",
    )
    tables = {
        t.key: t
        for t in [
            funnel_table,
            course_table,
            sessions(prep, frames, names, human_only),
            by_group(prep, "practice", "Clicks per practice", "practices", human_only),
            by_group(prep, "role", "Clicks per role", "roles", human_only),
            clicks_per_day(prep, human_only),
            time_table,
            machine_vs_human(prep),
        ]
    }
    is_sent = sent_n > 0
    notes = []
    if not is_sent:
        notes.append(
            "This campaign has not been sent yet, so there is nothing to count. "
            "The tables fill in once the newsletter goes out."
        )
    elif not len(prep.clicks):
        notes.append("No clicks yet. Most clicks arrive in the first two days after a send.")
    if prep.delivered_fallback and is_sent:
        notes.append(
            "SendGrid reported no deliveries for this campaign (sent through the "
            "outbox, or the event webhook was not set up), so 'delivered' is the "
            "number sent less any bounces."
        )
    notes.append(
        "Headline figures count human clicks only; machine clicks (mail scanners) "
        "are shown beside them."
        if human_only
        else "Headline figures include machine clicks (--all); human-only figures are the default."
    )
    if prep.opens_tracked:
        notes.append(
            "Opens are unreliable: some mail apps open every message automatically "
            "and others block the tracking image. Use clicks to judge interest."
        )
    if prep.dropped_webhook_clicks:
        notes.append(
            f"{prep.dropped_webhook_clicks} SendGrid click events were left out: our "
            "own tracked links counted the same clicks."
        )
    if prep.unmatched_events:
        notes.append(
            f"{prep.unmatched_events} event{'s' if prep.unmatched_events != 1 else ''} "
            "did not match a recipient of this campaign (test sends, previews) and "
            f"{'are' if prep.unmatched_events != 1 else 'is'} left out."
        )
    all_clicks = int(people["all_clicks"].sum())
    machine_n = int(people["machine_clicks"].sum())
    human_n = int(people["human_clicks"].sum())
    rate = _rate(clickers_n, delivered_n)
    headline = [
        Figure("Sent", f"{sent_n:,}", _day(start) if start is not None else "not sent yet"),
        Figure(
            "Delivered",
            f"{delivered_n:,}",
            "= sent less bounces (no delivery data)"
            if prep.delivered_fallback and is_sent
            else f"{int(sent_people['bounced'].sum()):,} bounced",
        ),
        Figure(
            "Unique clickers", f"{clickers_n:,}", "human only" if human_only else "incl. machine"
        ),
        Figure(
            "Click-through rate",
            "–" if np.isnan(rate) else f"{float(rate):.1%}",
            "unique clickers / delivered",
        ),
        Figure(
            "Clicks",
            f"{human_n if human_only else all_clicks:,}",
            f"{machine_n:,} machine clicks " + ("left out" if human_only else "included"),
        ),
    ]
    last_event = frames.events["at"].max() if len(frames.events) else None
    return Report(
        campaign_id=frames.campaign_id,
        subject=names.subject or frames.subject,
        title=names.title,
        human_only=human_only,
        sent=is_sent,
        first_send=start.to_pydatetime() if start is not None else None,
        last_event=last_event.to_pydatetime()
        if last_event is not None and not pd.isna(last_event)
        else None,
        headline=headline,
        tables=tables,
        notes=notes,
        series=series,
        by_segment=by_segment,
        by_course=by_course,
    )


# ---------------------------------------------------------------------------------------
# Several quarters side by side


def compare(reports: list[Report]) -> dict[str, Table]:
    """Summary, segments and courses of several campaigns side by side, in the order given.

    Segments and courses are matched by id across campaigns (EQUIP Basics is
    ``equip-basics`` every quarter); a dash means the campaign did not have it.
    """
    ids = [r.campaign_id for r in reports]
    summary = pd.DataFrame(
        {
            "Campaign": ids,
            "Subject": [r.subject or "" for r in reports],
            "Dates": [r.date_range for r in reports],
            "Sent": [_figure_int(r, "Sent") for r in reports],
            "Delivered": [_figure_int(r, "Delivered") for r in reports],
            "Unique clickers": [_figure_int(r, "Unique clickers") for r in reports],
        }
    )
    summary["Click-through rate"] = _rate(summary["Unique clickers"], summary["Delivered"])
    tables = {
        "summary": Table(
            "summary",
            "Campaigns compared",
            summary,
            {
                "Campaign": "text",
                "Subject": "text",
                "Dates": "text",
                "Sent": "int",
                "Delivered": "int",
                "Unique clickers": "int",
                "Click-through rate": "pct",
            },
        )
    }
    for key, attr, title, first, metrics in (
        (
            "segments",
            "by_segment",
            "Segments compared",
            "Segment",
            (
                ("delivered", "Delivered", "int"),
                ("clickers", "Clickers", "int"),
                ("rate", "CTR", "pct"),
            ),
        ),
        (
            "courses",
            "by_course",
            "Courses compared",
            "Course",
            (("clickers", "Clickers", "int"), ("clicks", "Clicks", "int"), ("rate", "CTR", "pct")),
        ),
    ):
        order: list[str] = []
        names: dict[str, str] = {}
        for r in reports:
            frame = getattr(r, attr)
            for ident, name in zip(frame.index, frame["name"]):
                if ident not in names:
                    order.append(ident)
                if names.get(ident, ident) == ident:  # a spec's name beats a bare id
                    names[ident] = name
        table = pd.DataFrame({first: [names[i] for i in order]})
        formats = {first: "text"}
        for r in reports:
            frame = getattr(r, attr).reindex(order)
            for metric, label, fmt in metrics:
                column = f"{r.campaign_id} {label}"
                if metric == "rate":
                    values = _rate(frame["clickers"], frame["delivered"])
                else:
                    values = frame[metric].astype("Int64")
                table[column] = values if metric == "rate" else values.array
                formats[column] = fmt
        tables[key] = Table(
            key,
            title,
            table,
            formats,
            "A dash means the campaign did not have this segment or course, "
            "or had nothing to divide by. Rates use human clicks unless --all.",
        )
    return tables


def _figure_int(report: Report, label: str) -> int:
    for f in report.headline:
        if f.label == label:
            return int(f.value.replace(",", ""))
    raise KeyError(label)
