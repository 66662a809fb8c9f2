"""Under 32 concurrent clients sending 500 requests: zero 5xx, and batches really form.

This is the regression test for BentoML's session recycling behind `bentoml.depends()`
(every 100 requests it closed the session under in-flight requests -> HTTP 500).
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest

from tests.conftest import encode, noise_image, photo
from tests.integration.metrics import batch_stats

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CLIENTS = 32
REQUESTS = 500
IMAGES = [encode(photo(), "JPEG"), encode(noise_image(320, 240, seed=1), "PNG"), encode(noise_image(200, 300, 2), "JPEG")]


async def load(base_url: str) -> Counter:
    statuses: Counter = Counter()
    counter = iter(range(REQUESTS))

    async def client_loop(client: httpx.AsyncClient) -> None:
        for i in counter:
            files = {"image": (f"{i}.img", IMAGES[i % len(IMAGES)], "application/octet-stream")}
            try:
                resp = await client.post("/encode_image", files=files)
                statuses[resp.status_code] += 1
            except httpx.HTTPError as exc:
                statuses[type(exc).__name__] += 1

    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(CLIENTS)))
    return statuses


def test_500_requests_from_32_clients(server):
    before = batch_stats(server.url, "clip_runner", "encode_images")
    statuses = asyncio.run(load(server.url))
    after = batch_stats(server.url, "clip_runner", "encode_images")

    assert sum(statuses.values()) == REQUESTS
    assert statuses == Counter({200: REQUESTS}), f"statuses: {dict(statuses)}\n{server.log(40)}"

    batches = after["count"] - before["count"]
    merged_requests = after["sum"] - before["sum"]
    single_request_batches = after["le_1"] - before["le_1"]
    assert merged_requests == REQUESTS
    assert batches < REQUESTS, "every request ran alone: adaptive batching never merged any"
    assert single_request_batches < batches, "no batch held more than one request"
    print(f"\n{REQUESTS} requests ran in {batches:.0f} batches (mean {merged_requests / batches:.1f} requests/batch)")
