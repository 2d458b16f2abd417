"""The commands document themselves: each has help with an example and a place in the README."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from equip_mailer.cli import main

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
COMMANDS = (
    "check",
    "preview",
    "send",
    "status",
    "cancel",
    "serve",
    "report",
    "roster",
    "signups",
    "attendance",
    "people",
    "person",
    "forget",
    "purge",
    "suppressions",
)


def test_the_cli_offers_exactly_the_documented_commands():
    assert set(main.commands) == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help_with_an_example(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert f"equip-mailer {command}" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_is_in_the_readme(command):
    assert f"equip-mailer {command}" in README


def test_readme_opens_with_the_two_set_up_commands():
    setup = README.split("## Set up", 1)[1].split("##", 1)[0]
    assert "make demo" in setup and "make test" in setup
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
