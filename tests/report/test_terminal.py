"""The summary ``equip-mailer report`` prints, written to any rich Console."""

from __future__ import annotations

import io

from rich.console import Console

from equip_mailer.report.assemble import build_report
from equip_mailer.report.terminal import print_summary


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
