"""Debian's headless Chromium for tests of what people look at: screenshots of local files
(``screenshot``), and a real browser to drive through pages (``open_browser``: selenium with
Debian's chromium-driver), with ``support.axe`` for accessibility checks."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections import Counter
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
    counts = Counter(pixels)  # max(set, key=list.count) is quadratic: minutes for a long page
    background = counts.most_common(1)[0][0]
    ink = sum(1 for p in pixels if sum(abs(a - b) for a, b in zip(p, background, strict=True)) > 60)
    return {
        "width": img.width,
        "height": img.height,
        "colours": len(counts),
        "ink_share": ink / len(pixels),
    }


# --- a real browser to drive: Debian's chromium through its chromium-driver (selenium) ---

CHROMEDRIVER = shutil.which("chromedriver")


def require_webdriver() -> tuple[str, str]:
    """chromium and chromedriver, or skip saying what tests/setup-system.sh installs."""
    chromium = require_chromium()
    if not CHROMEDRIVER:
        pytest.skip("Debian's chromium-driver is not installed (tests/setup-system.sh installs it)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (it is in the test extras: make install)")
    return chromium, CHROMEDRIVER


def open_browser(width: int = 1280, height: int = 900, downloads: Path | None = None):
    """A headless Chromium (selenium WebDriver) at ``width`` x ``height`` CSS pixels, offline
    apart from loopback; downloads (if any) land in ``downloads``. Call ``.quit()`` after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = require_webdriver()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    if downloads is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "safebrowsing.enabled": False,
            },
        )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(60)
    if downloads is not None:  # headless Chromium downloads only when told where
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
    return driver


def set_width(driver, width: int, height: int = 900) -> None:
    """Make the page's viewport ``width`` CSS pixels wide (the window adds no chrome headless)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def full_page_screenshot(driver, out_png: Path) -> Path:
    """The whole page, not only the viewport, as a PNG."""
    import base64

    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    out_png.write_bytes(base64.b64decode(shot["data"]))
    return out_png


def overflows_horizontally(driver) -> bool:
    """Whether the page is wider than the viewport (text cut off on a phone). Wide tables
    scroll inside their own focusable region instead, which this does not count."""
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth > window.innerWidth + 1;"
        )
    )


def click_and_wait(driver, element, timeout: float = 30) -> None:
    """Click ``element`` (a link or a form's button) and wait until the next page has loaded:
    selenium's click can return before a form post's answer replaces the page."""
    old = driver.find_element("tag name", "html")
    element.click()
    wait_for_next_page(driver, old, timeout)


def wait_for_next_page(driver, old, timeout: float = 30) -> None:
    """Wait until the page whose ``html`` element is ``old`` has been replaced and the next
    one has loaded (after a click, or a key that submits a form)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    gone = expected_conditions.staleness_of(old)

    def replaced(d) -> bool:
        # Chromium can answer a check on the old page's node, while the new page replaces
        # it, with "Node with given id does not belong to the document" instead of a stale
        # element: the old page is gone either way (seen under load).
        try:
            return bool(gone(d))
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise

    WebDriverWait(driver, timeout).until(replaced)
    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
