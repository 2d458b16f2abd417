"""CONTRIBUTING.md is a map a newcomer follows, so every module and function it names exists."""

import re
from pathlib import Path

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
