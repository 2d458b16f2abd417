"""Accessibility checks with axe-core (npm, tests/js) inside a real Chromium page.

    violations = axe_violations(driver)    # after driver.get(...)
    assert violations == [], describe(violations)

Only the WCAG 2.0/2.1/2.2 A and AA rules run: those are the bar for the pages people use.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parent.parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_A_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@lru_cache(maxsize=1)
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip(
            "axe-core is not installed (tests/setup-system.sh runs npm install in tests/js)"
        )
    return AXE.read_text(encoding="utf-8")


def axe_violations(driver) -> list[dict]:
    """The page's WCAG A/AA violations as axe-core reports them (empty when it passes)."""
    driver.execute_script(axe_source())
    result = driver.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const options = {runOnly: {type: 'tag', values: arguments[0]}, resultTypes: ['violations']};
        axe.run(document, options)
          .then(r => done({violations: r.violations, passes: r.passes.length}))
          .catch(e => done({error: String(e)}));
        """,
        WCAG_A_AA,
    )
    if "error" in result:
        raise AssertionError(f"axe-core failed to run: {result['error']}")
    return result["violations"]


def describe(violations: list[dict]) -> str:
    """One line per violation and node, for an assertion message."""
    lines = []
    for v in violations:
        for node in v.get("nodes", [])[:5]:
            lines.append(f"{v['id']} ({v['impact']}): {v['help']} at {node.get('target')}")
    return "\n".join(lines)
