"""Rendering a campaign end to end: one complete email per segment, each rendered once.

Variants of the demo campaign are real files in tmp_path (a campaigns/ and templates/ copy).
"""

from __future__ import annotations

import re

import pytest
from support.rendering import edit_template, make_project

from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import RenderError


def test_every_segment_gets_a_complete_email_with_its_own_subject(demo, rendered):
    assert list(rendered) == ["getting-started", "ready-for-action", "project-leads"]
    mail = rendered["getting-started"]
    assert mail.subject == "EQUIP Basics: start your QI journey this summer"
    assert mail.preheader == demo.preheader
    assert mail.html.startswith("<!DOCTYPE html>")
    assert '<html lang="en-GB"' in mail.html
    assert "<title>EQUIP Basics: start your QI journey this summer</title>" in mail.html
    assert demo.preheader in mail.html  # the hidden preheader (see test_templates)
    assert "<h1" in mail.html and "<h2" in mail.html and "<h3" in mail.html
    assert "<img" not in mail.html  # nothing for Outlook to block
    assert "fonts.googleapis.com" not in mail.html  # no web-font request either
    for m in rendered.values():
        assert "<mj-" not in m.html


def test_the_preheader_is_hidden_without_low_contrast_text_and_ends_the_preview(rendered):
    """Hiding the preheader as white text on white scores HTML_FONT_LOW_CONTRAST with spam
    filters; it is hidden by display and size alone, first in the body, and the zero-width
    filler after it stops the inbox preview from running on into the email."""
    html = rendered["ready-for-action"].html
    body = html[html.index("<body") :]
    hidden = re.search(r'<div class="eq-preheader" style="([^"]*)">([^<]*)</div>', body)
    assert hidden is not None
    style, content = hidden.groups()
    assert "display:none" in style and "mso-hide:all" in style
    assert "color" not in style and "opacity" not in style and "font-size" not in style
    preheader = rendered["ready-for-action"].preheader
    assert content.startswith(preheader)
    filler = content[len(preheader) :]
    assert filler == "\u034f\u200c\u00a0" * 60
    assert body.index("eq-preheader") < body.index("<h1")  # before any visible text
    assert "mj-preview" not in html and "color:#ffffff;line-height:1px" not in html


def test_the_mail_says_it_is_designed_for_light_mode(rendered):
    """Apple Mail and Outlook.com recolour mail that does not say which schemes it supports;
    the NHS palette is only checked for contrast in light mode."""
    for mail in rendered.values():
        head = mail.html[: mail.html.index("</head>")]
        assert '<meta name="color-scheme" content="light"' in head
        assert '<meta name="supported-color-schemes" content="light"' in head
        assert "color-scheme: light" in head


def test_an_unknown_segment_is_named(demo):
    with pytest.raises(
        RenderError, match="there is no segment 'everyone'; the segments are getting-started"
    ):
        render_campaign(demo, ["everyone"])


def test_a_token_the_renderer_did_not_make_is_refused(tmp_path):
    # Nothing would fill it: the reader would get "-eq_discount-" as written.
    def smuggle(folder):
        edit_template(
            folder, "_footer.mjml.j2", "        </mj-text>\n", "-eq_discount-</mj-text>\n"
        )

    campaign = load_campaign(make_project(tmp_path, templates=smuggle), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign, ["getting-started"])
    assert err.value.where == "templates/course-menu.mjml.j2"
    assert err.value.message == (
        "the email contains token(s) the renderer did not make: -eq_discount-"
    )
