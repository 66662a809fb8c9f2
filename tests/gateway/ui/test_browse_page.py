"""The review page (/ui/browse) in a real headless Chromium against the UI tests' server: a
selection made by click and shift-click is rated and tagged, one item is hidden, and after
a reload the state is what the page showed (and what the API answers); filters, paging and
the item view keep their state in the URL (the second test reads what the first wrote).

    pytest tests/gateway/ui --ui-screenshots docs/img   # also writes docs/img/ui-browse.png
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import encode
from tests.gateway.ui.browser import save_screenshot
from tests.gateway.ui.conftest import KEY, open_page, wait
from tests.search.images import block_image

pytestmark = pytest.mark.integration

INDEX = "review"
KEYS = [f"shoot/{i:02d}.png" for i in range(10)]


@pytest.fixture(scope="module")
def review(ui_server):
    files = [("images", (f"{i}.png", encode(block_image(300 + i, 96), "PNG"), "image/png")) for i in range(len(KEYS))]
    meta = [{"camera": "x100", "n": i} for i in range(len(KEYS))]
    with httpx.Client(base_url=ui_server.url, timeout=120, headers={"X-API-Key": KEY}) as http:
        resp = http.post("/index_images", files=files, data={"index": INDEX, "keys": json.dumps(KEYS), "metadata": json.dumps(meta)})
        assert resp.status_code == 200 and resp.json()["indexed"] == len(KEYS), resp.text
    return KEYS


def loaded(driver, *parts: str) -> bool:
    """The page of the current URL is shown (not the one before it), and the URL has `parts`."""
    url = driver.current_url
    search = url[url.index("?"):] if "?" in url else ""
    items = driver.find_element("id", "items")
    return all(p in url for p in parts) and items.get_attribute("data-loaded") == search


def click_chip(driver, text: str) -> str | None:
    """Click the tag filter's chip `text` (the filter is redrawn as the page loads); its tag id."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    try:
        for chip in driver.find_elements(By.CSS_SELECTOR, "#tag-filter .chip"):
            if chip.text == text:
                tag_id = chip.get_attribute("data-tag")
                chip.click()
                return tag_id
    except StaleElementReferenceException:
        return None
    return None


def cards(driver):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, "#items .item")


def shown(driver) -> dict[str, tuple[int, list[str], bool]]:
    """key -> (stars, tag chips, hidden badge) as the page shows them."""
    from selenium.webdriver.common.by import By

    out = {}
    for card in cards(driver):
        rating = int(card.find_element(By.CSS_SELECTOR, ".stars").get_attribute("data-rating"))
        chips = [c.text for c in card.find_elements(By.CSS_SELECTOR, ".chip")]
        out[card.get_attribute("data-key")] = (rating, chips, bool(card.find_elements(By.CSS_SELECTOR, ".badge")))
    return out


def click_when_done(driver, element_id: str, status: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).click()
    wait(driver, lambda d: d.find_element(By.ID, "status").text.startswith(status), status)


def test_rate_tag_hide_a_selection_and_reload(ui_server, review, browser, screenshots):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_page(browser, f"{ui_server.url}/ui/browse?index={INDEX}&per_page=48")
    wait(browser, lambda d: len(cards(d)) == len(KEYS), "every item")
    assert [c.get_attribute("data-key") for c in cards(browser)] == KEYS  # in key order
    assert not browser.find_element(By.ID, "selection").is_displayed()

    cards(browser)[1].click()
    ActionChains(browser).key_down(Keys.SHIFT).click(cards(browser)[4]).key_up(Keys.SHIFT).perform()  # a range
    assert browser.find_element(By.ID, "selected-count").text == "4 selected"
    browser.find_element(By.CSS_SELECTOR, "#rate-buttons .rate[data-rating='4']").click()
    wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith("Rated 4: 4 items"), "rated")
    browser.find_element(By.ID, "tag-name").send_keys("keeper")
    click_when_done(browser, "add-tag", "Tagged keeper: 4 items")
    browser.find_element(By.ID, "clear-selection").click()
    cards(browser)[7].click()
    click_when_done(browser, "hide", "Hidden: 1 item")
    wait(browser, lambda d: len(cards(d)) == len(KEYS) - 1, "the hidden item gone")

    browser.refresh()  # nothing kept in the page: what shows now comes from the server
    wait(browser, lambda d: len(cards(d)) == len(KEYS) - 1, "the items after a reload")
    state = shown(browser)
    assert KEYS[7] not in state
    assert {k: state[k] for k in KEYS[1:5]} == {k: (4, ["keeper"], False) for k in KEYS[1:5]}
    assert all(state[k] == (0, [], False) for k in KEYS if k not in KEYS[1:5] and k != KEYS[7])
    with httpx.Client(base_url=ui_server.url, timeout=60, headers={"X-API-Key": KEY}) as http:
        got = {it["key"]: it for it in http.post("/get", json={"index": INDEX, "keys": KEYS}).json()["items"]}
    assert [got[k]["rating"] for k in KEYS] == [0, 4, 4, 4, 4, 0, 0, 0, 0, 0] and got[KEYS[7]]["hidden"]

    browser.find_element(By.ID, "include-hidden").click()
    wait(browser, lambda d: loaded(d, "hidden=1") and len(cards(d)) == len(KEYS), "the hidden item shown")
    assert shown(browser)[KEYS[7]] == (0, [], True)


def test_filters_paging_and_the_item_view_live_in_the_url(ui_server, review, browser, screenshots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    open_page(browser, f"{ui_server.url}/ui/browse?index={INDEX}&per_page=24")
    wait(browser, lambda d: len(cards(d)) >= 9, "the items")
    Select(browser.find_element(By.ID, "per-page")).select_by_visible_text("48")
    Select(browser.find_element(By.ID, "min-rating")).select_by_value("4")
    wait(browser, lambda d: loaded(d, "min_rating=4") and len(cards(d)) == 4, "rated 4 or more")
    tag_id = wait(browser, lambda d: click_chip(d, "keeper (4)"), "the tag chip")
    wait(browser, lambda d: loaded(d, f"tags={tag_id}") and len(cards(d)) == 4, "the tag filter")
    cards(browser)[0].find_element(By.CSS_SELECTOR, "button.open").click()
    details = wait(browser, lambda d: d.find_element(By.ID, "details").is_displayed() and d.find_element(By.ID, "details"), "the item view")
    assert details.find_element(By.CSS_SELECTOR, "h2.key").text == KEYS[1] and "open=shoot%2F01.png" in browser.current_url
    assert '"camera": "x100"' in details.find_element(By.CSS_SELECTOR, "pre.metadata").text
    assert details.find_element(By.ID, "more-like").get_attribute("href").endswith(f"/ui/search?index={INDEX}&similar=shoot%2F01.png")
    cards(browser)[2].click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#details img.thumb-img")) == 1, "the large thumbnail")
    save_screenshot(browser, screenshots, "ui-browse.png")

    browser.get(browser.current_url)  # the same URL: the same view
    wait(browser, lambda d: d.find_element(By.ID, "details").is_displayed() and len(cards(d)) == 4, "the view again")
    open_page(browser, f"{ui_server.url}/ui/browse?index={INDEX}&per_page=4&page=2")
    wait(browser, lambda d: [c.get_attribute("data-key") for c in cards(d)] == [KEYS[4], KEYS[5], KEYS[6], KEYS[8]], "page 2")
    assert browser.find_element(By.ID, "page-of").text == "page 2 of 3"
    browser.find_element(By.ID, "next").click()
    wait(browser, lambda d: loaded(d, "page=3") and [c.get_attribute("data-key") for c in cards(d)] == [KEYS[9]], "page 3")
    assert browser.find_element(By.ID, "next").get_attribute("disabled") is not None
