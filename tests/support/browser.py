"""Screenshots in Debian's headless Chromium, for tests of what people look at."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (tests/setup-system.sh installs it)")
    return CHROMIUM


def screenshot(page: Path, out_png: Path, width: int, height: int = 1400) -> Path:
    """Render a local HTML file at ``width`` CSS pixels and save a PNG."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="equip-chromium-") as profile:
        cmd = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-sync",
            "--disable-quic",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={out_png}",
            page.resolve().as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    if not out_png.exists():
        raise AssertionError(
            f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
        )
    return out_png


def ink_stats(png: Path) -> dict:
    """How much of the picture is not background: a blank page has ~0 ink and 1-2 colours."""
    from PIL import Image

    img = Image.open(png).convert("RGB")
    small = img.resize((img.width // 4 or 1, img.height // 4 or 1))
    pixels = list(
        small.get_flattened_data() if hasattr(small, "get_flattened_data") else small.getdata()
    )
    background = max(set(pixels), key=pixels.count)
    ink = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, background)) > 60)
    return {
        "width": img.width,
        "height": img.height,
        "colours": len(set(pixels)),
        "ink_share": ink / len(pixels),
    }
