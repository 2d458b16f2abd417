"""The newsletter's funnel per segment: sent, delivered, bounced, unsubscribed, human
clickers, then people with a place or on a waiting list, so the team sees at a glance how
far each version of the email carried its readers, down to the sign-up.
"""

from __future__ import annotations

import pandas as pd

from .counting import Prepared, clicker_label, ordered_categories, rate_or_nan
from .model import Names, Table


def funnel(prep: Prepared, names: Names, human_only: bool = True) -> tuple[Table, pd.DataFrame]:
    """Sent, delivered, bounced, clickers and click-through rate per segment, with a total.

    Segments named in the spec appear even with no recipients (a row of zeros and a dash
    for the rate), so a reader sees the segment was empty rather than missing.
    """
    people = prep.people
    order = ordered_categories(people["segment"], list(names.segments))
    seg = pd.Categorical(people["segment"].astype("object"), categories=order)
    flags = people[
        [
            "sent",
            "delivered",
            "bounced",
            "unsubscribed",
            "complained",
            "clicked",
            "opened",
            "confirmed",
            "waiting",
            "signed_up",
            "machine_clicks",
            "all_clicks",
        ]
    ].copy()
    # Figures count sent recipients only; an unsent row still shows in the segment (as 0).
    for col in ("delivered", "bounced", "clicked", "opened", "unsubscribed", "complained"):
        flags[col] = flags[col] & flags["sent"]
    grouped = flags.assign(segment=seg).groupby("segment", observed=False).sum()
    grouped = grouped.reindex(order, fill_value=0).astype("int64")
    grouped.loc["__total__"] = grouped.sum()
    clicker = clicker_label(human_only)
    table = pd.DataFrame(
        {
            "Segment": [names.segments.get(s, s) for s in order] + ["All segments"],
            "Sent": grouped["sent"].to_numpy(),
            "Delivered": grouped["delivered"].to_numpy(),
            "Bounced": grouped["bounced"].to_numpy(),
            "Unsubscribed": grouped["unsubscribed"].to_numpy(),
            clicker: grouped["clicked"].to_numpy(),
            "Click-through rate": rate_or_nan(grouped["clicked"], grouped["delivered"]),
            "Signed up: place": grouped["confirmed"].to_numpy(),
            "Signed up: waiting": grouped["waiting"].to_numpy(),
            "Sign-up rate": rate_or_nan(grouped["signed_up"], grouped["delivered"]),
            "Machine clicks": grouped["machine_clicks"].to_numpy(),
        }
    )
    formats = {
        "Segment": "text",
        "Sent": "int",
        "Delivered": "int",
        "Bounced": "int",
        "Unsubscribed": "int",
        clicker: "int",
        "Click-through rate": "pct",
        "Signed up: place": "int",
        "Signed up: waiting": "int",
        "Sign-up rate": "pct",
        "Machine clicks": "int",
    }
    if grouped["complained"].sum():
        table.insert(5, "Marked as spam", grouped["complained"].to_numpy())
        formats["Marked as spam"] = "int"
    if prep.opens_tracked:
        table["Opens (unreliable)"] = grouped["opened"].to_numpy()
        formats["Opens (unreliable)"] = "int"
    keyed = pd.DataFrame(
        {
            "name": table["Segment"].to_numpy()[:-1],
            "sent": grouped["sent"].to_numpy()[:-1],
            "delivered": grouped["delivered"].to_numpy()[:-1],
            "clickers": grouped["clicked"].to_numpy()[:-1],
            "signed_up": grouped["signed_up"].to_numpy()[:-1],
        },
        index=order,
    )
    note = (
        "Click-through rate = unique clickers / delivered. Signed up counts people of the "
        "segment with a place on some course ('place'), or only on a waiting list "
        "('waiting'); sign-up rate = those people / delivered. Bounced counts bounces and "
        "drops reported by SendGrid; Unsubscribed, the readers who unsubscribed from this "
        "newsletter. A dash means there is nothing to divide by."
    )
    return Table("funnel", "Funnel per segment", table, formats, note, total=True), keyed
