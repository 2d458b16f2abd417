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


def _leaf_commands() -> list[str]:
    """Every command a person types: the groups' subcommands (people export) as well."""
    import click

    leaves = []
    for name, command in sorted(main.commands.items()):
        if isinstance(command, click.Group):
            leaves += [f"{name} {sub}" for sub in sorted(command.commands)]
        else:
            leaves.append(name)
    return leaves


@pytest.mark.parametrize("command", _leaf_commands())
def test_each_subcommand_has_help_with_an_example_of_itself(command):
    result = CliRunner().invoke(main, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    example = result.output.split("Example:", 1)[1]
    assert f"equip-mailer {command}" in example


def test_the_readmes_command_list_names_every_command():
    """The list a manager copies from ("A quarter's work, command by command") is the whole
    tool: found in the walkthrough without `suppressions sync`."""
    block = README.split("## A quarter's work", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    listed = {" ".join(line.split()[1:3]) for line in block.splitlines() if line.strip()}
    for command in _leaf_commands():
        assert any(f"{entry} ".startswith(f"{command} ") for entry in listed), command


def test_the_attendance_example_names_a_file_that_roster_writes():
    """Found in the walkthrough: it named rosters/basics-06-27.xlsx, which no command makes."""
    from equip_mailer.signup.roster import roster_stem

    example = CliRunner().invoke(main, ["attendance", "--help"]).output.split("Example:")[1]
    example = example.split("Options:")[0]
    written = f"rosters/2019-04-equip-training/{roster_stem('equip-basics', '2019-06-27')}.xlsx"
    assert example.split()[-1] == written


def test_serve_help_names_every_page_it_serves():
    """Found in the walkthrough: it named only the tracking routes, not the sign-up and team
    pages the manager starts it for."""
    text = " ".join(CliRunner().invoke(main, ["serve", "--help"]).output.split())
    for route in ("/c/", "/s/", "/join/", "/i/", "/r/", "/u/", "/team/", "/webhooks/sendgrid"):
        assert route in text, route
