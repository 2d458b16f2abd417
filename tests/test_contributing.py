"""CONTRIBUTING.md is a map a newcomer follows, so every module and function it names exists."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
CODE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "equip_mailer").rglob("*.py"))


def test_every_module_the_guide_names_exists():
    named = set(re.findall(r"`([\w/]+\.py)", GUIDE))
    assert len(named) > 15  # the guide names the modules; a rewrite that drops them should fail
    files = {str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    missing = sorted(n for n in named if not any(f == n or f.endswith("/" + n) for f in files))
    assert not missing, f"CONTRIBUTING.md names modules that do not exist: {missing}"


def test_every_function_the_guide_tells_you_to_extend_exists():
    functions = {
        "read_table",
        "_read_csv",
        "read_xlsx",
        "build_report",
        "report_context",
        "make_backend",
        "send_batch",
    }
    for name in functions:
        assert f"`{name}" in GUIDE or f"{name}(" in GUIDE
        assert re.search(rf"def {name}\b", CODE), f"CONTRIBUTING.md names {name}(), which is gone"


def test_every_package_in_the_guide_is_a_folder():
    packages = set(re.findall(r"^\| `(\w+)/`", GUIDE, flags=re.M))
    assert {
        "compose",
        "send",
        "track",
        "signup",
        "people",
        "report",
        "team",
        "cli",
        "store",
    } <= packages
    existing = {p.name for p in (ROOT / "equip_mailer").iterdir() if (p / "__init__.py").exists()}
    assert packages <= existing, (
        f"CONTRIBUTING.md names packages that do not exist: {packages - existing}"
    )


README = (ROOT / "README.md").read_text(encoding="utf-8")


def _help_examples() -> dict[str, str]:
    """Each command's `Example:` block, as `equip-mailer <command> --help` prints it."""
    import click
    from click.testing import CliRunner

    from equip_mailer.cli import main

    def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        found = []
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += leaves(command, (*prefix, name))
            else:
                found.append((*prefix, name))
        return found

    examples = {}
    for path in leaves(main):
        output = CliRunner().invoke(main, [*path, "--help"]).output
        examples[" ".join(path)] = output.split("Example:", 1)[1].split("Options:", 1)[0]
    return examples


def _shown_invocations() -> list[tuple[str, list[str]]]:
    """Every `equip-mailer <command> ...` a reader may copy: the README's and this guide's
    code blocks and inline code, and each command's help example; (where, words)."""
    sources = {"README.md": README, "CONTRIBUTING.md": GUIDE}
    sources |= {f"equip-mailer {name} --help": text for name, text in _help_examples().items()}
    shown = []
    for where, text in sources.items():
        if where.endswith(".md"):
            blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
            rest = re.sub(r"```.*?```", "", text, flags=re.S)
            text = "\n".join(blocks + re.findall(r"`([^`\n]+)`", rest))
        for line in text.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].replace("[", " ").replace("]", " ")
            for found in re.findall(r"equip-mailer ([a-z].*)", line):
                shown.append((where, found.split()))
    return shown


def _command_and_options(words: list[str]) -> tuple[list[str], set[str]]:
    """The command path the words name and the options that command accepts."""
    import click

    from equip_mailer.cli import main

    command: click.Command = main
    path: list[str] = []
    for word in words:
        if not (isinstance(command, click.Group) and word in command.commands):
            break
        command = command.commands[word]
        path.append(word)
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    return path, options | {"--help", "-h"}


def test_every_command_and_option_the_docs_show_exists():
    """A renamed option leaves the README's copy-and-paste lines failing with 'No such
    option'; every `equip-mailer ...` line in the docs and the help examples must parse."""
    shown = _shown_invocations()
    assert len(shown) > 40  # the docs show the commands; a parser that finds none should fail
    wrong = []
    for where, words in shown:
        path, options = _command_and_options(words)
        if not path:
            wrong.append(f"{where}: equip-mailer {words[0]} is not a command")
            continue
        for word in words[len(path) :]:
            if word.startswith("-") and word.split("=")[0].rstrip(".,;:") not in options:
                wrong.append(f"{where}: equip-mailer {' '.join(path)} has no option {word}")
    assert not wrong, "\n".join(wrong)


def test_every_option_the_readme_names_alone_is_an_option_of_some_command():
    """Prose names options on their own (`--all`, `--workers N`); each must still exist."""
    import click

    from equip_mailer.cli import main

    def all_options(command: click.Command) -> set[str]:
        found = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for sub in getattr(command, "commands", {}).values():
            found |= all_options(sub)
        return found

    named = set(re.findall(r"`(--[a-z][\w-]*)", README + GUIDE))
    assert {"--allow-past", "--dry-run", "--test-to"} <= named
    assert "--smoke" in (ROOT / "benchmarks" / "run.py").read_text(encoding="utf-8")
    unknown = named - all_options(main) - {"--smoke"}  # --smoke: benchmarks/run.py's mode
    assert not unknown, f"the docs name options no command has: {sorted(unknown)}"


def test_every_shown_command_on_the_demo_runs_on_the_demo():
    """The demo's sessions are in 2019, so check, preview and send refuse it without
    --allow-past ("6 problems ... is in the past"): every line that runs one of them on the
    demo spec must carry the flag, or it fails as written (found: `check ... --online`)."""
    from equip_mailer.compose.spec import load_campaign
    from equip_mailer.errors import SpecError

    demo = "campaigns/2019-04-equip-training.yaml"
    with pytest.raises(SpecError):
        load_campaign(ROOT / demo)  # the premise: without the flag the demo is refused
    refusing = {"check", "preview", "send"}
    lines = [(w, words) for w, words in _shown_invocations() if words[0] in refusing]
    assert len(lines) > 10
    missing = [
        f"{where}: equip-mailer {' '.join(words)}"
        for where, words in lines
        if demo in words and "--allow-past" not in words
    ]
    assert not missing, "\n".join(missing)


def test_every_module_and_folder_in_the_readmes_diagram_exists():
    """The diagram is the README's map of equip_mailer/: a module renamed or moved there
    leaves a newcomer searching for a file that is gone."""
    diagram = README.split("## How it fits together", 1)[1].split("```", 2)[1]
    modules = set(re.findall(r"\b(\w+\.py)\b", diagram))
    folders = set(re.findall(r"(?<![/\w])([a-z]+)/(?=[\s:(]|$)", diagram, flags=re.M))
    assert len(modules) > 12 and {"compose", "send", "track", "report", "render"} <= folders
    package = ROOT / "equip_mailer"
    have_modules = {p.name for p in package.rglob("*.py")}
    have_folders = {p.name for p in package.rglob("*") if (p / "__init__.py").exists()}
    assert not modules - have_modules, f"the diagram names {sorted(modules - have_modules)}"
    assert not folders - have_folders, f"the diagram names {sorted(folders - have_folders)}"


def test_every_repository_path_the_docs_name_exists():
    """`tests/send/test_crash.py`, `benchmarks/README.md`, `lists/README.md`: files the
    docs send a reader to must be there."""
    prefixes = "tests|benchmarks|equip_mailer|lists|templates|\\.ci"
    named = set(re.findall(rf"(?<![\w/.<])((?:{prefixes})/[\w./-]*\w)", README + GUIDE))
    assert len(named) > 10
    missing = sorted(n for n in named if not (ROOT / n).exists() and not n.endswith("test_"))
    assert not missing, f"the docs name paths that do not exist: {missing}"


def test_every_python_command_shown_runs_the_projects_python():
    """`make demo` installs the project into .venv only; a bare `python tests/support/
    booking_exports.py` runs the system's Python, which has no openpyxl (found following the
    README: ModuleNotFoundError). Lines running our code must name .venv/bin/python."""
    shown = r"([\w./]*python3?) (?:-m (?:equip_mailer|pytest)\b|tests/|benchmarks/)"
    lists_readme = (ROOT / "lists" / "README.md").read_text(encoding="utf-8")
    ours = re.findall(shown, README + GUIDE + lists_readme)
    assert len(ours) >= 4
    assert set(ours) == {".venv/bin/python"}, sorted(set(ours))


def test_every_readme_section_a_message_cites_is_a_heading():
    """Errors and hints send the manager to a README section by name ("README: 'Moving the
    link secret'"); a renamed heading would leave them looking for nothing."""
    joined = re.sub(r"\"\s*\n\s*f?\"", "", CODE)  # implicit concatenation across lines
    cited = set(re.findall(r"README:? '([^']+)'", joined))
    cited |= set(re.findall(r"'([^']+)' in\s+the README", joined))
    assert {"Moving the link secret", "SQLite or PostgreSQL"} <= cited
    prose = re.sub(r"```.*?```", "", README, flags=re.S)  # a shell comment is no heading
    headings = set(re.findall(r"^#+ (.+?)\s*$", prose, flags=re.M))
    assert not cited - headings, f"messages cite README sections that are gone: {cited - headings}"


def test_every_environment_variable_is_documented_and_every_documented_one_is_read():
    """A variable the docs name but nothing reads is silently ignored (a typo the manager
    cannot see); one the code reads but the docs omit is a setting nobody can find."""
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("*.py"))
    variable = r"((?:EQUIP|SENDGRID)_[A-Z_]*[A-Z])"
    documented = set(re.findall(rf"\b{variable}\b", README + GUIDE))
    read = set(re.findall(rf"[\"']{variable}[\"']", CODE))
    assert len(read) > 15
    assert not read - documented, f"read but not in the README: {sorted(read - documented)}"
    unread = {v for v in documented - read if v not in tests}  # EQUIP_LONG_TESTS: the tests'
    assert not unread, f"the docs name variables nothing reads: {sorted(unread)}"


def test_every_file_a_shown_command_reads_is_shipped():
    """A newcomer runs the examples on the demo: an input file they name must be in the
    repository (found: `signups import ... eventbrite.csv`, while the demo's exports are in
    lists/imports/). Rosters are written by `equip-mailer roster` (tests/cli/test_docs.py)."""
    missing = []
    for where, words in _shown_invocations():
        for i, word in enumerate(words):
            is_input = re.search(r"\.(csv|xlsx|yaml)$", word) and not words[i - 1].startswith("-")
            if is_input and not word.startswith("rosters/") and not (ROOT / word).exists():
                missing.append(f"{where}: equip-mailer {' '.join(words)}")
    assert not missing, "\n".join(missing)
