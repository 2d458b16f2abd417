"""The team list: EQUIP_TEAM (comma-separated) or the config file's list, lower-cased; a
value that is not an address is a plain error naming where it came from."""

from __future__ import annotations

import pytest

from equip_mailer.config import load_settings
from equip_mailer.errors import ConfigError
from equip_mailer.team.members import Team


def test_the_team_comes_from_equip_team(tmp_path):
    settings = load_settings(
        {"EQUIP_TEAM": " Ann@NHS.example, bob@nhs.example;ann@nhs.example ,"},
        config_file=tmp_path / "none.toml",
        create_link_secret=False,
    )
    assert settings.team == ("ann@nhs.example", "bob@nhs.example")
    assert "ann@" not in repr(settings) and "a***@n***.example" in repr(settings)
    team = Team.of(settings.team)
    assert "ANN@nhs.example " in team and "carol@nhs.example" not in team and team


def test_the_team_from_the_config_file_and_a_bad_entry(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('team = ["ann@nhs.example"]\n')
    assert load_settings({}, config, create_link_secret=False).team == ("ann@nhs.example",)
    with pytest.raises(ConfigError, match=r"^EQUIP_TEAM: 'ann at nhs' is not an email address"):
        load_settings({"EQUIP_TEAM": "ann at nhs"}, config, create_link_secret=False)
    assert not Team.of(())
