"""The figures per course: who was offered it, who clicked its links, who signed up against
its places, and the segment × course table.

A course's click rate is over the readers whose email offered it (``offered_counts``), not
everyone delivered; places come from the store's copy of the spec (``course_places``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .counting import (
    Prepared,
    clicker_label,
    group_stats,
    ordered_categories,
    rate_or_nan,
)
from .model import Frames, Names, Table

OTHER_LINKS = "Other links (about, contact, ...)"
UNKNOWN_LINK = "Link not identified"


def course_ids_in_order(frames: Frames, names: Names) -> list[str]:
    """The spec's courses in its order, then any other course a stored link names."""
    ids = [c for c in frames.links["course_id"].astype("object") if isinstance(c, str)]
    return list(names.courses) + sorted(set(ids) - set(names.courses))


def offered_counts(prep: Prepared, names: Names, course_ids: list[str]) -> pd.Series | None:
    """Delivered readers whose email offered each course (could sign up for it); None when
    the spec (which says what each segment is offered) is not at hand."""
    if not names.offered:
        return None
    people = prep.people
    delivered = people.loc[people["sent"] & people["delivered"], "segment"].astype("object")
    per_segment = {str(seg): int(n) for seg, n in delivered.value_counts().items()}
    return pd.Series(
        {
            c: sum(n for seg, n in per_segment.items() if c in names.offered.get(seg, ()))
            for c in course_ids
        },
        dtype="int64",
    )


def course_places(prep: Prepared, frames: Frames) -> pd.DataFrame:
    """Per course id: hosted, places (None: no limit, or booked elsewhere), confirmed and
    waiting (every registration, whoever made it: list, open page, import)."""
    pl = frames.places
    rows = {}
    for cid, sessions in pl.groupby("course_id", sort=False):
        limits = [p for p in sessions["places"] if p is not None and not pd.isna(p)]
        hosted = bool(sessions["hosted"].iloc[0])
        if not hosted or len(limits) < len(sessions):
            places = None
        elif bool(sessions["attend_all"].iloc[0]):
            places = int(min(limits))  # one place covers every day: the smallest day's
        else:
            places = int(sum(limits))
        rows[cid] = {"hosted": hosted, "places": places}
    status = prep.signups.groupby(["course_id", "status"]).size()
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["hosted", "places"])
    for cid in prep.signups["course_id"].unique():
        if cid not in out.index:
            out.loc[cid] = {"hosted": False, "places": None}
    out["confirmed"] = [int(status.get((c, "confirmed"), 0)) for c in out.index]
    out["waiting"] = [int(status.get((c, "waiting"), 0)) for c in out.index]
    return out


def courses(
    prep: Prepared, frames: Frames, names: Names, delivered: int, human_only: bool = True
) -> tuple[Table, pd.DataFrame]:
    """Per course: the readers offered it, unique clickers and their rate over those readers,
    clicks, and sign-ups against places; links that are not a course after."""
    course_order = course_ids_in_order(frames, names)
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
    at = pd.Index(link_ids).get_indexer(pd.Index(prep.clicks["link_id"].to_numpy()))
    group = link_group[np.where(at >= 0, at, len(link_ids))]
    stats = group_stats(group, len(order), prep.clicks, human_only)
    stats.index = order
    stats = stats[(stats.index.isin(course_order)) | (stats["total_all"] > 0)]
    is_course = stats.index.isin(course_order)
    offered = offered_counts(prep, names, course_order)
    audience = [
        (int(offered[c]) if offered is not None else delivered) if real else None
        for c, real in zip(stats.index, is_course, strict=True)
    ]
    places = course_places(prep, frames)

    def place(c: str, column: str) -> object:
        if c in places.index:
            return places.at[c, column]
        return 0 if column in ("confirmed", "waiting") else None  # nobody signed up

    confirmed = [
        place(c, "confirmed") if real else None
        for c, real in zip(stats.index, is_course, strict=True)
    ]
    capacity = [place(c, "places") for c in stats.index]
    table = pd.DataFrame(
        {
            "Course": [names.courses.get(c, c) for c in stats.index],
            "Offered to": _counts(audience),
            clicker_label(human_only): stats["unique"].to_numpy(),
            "Click-through rate": rate_or_nan(
                stats["unique"], [np.nan if a is None else a for a in audience]
            ),
            "Total clicks": stats["total"].to_numpy(),
            "Machine clicks": stats["machine"].to_numpy(),
            "Signed up: place": _counts(confirmed),
            "Signed up: waiting": _counts(
                [
                    place(c, "waiting") if real else None
                    for c, real in zip(stats.index, is_course, strict=True)
                ]
            ),
            "Places": _counts(capacity),
            "Places filled": rate_or_nan(
                [np.nan if v is None else v for v in confirmed],
                [np.nan if v is None else v for v in capacity],
            ),
        }
    )
    formats = {
        "Course": "text",
        "Offered to": "int",
        clicker_label(human_only): "int",
        "Click-through rate": "pct",
        "Total clicks": "int",
        "Machine clicks": "int",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Places": "int",
        "Places filled": "pct",
    }
    note = (
        "Offered to = delivered readers whose email offered the course (it was open to "
        "their QI level); click-through rate = unique clickers on the course / those "
        "readers. Unique clickers counts each person once per course, total clicks every "
        "click. Signed up counts every registration, from the email, the open sign-up page "
        "or an import; a dash under Places: no limit, or booked elsewhere."
    )
    if offered is None:
        note += " The campaign spec was not at hand, so 'offered to' is every delivered reader."
    keyed = pd.DataFrame(
        {
            "name": table["Course"].to_numpy(),
            "clickers": stats["unique"].to_numpy(),
            "clicks": stats["total"].to_numpy(),
            "delivered": [np.nan if a is None else a for a in audience],
            "signed_up": [  # None: other links have no sign-ups to count (a dash)
                None if c is None else int(c) + int(place(i, "waiting"))  # type: ignore[call-overload]
                for i, c in zip(stats.index, confirmed, strict=True)
            ],
        },
        index=stats.index,
    )
    return Table("courses", "Clicks and sign-ups per course", table, formats, note), keyed


def _counts(values: list) -> pd.Series:
    """Whole numbers with gaps (None: shown as a dash, an empty cell in the files)."""
    return pd.Series(values, dtype="Int64")


def segment_courses(prep: Prepared, frames: Frames, names: Names, human_only: bool) -> Table:
    """Each segment's unique clickers and sign-ups per course, so a course's pull is read
    against the readers it was offered to. A dash: the segment's email did not offer it."""
    people = prep.people
    order = ordered_categories(people["segment"], list(names.segments))
    course_order = course_ids_in_order(frames, names)
    link_course = dict(
        zip(
            pd.to_numeric(frames.links["id"]).astype("int64"),
            frames.links["course_id"].astype("object"),
            strict=True,
        )
    )
    clicks = prep.clicks
    if human_only:
        clicks = clicks[~clicks["machine"].to_numpy(dtype=bool)]
    course_of = clicks["link_id"].map(link_course)
    segment_of = people["segment"].astype("object").to_numpy()
    clicked = (
        pd.DataFrame({"course": course_of.to_numpy(), "pos": clicks["pos"].to_numpy()})
        .dropna()
        .drop_duplicates()
    )
    clicked["segment"] = segment_of[clicked["pos"].to_numpy(dtype=np.int64)]
    clickers = clicked.groupby(["segment", "course"]).size()
    listed = prep.signups[prep.signups["pos"] >= 0]
    signed = (
        listed.assign(segment=segment_of[listed["pos"].to_numpy(dtype=np.int64)])
        .groupby(["segment", "course_id"])
        .size()
    )
    table = pd.DataFrame({"Segment": [names.segments.get(s, s) for s in order] + ["All segments"]})
    formats = {"Segment": "text"}
    for c in course_order:
        name = names.courses.get(c, c)
        for label, counts in (("clickers", clickers), ("signed up", signed)):
            values: list[int | None] = []
            for seg in order:
                n = int(counts.get((seg, c), 0))
                offered = not names.offered or c in names.offered.get(seg, ())
                values.append(n if offered or n else None)
            values.append(sum(v or 0 for v in values))
            table[f"{name} {label}"] = pd.array(values, dtype="Int64")
            formats[f"{name} {label}"] = "int"
    return Table(
        "segment_courses",
        "Segments and courses",
        table,
        formats,
        ("Unique human clickers" if human_only else "Unique clickers (incl. machine)")
        + " on each course, and people who signed up for it (a place or the waiting list), "
        "per segment. A dash: the segment's email did not offer the course.",
        total=True,
    )
