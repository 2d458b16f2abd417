"""The figures per practice and role, and clicks split into human and each kind of
machine (in plain words: "link scanner (Mimecast)", not "http-client").

Like the other table modules (``funnel``, ``courses``, ``sessions``), every function takes
the ``Prepared`` recipients and clicks plus the spec's ``Names`` and returns a ``Table``
whose columns are what the reader sees; none reads the store or writes a file, so the CLI,
the files and the team's pages show the same numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .counting import (
    Prepared,
    clicker_label,
    distinct,
    group_stats,
    rate_or_nan,
)
from .load import NOT_GIVEN
from .model import Table

NO_PRACTICE = "No practice (citizens and service users)"


def by_group(prep: Prepared, column: str, title: str, key: str, human_only: bool = True) -> Table:
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
    grouped["rate"] = rate_or_nan(grouped["clicked"], grouped["delivered"])
    grouped = grouped.reset_index()
    grouped[column] = grouped[column].astype("object")
    if column == "practice":  # citizens and service users have none: say so, not "(not given)"
        grouped[column] = grouped[column].replace({NOT_GIVEN: NO_PRACTICE})
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
            clicker_label(human_only): grouped["clicked"].to_numpy(),
            "Total clicks": grouped["clicks"].to_numpy(),
            "Click-through rate": grouped["rate"].to_numpy(),
            "Machine clicks": grouped["machine"].to_numpy(),
        }
    )
    formats = {
        label: "text",
        "Recipients": "int",
        "Delivered": "int",
        clicker_label(human_only): "int",
        "Total clicks": "int",
        "Click-through rate": "pct",
        "Machine clicks": "int",
    }
    return Table(key, title, table, formats, "Recipients = people the newsletter was sent to.")


# machine_reason values written by equip_mailer.track.machines, in words a board paper can use
REASON_WORDS = {
    "after-delivery": "link scanner (opened the link within seconds of delivery)",
    "head": "link checker (checked the link without opening the page)",
    "burst": "link scanner (opened every link within seconds)",
    "ua:empty": "link scanner (no browser named)",
    "ua:microsoft-safelinks": "link scanner (Microsoft Safe Links)",
    "ua:microsoft-office": "Microsoft Office checking the link",
    "ua:microsoft-preview": "link preview (Microsoft Teams or Skype)",
    "ua:mimecast": "link scanner (Mimecast)",
    "ua:proofpoint": "link scanner (Proofpoint)",
    "ua:barracuda": "link scanner (Barracuda)",
    "ua:cisco-ironport": "link scanner (Cisco IronPort)",
    "ua:symantec": "link scanner (Symantec)",
    "ua:forcepoint": "link scanner (Forcepoint)",
    "ua:sophos": "link scanner (Sophos)",
    "ua:trend-micro": "link scanner (Trend Micro)",
    "ua:fortinet": "link scanner (Fortinet)",
    "ua:mcafee": "link scanner (McAfee)",
    "ua:checkpoint": "link scanner (Check Point)",
    "ua:google-preview": "link preview or scanner (Google)",
    "ua:slack-preview": "link preview (Slack)",
    "ua:chat-preview": "link preview (a chat or social app)",
    "ua:http-client": "link scanner (a program, not a browser)",
    "ua:bot": "web crawler or link checker",
}


def reason_label(reason: object) -> str:
    """A machine_reason in words a board paper can use ("link scanner", not "http-client")."""
    if not isinstance(reason, str) or not reason:
        return "no reason given"
    if reason in REASON_WORDS:
        return REASON_WORDS[reason]
    name = reason.removeprefix("ua:").replace("-", " ")
    return f"link scanner ({name})"


def machine_vs_human(prep: Prepared) -> Table:
    """Every click, split into human and each machine reason, with the people behind them."""
    clicks = prep.clicks
    reasons = clicks["machine_reason"]
    if not isinstance(reasons.dtype, pd.CategoricalDtype):
        reasons = reasons.astype("object").astype("category")
    labels = ["Human", "Machine: no reason given"] + [
        "Machine: " + reason_label(r) for r in reasons.cat.categories
    ]
    group = np.where(clicks["machine"].to_numpy(dtype=bool), reasons.cat.codes.to_numpy() + 2, 0)
    stats = group_stats(group, len(labels), clicks.assign(machine=False), human_only=False)
    stats.index = labels
    stats = stats.groupby(level=0, sort=False).sum()  # reasons sharing a label
    totals = stats["total"].to_dict()
    machine_rows = [k for k in stats.index if k != "Human" and totals[k] > 0]
    order = ["Human"] + sorted(machine_rows, key=lambda k: (-int(totals[k]), k))
    total = stats.loc[order, "total"]
    people = stats.loc[order, "unique"]
    all_clicks = int(total.sum())
    table = pd.DataFrame(
        {
            "Clicks by": order + ["All clicks"],
            "Clicks": list(total.astype("int64")) + [all_clicks],
            "Share of clicks": list(rate_or_nan(total, np.full(len(total), all_clicks)))
            + [1.0 if all_clicks else np.nan],
            "People": list(people.astype("int64")) + [len(distinct(clicks["pos"].to_numpy()))],
        }
    )
    formats = {"Clicks by": "text", "Clicks": "int", "Share of clicks": "pct", "People": "int"}
    note = (
        "Machine clicks are mail scanners and link checkers opening links before (or "
        "instead of) the reader; the tracking service flags them and says why. "
        "People can appear in more than one row."
    )
    return Table("machine", "Machine and human clicks", table, formats, note, total=True)
