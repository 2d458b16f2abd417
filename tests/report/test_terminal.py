"""The summary ``equip-mailer report`` prints, written to any rich Console."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console

from equip_mailer.report.assemble import build_report, compare
from equip_mailer.report.terminal import print_comparison, print_summary


def test_summary_has_the_headline_the_funnel_and_the_courses(frames, names):
    console = Console(record=True, width=100, file=io.StringIO())
    print_summary(build_report(frames, names), console)
    text = console.export_text()
    assert (
        "Sent 11 · Delivered 10 · Unique clickers 5 · Click-through rate 50.0% · Clicks 9" in text
    )
    assert "Funnel per segment" in text and "Clicks and sign-ups per course" in text
    assert "Places per session" in text
    assert "Opens?" not in text and "Raw" not in text  # dropped to fit a terminal
    assert "Note: Opens are unreliable" in text


def test_names_that_look_like_rich_markup_are_printed_as_written(frames, names):
    """Found in review: a course name with "[/x]" crashed report's summary."""
    import dataclasses

    odd = "Basics [/x] [link=https://e.example]here[/link]"
    report = build_report(frames, names)
    courses = report.tables["courses"]
    frame = courses.frame.copy()
    frame.iloc[0, 0] = odd
    report.tables["courses"] = dataclasses.replace(courses, frame=frame)
    console = Console(record=True, width=200, file=io.StringIO())
    print_summary(report, console)
    assert odd in console.export_text()


def test_comparison_shows_each_campaigns_sign_ups_in_80_columns(frames, names):
    """Two quarters alike but for their sign-ups: 6 in April, then only recipient 1's place on
    EQUIP Basics in July. Signed up follows the click-through rate, as in the single report;
    its two-line header says whom it counts (a segment's recipients; every sign-up for a
    course or a campaign), and a note under the tables says it in words."""
    april = dataclasses.replace(frames, campaign_id="2019-04")
    july = dataclasses.replace(
        frames, campaign_id="2019-07", signups=frames.signups[frames.signups["ledger_id"] == 1]
    )
    reports = [build_report(april, names), build_report(july, names)]
    console = Console(record=True, width=80, file=io.StringIO())
    print_comparison(reports, compare(reports), console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines() if not line.startswith("Note:")) <= 80
    lines = [" ".join(line.split()) for line in text.splitlines()]

    def header(first: str, last: str) -> bool:
        """The header's two lines: "Signed up" above the column's "(...)"."""
        at = lines.index(first + " " + last)
        return lines[at - 1].endswith("Signed up")

    assert header("Campaign Dates Sent Delivered Clickers CTR", "(all routes)")
    assert "2019-04 22 Apr 11 10 5 50.0% 6" in lines  # the dates wrap to fit
    assert "2019-07 22 Apr 11 10 5 50.0% 1" in lines
    assert header("Segment Campaign Delivered Clickers CTR", "(recipients)")
    assert "New to QI 2019-04 4 2 50.0% 2" in lines  # a place and a waiting list
    assert "2019-07 4 2 50.0% 1" in lines
    assert header("Course Campaign Clickers Clicks CTR", "(all routes)")
    # Basics: recipients 1 and 2, and someone from the open sign-up page who got no mail
    assert "EQUIP Basics 2019-04 2 3 20.0% 3" in lines
    assert "Data masterclass 2019-04 2 2 66.7% 2" in lines  # one of them not on the lists
    assert "2019-07 2 2 66.7% 0" in lines
    note = next(line for line in lines if line.startswith("Note: Signed up"))
    assert "Signed up (recipients): people in the segment the newsletter was sent to" in note
    assert "including people the newsletter was not sent to" in note


def test_the_headline_wraps_between_figures_never_inside_one(frames, names):
    """Found in the audit: in an 80-column terminal the headline broke as "Clicks" at the end
    of one line and "9" at the start of the next, or left a "·" to start a line. It breaks
    only after a separator now."""
    report = build_report(frames, names)
    console = Console(record=True, width=80, file=io.StringIO())
    print_summary(report, console)
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    headline = lines[2 : lines.index("Funnel per segment")]
    assert len(headline) == 2 and all(len(line) <= 80 for line in headline)
    figures = [part for line in headline for part in line.removesuffix(" ·").split(" · ")]
    assert figures == [f"{f.label} {f.value}" for f in report.headline]
