"""Who was sent, delivered, bounced and clicked, one row per recipient, and the integer
counting every table is cut from.

Every table divides the same people and the same clicks in a different way, so the rules
(which clicks count, when a mail counts as delivered) live here once. Counting is done on
integer arrays (bincount, sorted pairs), never per-row Python, so a million events take
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .model import Frames


@dataclass(frozen=True)
class Prepared:
    """Per-recipient flags and the click rows the tables are cut from."""

    people: pd.DataFrame  # ledger + sent, delivered, bounced, opened, clicked, clicks, machine,
    #                       unsubscribed, complained, confirmed, waiting (sign-ups, any course)
    clicks: pd.DataFrame  # all click rows used (human and machine), with course/session
    signups: pd.DataFrame  # Frames.signups + pos (the person's row in people, -1: not listed)
    delivered_fallback: bool
    opens_tracked: bool
    dropped_webhook_clicks: int
    unmatched_events: int


def prepare(frames: Frames, human_only: bool = True) -> Prepared:
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
    delivered_mask = is_event("delivered")
    open_mask = is_event("open")
    signups = frames.signups.assign(
        pos=ledger_positions(led["id"].to_numpy(), frames.signups["ledger_id"].to_numpy())
    )
    people = _people(
        led,
        unsubscribed=count(is_event("unsubscribe")),
        complained=count(is_event("spamreport")),
        signups=signups,
        human_clicks=count(clicks_mask & ~machine),
        machine_clicks=count(clicks_mask & machine),
        delivered_events=count(delivered_mask),
        opens=count(open_mask),
        bounced=count(is_event("bounce") | is_event("dropped")),
        delivered_fallback=not delivered_mask.any(),
        human_only=human_only,
    )
    clicks = ev.loc[clicks_mask, ["at", "ledger_id", "link_id", "machine", "machine_reason"]]
    clicks = clicks.assign(pos=pos[clicks_mask])
    return Prepared(
        people=people,
        clicks=clicks,
        signups=signups,
        delivered_fallback=not delivered_mask.any(),
        opens_tracked=bool(open_mask.any()),
        dropped_webhook_clicks=dropped_webhook,
        unmatched_events=unmatched,
    )


def _people(
    led: pd.DataFrame,
    *,
    human_clicks: np.ndarray,
    machine_clicks: np.ndarray,
    delivered_events: np.ndarray,
    opens: np.ndarray,
    bounced: np.ndarray,
    delivered_fallback: bool,
    human_only: bool,
    unsubscribed: np.ndarray | None = None,
    complained: np.ndarray | None = None,
    signups: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ledger with each recipient's flags, from their event counts: a click or an open
    proves the mail was sent and delivered, whatever the ledger or the webhook missed.
    ``confirmed``: a place on some course; ``waiting``: on a waiting list and no place."""
    n = len(led)
    zeros = np.zeros(n, dtype=np.int64)
    unsubscribed = zeros if unsubscribed is None else unsubscribed
    complained = zeros if complained is None else complained
    confirmed = np.zeros(n, dtype=bool)
    waiting = np.zeros(n, dtype=bool)
    if signups is not None and len(signups):
        listed = signups[signups["pos"] >= 0]
        status = listed["status"].astype("object").to_numpy()
        pos = listed["pos"].to_numpy(dtype=np.int64)
        confirmed[pos[status == "confirmed"]] = True
        waiting[pos[status == "waiting"]] = True
        waiting &= ~confirmed
    any_click = (human_clicks + machine_clicks) > 0
    state_sent = (led["state"].astype("object") == "sent").to_numpy()
    sent = state_sent | (delivered_events > 0) | any_click | (opens > 0)
    if delivered_fallback:
        delivered = sent & (bounced == 0)
    else:
        delivered = (delivered_events > 0) | any_click | (opens > 0)
    clicked = (human_clicks > 0) if human_only else any_click
    return led.assign(
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
        unsubscribed=unsubscribed > 0,
        complained=complained > 0,
        confirmed=confirmed,
        waiting=waiting,
        signed_up=confirmed | waiting,
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


def _code_matcher(column: pd.Series) -> Callable[[str], np.ndarray]:
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


def group_stats(
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
    pairs = distinct(group[chosen].astype(np.int64) * span + person[chosen])
    return pd.DataFrame(
        {
            "unique": np.bincount(pairs // span, minlength=n_groups)[:n_groups],
            "total": np.bincount(group[chosen], minlength=n_groups)[:n_groups],
            "machine": np.bincount(group[valid & machine], minlength=n_groups)[:n_groups],
            "total_all": np.bincount(group[valid], minlength=n_groups)[:n_groups],
        }
    ).astype("int64")


def distinct(values: np.ndarray) -> np.ndarray:
    """Sorted distinct integers. numpy 2's np.unique hashes, several times slower here than
    a plain sort for half a million ints."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]


def rate_or_nan(num: object, den: object) -> np.ndarray:
    """A share as a float, NaN when there is nothing to divide by (shown as a dash)."""
    num = np.asarray(num, dtype="float64")
    den = np.asarray(den, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def clicker_label(human_only: bool) -> str:
    return "Unique human clickers" if human_only else "Unique clickers (incl. machine)"


def ordered_categories(values: pd.Series, preferred: list[str]) -> list[str]:
    seen = [v for v in pd.unique(values.astype("object")) if isinstance(v, str)]
    return list(preferred) + sorted(v for v in seen if v not in preferred)
