"""The duplicates page (/ui/duplicates) in a real headless Chromium, by perceptual hash: three
copies of one image form a group beside images that match nothing; "Keep this, hide the
others" on one copy hides the other two (the API says so) and keeps the chosen one."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import encode
from tests.gateway.ui.conftest import KEY, open_page, wait
from tests.search.images import block_image

pytestmark = pytest.mark.integration

INDEX = "dups"
COPIES = ["copy/a.png", "copy/b.png", "copy/c.png"]
OTHERS = ["other/1.png", "other/2.png"]


@pytest.fixture(scope="module")
def library(ui_server):
    images = [block_image(500, 96)] * len(COPIES) + [block_image(600 + i, 96) for i in range(len(OTHERS))]
    files = [("images", (f"{i}.png", encode(im, "PNG"), "image/png")) for i, im in enumerate(images)]
    with httpx.Client(base_url=ui_server.url, timeout=120, headers={"X-API-Key": KEY}) as http:
        resp = http.post("/index_images", files=files, data={"index": INDEX, "keys": json.dumps(COPIES + OTHERS)})
        assert resp.status_code == 200 and resp.json()["indexed"] == len(images), resp.text
    return ui_server


def groups(driver) -> list[list[str]]:
    from selenium.webdriver.common.by import By

    return [
        [side.get_attribute("data-key") for side in group.find_elements(By.CSS_SELECTOR, ".side")]
        for group in driver.find_elements(By.CSS_SELECTOR, "#pairs .group")
    ]


def test_keep_one_of_a_group_hides_the_others(library, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{library.url}/ui/duplicates?index={INDEX}&method=phash&max_distance=5")
    wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith("1 group"), "one group found")
    assert [sorted(g) for g in groups(browser)] == [COPIES]  # the other images match nothing
    chosen = next(s for s in browser.find_elements(By.CSS_SELECTOR, "#pairs .group .side") if s.get_attribute("data-key") == COPIES[1])
    chosen.find_element(By.CSS_SELECTOR, "button.keep").click()
    wait(browser, lambda d: d.find_element(By.ID, "status").text.startswith(f"Kept {COPIES[1]}; hid 2 items"), "the others hidden")

    with httpx.Client(base_url=library.url, timeout=60, headers={"X-API-Key": KEY}) as http:
        got = {it["key"]: it for it in http.post("/get", json={"index": INDEX, "keys": COPIES + OTHERS}).json()["items"]}
    assert {k: got[k]["hidden"] for k in COPIES + OTHERS} == {
        COPIES[0]: True, COPIES[1]: False, COPIES[2]: True, OTHERS[0]: False, OTHERS[1]: False,
    }
