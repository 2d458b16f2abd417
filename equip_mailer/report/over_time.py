"""When the clicks came: hourly for the first week after the send, then daily, and per
calendar day, with machine clicks (mail scanners, link checkers) counted apart.

Scanners click within seconds of delivery, so a newsletter's first hour looks busy even when
nobody has read it; the series keeps human and machine clicks side by side.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pandas as pd

from .counting import Prepared, clicker_label, distinct, group_stats
from .model import Frames, Table

HOURLY_DAYS = 7  # clicks over time: hourly for the first 7 days after the first send
MIN_HOURS = 24  # the hourly series covers at least this many hours (up to the daily switch)


def first_send(frames: Frames) -> pd.Timestamp | None:
    """The first send: earliest ledger sent_at, else the earliest batch."""
    sent_at = frames.ledger["sent_at"].dropna()
    if len(sent_at):
        return cast(pd.Timestamp, sent_at.min())
    created = (
        frames.batches["created_at"].dropna()
        if len(frames.batches)
        else pd.Series([], dtype="datetime64[s]")
    )
    return cast(pd.Timestamp, created.min()) if len(created) else None


def clicks_over_time(prep: Prepared, start: pd.Timestamp | None) -> pd.DataFrame:
    """Human and machine clicks per period: hourly for the first 7 days, then daily.

    Hours run from the hour of the first send to midnight seven days after the send date;
    after that each period is a calendar day (UTC). Empty periods are kept (zeros) up to the
    last click, and for at least the first 24 hours, so a chart shows the quiet hours too.
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
    # At least a day of hours, so clicks that all fell in one hour read as a busy hour in a
    # quiet day rather than one bar filling the chart.
    end = max(last, t0 + pd.Timedelta(hours=MIN_HOURS - 1))
    hours = pd.date_range(t0, min(end, switch - pd.Timedelta(hours=1)), freq="h")
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


def clicks_per_day(prep: Prepared, human_only: bool = True) -> Table:
    """Clicks and clickers per calendar day (UTC), days with clicks only: the over-time
    table a page can hold (the hourly detail goes to the files)."""
    clicks = prep.clicks
    day = clicks["at"].dt.floor("D")
    days = pd.DatetimeIndex(distinct(day.to_numpy())) if len(clicks) else pd.DatetimeIndex([])
    group = days.get_indexer(day) if len(clicks) else np.zeros(0, dtype=np.int64)
    stats = group_stats(group, len(days), clicks, human_only)
    clicker = clicker_label(human_only)
    table = pd.DataFrame(
        {
            "Day (UTC)": days,
            clicker: stats["unique"].to_numpy(),
            "Human clicks": (stats["total_all"] - stats["machine"]).to_numpy(),
            "Machine clicks": stats["machine"].to_numpy(),
        }
    )
    return Table(
        "days",
        "Clicks per day",
        table,
        {"Day (UTC)": "date", clicker: "int", "Human clicks": "int", "Machine clicks": "int"},
        "Days with no clicks are left out. The hour-by-hour figures for the first "
        "week are in over_time.csv and the spreadsheet.",
    )
