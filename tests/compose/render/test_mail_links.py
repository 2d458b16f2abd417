"""The links an email contains: named, numbered in reading order, with UTM when asked."""

from __future__ import annotations

import re

from support.rendering import make_project, plain_urls

from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign


def test_links_need_no_utm_when_the_spec_turns_it_off(tmp_path):
    def no_utm(spec):
        spec["tracking"]["utm"] = False

    campaign = load_campaign(make_project(tmp_path, no_utm), allow_past=True)
    mail = render_campaign(campaign, ["project-leads"])["project-leads"]
    assert (
        plain_urls(mail)["data-masterclass"] == "https://equip.example.org/courses/data-masterclass"
    )


def test_other_links_stay_plain_when_not_tracked(tmp_path):
    def untracked(spec):
        spec["tracking"]["track_other_links"] = False
        spec["intro"] = "Hello {first_name}, see [the guide](https://qi.example.org/guide).\n"

    campaign = load_campaign(make_project(tmp_path, untracked), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    assert [link.key for link in mail.links] == ["equip-basics"]
    assert 'href="https://qi.example.org/guide"' in mail.html
    assert "the guide (https://qi.example.org/guide)" in mail.text
    assert "About: https://equip.example.org/about" in mail.text


def test_markdown_links_whose_names_collide_stay_apart(tmp_path):
    def similar(spec):
        spec["intro"] = (
            "See [one](https://qi.example.org/a-b) and [two](https://qi.example.org/a_b).\n"
        )

    campaign = load_campaign(make_project(tmp_path, similar), allow_past=True)
    mail = render_campaign(campaign, ["getting-started"])["getting-started"]
    first, second = mail.links[:2]
    assert first.key == "link:qi-example-org-a-b"
    assert second.key.startswith("link:qi-example-org-a-b-") and second.url.startswith(
        "https://qi.example.org/a_b"
    )


def test_every_link_token_reaches_an_href(rendered):
    for mail in rendered.values():
        hrefs = re.findall(r'href="(-eq_[a-z0-9_]+-)"', mail.html)
        assert set(hrefs) == {f"-eq_link_{i}-" for i in range(len(mail.links))} | {
            "-eq_unsubscribe-"
        }
