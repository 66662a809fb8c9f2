"""image_embed_queue_seconds on a served runner: every request that reached the CLIP runner's
batching queue is observed once, under its runner and API, in the gateway's /metrics."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import encode, noise_image
from tests.integration.metrics import histogram

pytestmark = pytest.mark.integration
N = 12


def test_queue_time_of_each_request_reaches_metrics(server):
    name = "image_embed_queue_seconds"
    images_before = histogram(server.url, name, runner="clip", method="encode_images")
    texts_before = histogram(server.url, name, runner="clip", method="encode_texts")
    images = [encode(noise_image(64, 48, seed=i), "PNG") for i in range(N)]

    def one(i: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/encode_image", files={"image": (f"{i}.png", images[i], "image/png")}).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(one, range(N))) == [200] * N
    assert httpx.post(f"{server.url}/encode_text", json={"text": "a cat"}, timeout=60).status_code == 200

    images_after = histogram(server.url, name, runner="clip", method="encode_images")
    texts_after = histogram(server.url, name, runner="clip", method="encode_texts")
    assert images_after["count"] - images_before["count"] == N
    assert images_after["sum"] >= images_before["sum"]
    assert texts_after["count"] - texts_before["count"] == 1
    text = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'{name}_bucket{{' in text and 'le="0.001"' in text
