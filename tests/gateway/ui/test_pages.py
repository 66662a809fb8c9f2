"""The web UI in a real headless Chromium against a real `bentoml serve` (tiny profile).

One server for the UI tests (tests/gateway/ui/conftest.py), and it is the demanding case: API keys configured (the pages ask
for the key and send it in a header), indexes in PostgreSQL (so the test can also store an
item without a thumbnail, as a server with IMAGE_EMBED_THUMBNAILS=0 would), and only the
clip and face models served (the analyze page offers no person or caption tasks; the face
model is the real MTCNN, which finds the astronaut's face).

    pytest tests/gateway/ui --ui-screenshots docs/img   # also writes the docs' screenshots
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from tests.conftest import encode, photo
from tests.gateway.ui.browser import save_screenshot
from tests.gateway.ui.conftest import KEY, open_page, wait
from tests.search.images import block_image

pytestmark = pytest.mark.integration

INDEX = "gallery"
XSS_KEY = "<script>window.__xss=1</script>.png"
XSS_NOTE = "<img src=x onerror=window.__xss=2>"
BLOCKS = [f"blocks/{i}.png" for i in range(5)]
COPY = "copy-of-blocks-0.png"  # the same image as blocks/0.png: a duplicate pair
NO_THUMBNAIL = "no-thumbnail.png"


@pytest.fixture(scope="module")
def gallery(ui_server):
    """INDEX: five block images, a copy of the first, one whose key and metadata are HTML,
    and one stored without a thumbnail."""
    from search.backend import indexes_at

    images = [block_image(i, 96) for i in range(5)] + [block_image(0, 96), block_image(7, 96)]
    keys = [*BLOCKS, COPY, XSS_KEY]
    metadata = [{"album": "blocks", "n": i} for i in range(5)] + [{"album": "copies"}, {"note": XSS_NOTE}]
    files = [("images", (f"{i}.png", encode(img, "PNG"), "image/png")) for i, img in enumerate(images)]
    with httpx.Client(base_url=ui_server.url, timeout=120, headers={"X-API-Key": KEY}) as http:
        resp = http.post("/index_images", files=files, data={"index": INDEX, "keys": json.dumps(keys), "metadata": json.dumps(metadata)})
        assert resp.status_code == 200 and resp.json()["indexed"] == 7, resp.text
    registry = indexes_at(ui_server.search_url)
    try:
        ix = registry.get(INDEX)
        ix.upsert([NO_THUMBNAIL], np.random.default_rng(3).standard_normal((1, ix.store.binding.dim)))
    finally:
        registry.close()
    return [*keys, NO_THUMBNAIL]


def loaded_thumbnails(driver) -> int:
    return driver.execute_script(
        "return [...document.querySelectorAll('#results img.thumb-img')].filter(i => i.complete && i.naturalWidth > 0).length"
    )


def test_search_asks_for_the_key_and_shows_thumbnails(ui_server, gallery, browser, screenshots):
    from selenium.webdriver.common.by import By

    browser.get(f"{ui_server.url}/ui/search")
    browser.execute_script("sessionStorage.clear()")
    url = f"{ui_server.url}/ui/search?index={INDEX}&q=coloured+blocks&top_k=24"
    browser.get(url)
    prompt = wait(browser, lambda d: d.find_elements(By.ID, "key-prompt"), "the key prompt")[0]
    assert "needs an API key" in prompt.text
    browser.find_element(By.ID, "api-key").send_keys("a-wrong-key-0123456789")
    browser.find_element(By.ID, "api-key-submit").click()
    wait(browser, lambda d: "refused that key" in d.find_element(By.ID, "key-prompt").text, "the key refused")
    browser.find_element(By.ID, "api-key").send_keys(KEY)
    browser.find_element(By.ID, "api-key-submit").click()

    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == len(gallery), "every result")
    wait(browser, lambda d: loaded_thumbnails(d) == len(gallery) - 1, "the thumbnails")
    keys = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#results .hit .key")]
    assert sorted(keys) == sorted(gallery)
    placeholders = browser.find_elements(By.CSS_SELECTOR, "#results .thumb.placeholder")
    assert len(placeholders) == 1 and placeholders[0].text == "no thumbnail"
    card = placeholders[0].find_element(By.XPATH, "ancestor::figure")
    assert card.get_attribute("data-key") == NO_THUMBNAIL
    facts = {
        f.find_element(By.CSS_SELECTOR, ".name").text: f.find_element(By.CSS_SELECTOR, ".value").text
        for f in browser.find_elements(By.CSS_SELECTOR, "#stats .fact")
    }
    assert facts["items"] == str(len(gallery)) and facts["back end"] == "postgresql" and facts["dimension"] == "512"
    # The key went in a header: never in a URL the page loaded or called.
    urls = browser.execute_script("return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]")
    assert any("/thumbnail/" in u for u in urls) and not any(KEY in u for u in urls)
    assert browser.current_url == url
    save_screenshot(browser, screenshots, "ui-search.png")


def test_a_script_key_renders_as_text(ui_server, gallery, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{ui_server.url}/ui/search?index={INDEX}&q=blocks")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == len(gallery), "every result")
    (card,) = [c for c in browser.find_elements(By.CSS_SELECTOR, "#results .hit") if c.get_attribute("data-key") == XSS_KEY]
    assert card.find_element(By.CSS_SELECTOR, ".key").text == XSS_KEY
    card.find_element(By.CSS_SELECTOR, "button.open").click()
    details = wait(browser, lambda d: d.find_element(By.ID, "details").is_displayed() and d.find_element(By.ID, "details"), "the details")
    assert details.find_element(By.CSS_SELECTOR, "h2.key").text == XSS_KEY
    assert XSS_NOTE in details.find_element(By.CSS_SELECTOR, "pre.metadata").text
    assert browser.execute_script("return window.__xss === undefined && document.querySelectorAll('main script, main img[src=x]').length === 0")


def test_more_like_this_and_more_like_the_selected(ui_server, gallery, browser):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{ui_server.url}/ui/search?index={INDEX}&q=blocks")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == len(gallery), "every result")
    card = next(c for c in browser.find_elements(By.CSS_SELECTOR, "#results .hit") if c.get_attribute("data-key") == BLOCKS[0])
    card.find_element(By.CSS_SELECTOR, "button.open").click()
    wait(browser, lambda d: d.find_element(By.ID, "more-like").is_displayed(), "more like this")
    browser.find_element(By.ID, "more-like").click()
    wait(browser, lambda d: "similar=blocks%2F0.png" in d.current_url, "the URL of more like this")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == len(gallery) - 1, "the similar items")
    first = browser.find_element(By.CSS_SELECTOR, "#results .hit")
    assert first.get_attribute("data-key") == COPY  # the same image under another key comes first
    assert first.find_element(By.CSS_SELECTOR, ".score").text == "1.000"
    assert browser.find_element(By.ID, "status").text == f"{len(gallery) - 1} results for more like {BLOCKS[0]} in {INDEX}"

    assert not browser.find_element(By.ID, "selection").is_displayed()  # until something is selected
    picks = browser.find_elements(By.CSS_SELECTOR, "#results .hit .pick")[:2]
    chosen = [p.find_element(By.XPATH, "ancestor::figure").get_attribute("data-key") for p in picks]
    for pick in picks:
        pick.click()
    assert browser.find_element(By.ID, "selected-count").text == "2 selected"
    browser.find_element(By.ID, "by-selection").click()
    wait(browser, lambda d: d.current_url.count("like=") == 2, "the URL of the selection")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == len(gallery) - 2, "the centroid's hits")
    shown = {c.get_attribute("data-key") for c in browser.find_elements(By.CSS_SELECTOR, "#results .hit")}
    assert shown == set(gallery) - set(chosen)


def test_duplicates_side_by_side(ui_server, gallery, browser, screenshots):
    from selenium.webdriver.common.by import By

    open_page(browser, f"{ui_server.url}/ui/duplicates?index={INDEX}&threshold=0.999&limit=10")
    pair = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#pairs .pair"), "a pair")[0]
    assert [e.text for e in pair.find_elements(By.CSS_SELECTOR, ".side .key")] == sorted([BLOCKS[0], COPY])
    assert float(pair.find_element(By.CSS_SELECTOR, ".score").text) >= 0.999
    wait(browser, lambda d: len(pair.find_elements(By.CSS_SELECTOR, "img.thumb-img")) == 2, "both thumbnails")
    save_screenshot(browser, screenshots, "ui-duplicates.png")


def test_analyze_draws_the_face_box_with_only_served_tasks(ui_server, browser, screenshots, tmp_path):
    from selenium.webdriver.common.by import By

    astronaut = tmp_path / "astronaut.png"
    astronaut.write_bytes(encode(photo(), "PNG"))
    open_page(browser, f"{ui_server.url}/ui/analyze?tasks=face")
    wait(browser, lambda d: d.find_elements(By.ID, "task-face"), "the tasks")
    offered = {e.get_attribute("value") for e in browser.find_elements(By.CSS_SELECTOR, "#tasks input[type=checkbox]")}
    assert "face" in offered and "embed_clip_vit_b_32" in offered
    assert not offered & {"person", "caption", "embed_dino_v2", "embed_dino_v3"}  # their models are not served
    assert browser.find_element(By.ID, "task-face").is_selected()
    browser.find_element(By.ID, "image").send_keys(str(astronaut))
    browser.find_element(By.ID, "go").click()
    rect = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#overlay rect.box.face"), "the face box")[0]
    drawn = [float(rect.get_attribute(a)) for a in ("x", "y", "width", "height")]

    tasks = [{"operation_id": "face", "type": "detect_bounding_box", "params": {"target": "prominent_face", "face_context": "whole_image"}}]
    with httpx.Client(base_url=ui_server.url, timeout=120, headers={"X-API-Key": KEY}) as http:
        resp = http.post("/analyze", files={"image": ("astronaut.png", astronaut.read_bytes(), "image/png")}, data={"tasks": json.dumps(tasks)})
    x0, y0, x1, y1 = resp.json()["results"]["face"]["data"]
    assert drawn == [x0, y0, x1 - x0, y1 - y0]
    assert 150 < x0 < x1 < 280 and 40 < y0 < y1 < 200  # the astronaut's face, in the 512 x 512 photo
    # Drawn over the face on the page: the box's share of the shown picture is the bbox's share of the photo.
    picture = browser.find_element(By.ID, "picture").rect
    shown = rect.rect
    assert shown["x"] - picture["x"] == pytest.approx(x0 / 512 * picture["width"], abs=3)
    assert shown["width"] == pytest.approx((x1 - x0) / 512 * picture["width"], abs=4)
    crop = browser.find_element(By.CSS_SELECTOR, "#output-face canvas.crop")
    assert (int(crop.get_attribute("width")), int(crop.get_attribute("height"))) == (x1 - x0, y1 - y0)
    save_screenshot(browser, screenshots, "ui-analyze.png")
