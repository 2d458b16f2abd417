"""The spec's Markdown in both parts: links tracked, placeholders as tokens, text wrapped."""

from __future__ import annotations

import re

import pytest
from support.rendering import make_project, plain_urls, reader

from equip_mailer.compose.render.markdown import wrap
from equip_mailer.compose.render.personalisation import (
    personalise,
    recipient_values,
)
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import SpecError


def test_text_part_is_wrapped_and_keeps_link_targets_readable(rendered):
    mail = rendered["ready-for-action"]
    for line in mail.text.splitlines():
        if not re.search(r"-eqt_\w+-|https?://", line):
            assert len(line) <= 76, line
    assert "Thursday 13 June 2019, 09:00\u201317:00" in mail.text
    assert "Sign up for EQUIP in Action:\n-eqt_link_0-" in mail.text
    assert "Who can register? To enrol on this course you will need some basic QI" in mail.text


def test_wrap_never_splits_tokens_or_urls():
    words = "Sign up for the course at -eqt_link_12- or read https://equip.example.org/a-long-path-with-hyphens"
    out = wrap(words, width=30)
    assert "-eqt_link_12-" in out and "https://equip.example.org/a-long-path-with-hyphens" in out
    assert all(len(line) <= 30 or "://" in line or "-eqt_" in line for line in out.splitlines())


def test_markdown_links_are_tracked_and_placeholders_escaped_correctly(tmp_path):
    def links(spec):
        spec["intro"] = (
            "Dear {first_name} at {practice},\n\n"
            "Read [about EQUIP](https://equip.example.org/about) "
            "and [the QI guide](https://qi.example.org/guide?part=1&lang=en) <script>x</script>.\n"
        )

    campaign = load_campaign(make_project(tmp_path, links), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    keys = [link.key for link in mail.links]
    assert keys[:2] == ["link:about", "link:qi-example-org-guide-part-1-lang-en"]  # reading order
    assert "&lt;script&gt;" in mail.html and "<script>" not in mail.html
    assert '<a href="-eq_link_0-"' in mail.html
    assert "Dear -eqt_first_name- at -eqt_practice-," in mail.text
    assert "about EQUIP (-eqt_link_0-)" in mail.text
    html, text = personalise(
        mail, recipient_values(mail, reader(practice="Smith & Jones"), plain_urls(mail), "#u")
    )
    assert "at Smith &amp; Jones," in html and "at Smith & Jones," in text


def test_an_unknown_placeholder_is_reported_with_its_line(tmp_path):
    def typo(spec):
        spec["intro"] = "Dear {firstname},\n"

    path = make_project(tmp_path, typo)
    with pytest.raises(SpecError) as err:
        load_campaign(path, allow_past=True)
    lines = path.read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(lines, 1) if text.startswith("intro:"))
    assert err.value.problems == [
        f"{path}:{line}: intro: {{firstname}} is not a placeholder; the placeholders are "
        "{first_name}, {practice}, {open_courses} and {open_count}"
    ]


def test_wrap_keeps_a_postcode_with_its_town():
    line = "Example Community Centre, Example Street, Whitechapel, London E1 0AA, first floor"
    wrapped = wrap(line, width=60)
    assert wrapped == (
        "Example Community Centre, Example Street, Whitechapel,\nLondon E1 0AA, first floor"
    )
    assert wrap("Rooms at London E1.", width=16) == "Rooms at\nLondon E1."
