"""A real headless Chromium for the UI tests, driven through selenium and chromedriver.

Debian's `chromium` and `chromium-driver` (scripts/install_browser.sh, run by
`scripts/install.sh --test`). Each browser gets a new empty profile, and the flags keep it
off the network: without the background-networking ones Chromium keeps calling home.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1100,760",
)
MAX_SCREENSHOT_BYTES = 150 * 1024


def start_chromium():
    """(driver, profile dir); fails, naming the fix, when Chromium is not installed."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(f"the UI tests need {CHROMIUM} and {CHROMEDRIVER}: run scripts/install_browser.sh (apt, as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(60)
    return driver, profile


def stop_chromium(driver, profile: str) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def save_screenshot(driver, folder: str | None, name: str) -> None:
    """With --ui-screenshots DIR: the page as a palette PNG of at most MAX_SCREENSHOT_BYTES."""
    if not folder:
        return
    from PIL import Image

    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    for colors in (128, 64, 32):
        buf = io.BytesIO()
        image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buf, format="PNG", optimize=True)
        if buf.tell() <= MAX_SCREENSHOT_BYTES:
            break
    assert buf.tell() <= MAX_SCREENSHOT_BYTES, f"{name}: {buf.tell():,} bytes"
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
