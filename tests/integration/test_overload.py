"""Overload is a fast refusal, never a crash or a hang: a burst far above the configured traffic
limits gets 429 (gateway full) or 503 (runner full, `model_unavailable` with Retry-After), the
rest succeed, and the server serves normally right after.

The server here runs with tiny limits (a configuration file of its own): the gateway takes 4
requests at a time, the InternViT runner 2.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
import yaml

from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BURST = 64
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def tight_server(tiny_models, tmp_path_factory):
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    config["services"]["image_embed"]["traffic"]["max_concurrency"] = 4
    config["services"]["internvit_runner"]["traffic"]["max_concurrency"] = 2
    path = tmp_path_factory.mktemp("overload") / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = start_server(BENTOML_CONFIG=str(path))
    yield srv
    srv.stop()


async def burst(base_url: str) -> tuple[Counter, dict[int, list[dict]]]:
    statuses: Counter = Counter()
    bodies: dict[int, list[dict]] = {}

    async def one(client: httpx.AsyncClient, i: int) -> None:
        route = "/encode_internvit_levels" if i % 2 else "/encode_internvit"
        try:
            resp = await client.post(route, files={"image": ("a.jpg", JPEG, "image/jpeg")})
        except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
            statuses[type(exc).__name__] += 1
            return
        statuses[resp.status_code] += 1
        if resp.status_code != 200:
            bodies.setdefault(resp.status_code, []).append({**resp.json(), "retry_after": resp.headers.get("retry-after")})

    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client, i) for i in range(BURST)))
    return statuses, bodies


def test_a_burst_gets_fast_refusals_and_the_server_recovers(tight_server):
    started = time.monotonic()
    statuses, bodies = asyncio.run(burst(tight_server.url))
    elapsed = time.monotonic() - started
    print(f"\nburst of {BURST} in {elapsed:.1f} s: {dict(statuses)}")

    assert sum(statuses.values()) == BURST
    assert set(statuses) <= {200, 429, 503}, f"{dict(statuses)}\n{tight_server.log(40)}"
    assert statuses[200] >= 1, "nothing got through"
    assert statuses[429] >= BURST // 2, "the gateway's max_concurrency did not refuse the excess"
    for body in bodies.get(503, []):
        assert body["error"] == "model_unavailable" and body["retry_after"] == "1"
    assert tight_server.process.poll() is None, "the server died"

    with httpx.Client(base_url=tight_server.url, timeout=60) as client:
        for route in ("/encode_internvit", "/encode_internvit_levels", "/encode_image"):
            resp = client.post(route, files={"image": ("a.jpg", JPEG, "image/jpeg")})
            assert resp.status_code == 200, resp.text
        assert client.get("/health").json()["status"] == "healthy"


def test_the_deployed_configuration_sets_traffic_limits():
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())["services"]
    for name in ("image_embed", "clip_runner", "dino_runner", "internvit_runner"):
        traffic = config[name]["traffic"]
        assert traffic["timeout"] > 0 and traffic["max_concurrency"] > 0, name
    runners = [config[n]["traffic"] for n in ("clip_runner", "dino_runner", "internvit_runner")]
    assert all(r["timeout"] < config["image_embed"]["traffic"]["timeout"] for r in runners)
