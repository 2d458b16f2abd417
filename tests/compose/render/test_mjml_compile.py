"""Compiling MJML: what mjml-python lets through or reports without a position is an
error at a line.
"""

from __future__ import annotations

import pytest
from support.rendering import edit_template, make_project

from equip_mailer.compose.render.mjml_compile import compile_mjml
from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import RenderError


def test_an_unknown_mj_tag_is_an_error_not_silence(tmp_path):
    lines = {}

    def typo(folder):
        lines["at"] = edit_template(
            folder,
            "_course_card.mjml.j2",
            '        <mj-spacer height="8px" />',
            '        <mj-spacerr height="8px" />',
        )

    campaign = load_campaign(make_project(tmp_path, templates=typo), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign, ["ready-for-action"])
    assert err.value.where == f"templates/_course_card.mjml.j2:{lines['at']}:9"
    assert "<mj-spacerr> is not an MJML tag" in err.value.message


def test_an_mjml_error_without_a_position_is_found_in_the_template(tmp_path):
    lines = {}

    def unclosed(folder):
        text = (folder / "_footer.mjml.j2").read_text(encoding="utf-8")
        lines["at"] = text[: text.index("<mj-text>")].count("\n") + 1
        edit_template(folder, "_footer.mjml.j2", "        </mj-text>\n", "")

    campaign = load_campaign(make_project(tmp_path, templates=unclosed), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_footer.mjml.j2:{lines['at']}:9"
    assert "<mj-text> is not closed before </mj-column>" in err.value.message


def test_mjml_compile_reports_where_it_stopped_reading():
    source = (
        "<mjml>\n  <mj-body>\n    <mj-section>\n      <mj-column>\n        <mj-text>Hi\n"
        "      </mj-column>\n    </mj-section>\n  </mj-body>\n</mjml>\n"
    )
    with pytest.raises(RenderError) as err:
        compile_mjml(source)
    assert err.value.where == "MJML:5:9"
    assert err.value.message.startswith(
        "MJML cannot compile this: <mj-text> is not closed before </mj-column>"
    )


def test_mjml_byte_offsets_are_counted_in_characters():
    """mjml-python counts bytes; 'Zoë – café' is 10 characters but 14 bytes."""
    source = (
        "<mjml>\n  <mj-head>\n    <mj-title>Zoë – café</mj-title> <mj-text>no</mj-text>\n"
        "  </mj-head>\n  <mj-body></mj-body>\n</mjml>\n"
    )
    with pytest.raises(RenderError) as err:
        compile_mjml(source)
    assert err.value.where == "MJML:3:37"
    assert source.splitlines()[2][36:].startswith("<mj-text>")
