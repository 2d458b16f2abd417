"""The project root is found the way git finds its repository: the nearest folder, at or
above where you are (or where the campaign spec is), that holds campaigns/ or
equip-mailer.toml."""

from __future__ import annotations

import pytest

from equip_mailer.errors import ConfigError
from equip_mailer.project import find_project, project_for_spec, require_project


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "equip"
    (root / "campaigns" / "2019").mkdir(parents=True)
    (root / "lists").mkdir()
    (root / "report" / "old").mkdir(parents=True)
    return root


def test_found_from_any_folder_inside_it(project):
    assert find_project(project).root == project
    assert find_project(project / "report" / "old").root == project
    assert find_project(project / "campaigns" / "2019").root == project
    assert find_project(project).file is None


def test_a_campaign_spec_names_its_project(project, tmp_path):
    assert project_for_spec(project / "campaigns" / "q2.yaml").root == project
    assert project_for_spec(project / "campaigns" / "2019" / "q2.yaml").root == project
    # A spec outside any project is its own project, rooted beside it.
    loose = tmp_path / "elsewhere" / "q2.yaml"
    loose.parent.mkdir()
    assert project_for_spec(loose).root == loose.parent


def test_the_project_file_alone_marks_a_root(tmp_path):
    """On the server that runs `serve`, a folder holding only equip-mailer.toml will do."""
    (tmp_path / "equip-mailer.toml").write_text('public_url = "https://equip.example.org"\n')
    (tmp_path / "logs").mkdir()
    found = find_project(tmp_path / "logs")
    assert found.root == tmp_path and found.file == tmp_path / "equip-mailer.toml"


def test_no_project_is_a_plain_error_saying_what_a_project_is(tmp_path):
    with pytest.raises(ConfigError) as caught:
        require_project(tmp_path)
    assert f"no equip-mailer project in {tmp_path}" in str(caught.value)
    assert "campaigns/ or equip-mailer.toml" in str(caught.value)
