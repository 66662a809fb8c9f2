"""What the UI's browser tests share: one server for all of them (tiny profile, API keys on,
indexes in PostgreSQL, only clip and face served), one headless Chromium, and the helpers
to wait for the page and to enter the key when it asks."""

from __future__ import annotations

import pytest

from tests.gateway.ui.browser import start_chromium, stop_chromium
from tests.integration.conftest import start_server

KEY = "ui-test-key-0123456789abcdef"
WAIT_S = 60


@pytest.fixture(scope="session")
def ui_server(tiny_models):
    from tests.postgres import fresh_database

    srv = start_server(args=("--arg", "models=clip,face"), IMAGE_EMBED_API_KEYS=KEY, IMAGE_EMBED_SEARCH_URL=fresh_database("ui"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser():
    driver, profile = start_chromium()
    yield driver
    stop_chromium(driver, profile)


@pytest.fixture()
def screenshots(request):
    return request.config.getoption("--ui-screenshots")


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(lambda d: condition(d), message=what)


def open_page(driver, url: str) -> None:
    """Open a page; enter the key when the page asks for it (the first page of the tab)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    if driver.execute_script("return sessionStorage.getItem('image-embed.api-key')") is None:
        wait(driver, lambda d: d.find_elements(By.ID, "api-key"), "the key prompt")
        driver.find_element(By.ID, "api-key").send_keys(KEY)
        driver.find_element(By.ID, "api-key-submit").click()
