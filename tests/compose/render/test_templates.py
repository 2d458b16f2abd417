"""Template errors name the template file and line: Jinja's own, and MJML's traced back."""

from __future__ import annotations

import pytest
from support.rendering import edit_template, make_project

from equip_mailer.compose.render.pipeline import render_campaign
from equip_mailer.compose.spec import load_campaign
from equip_mailer.errors import RenderError


def test_a_jinja_syntax_error_names_file_and_line(tmp_path):
    lines = {}

    def broken(folder):
        lines["at"] = edit_template(folder, "_header.mjml.j2", "{{ title }}", "{{ title }")

    campaign = load_campaign(make_project(tmp_path, templates=broken), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_header.mjml.j2:{lines['at']}"
    assert err.value.message.startswith("template syntax:")


def test_an_undefined_name_names_file_and_line(tmp_path):
    lines = {}

    def typo(folder):
        lines["at"] = edit_template(
            folder, "_course_card.mjml.j2", "{{ card.name }}", "{{ card.nmae }}"
        )

    campaign = load_campaign(make_project(tmp_path, templates=typo), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/_course_card.mjml.j2:{lines['at']}"
    assert "nmae" in err.value.message


def test_a_missing_template_is_named(tmp_path):
    def other(spec):
        spec["template"] = "autumn-menu"

    campaign = load_campaign(make_project(tmp_path, other), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == "templates/autumn-menu.mjml.j2"


def test_an_mjml_error_with_a_position_names_the_template_line(tmp_path):
    lines = {}

    def misplaced(folder):
        lines["at"] = edit_template(
            folder,
            "course-menu.mjml.j2",
            "    <mj-attributes>",
            "    <mj-text>in the head</mj-text>\n    <mj-attributes>",
        )

    campaign = load_campaign(make_project(tmp_path, templates=misplaced), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/course-menu.mjml.j2:{lines['at']}:5"
    assert str(err.value).startswith(
        f"templates/course-menu.mjml.j2:{lines['at']}:5: MJML cannot compile this <mj-text>"
    )


@pytest.mark.parametrize("name", ["course-menu.mjml.j2", "_footer.mjml.j2"])
def test_a_template_saved_as_ansi_is_named_at_its_line(tmp_path, name):
    """Notepad's ANSI save of a template with a £ in it: the main template crashed the
    command ("something unexpected went wrong"), a part was blamed on the line including it."""
    lines = {}

    def ansi(folder):
        path = folder / name
        text = path.read_text(encoding="utf-8")
        lines["at"] = text[: text.index("</mj-")].count("\n") + 1
        path.write_bytes(text.replace("</mj-", "<!-- £5 -->\n</mj-", 1).encode("cp1252"))

    campaign = load_campaign(make_project(tmp_path, templates=ansi), allow_past=True)
    with pytest.raises(RenderError) as err:
        render_campaign(campaign)
    assert err.value.where == f"templates/{name}:{lines['at']}"
    assert err.value.message == (
        "is not UTF-8 text at '£' (saved as Windows-1252 or ANSI?); save the file as UTF-8"
    )
