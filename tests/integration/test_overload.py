"""Overload is a fast refusal, never a crash or a hang: a burst far above the configured traffic
limits gets 429 (gateway full: `overloaded`) or 503 (runner full: `model_unavailable`), both
with Retry-After and the gateway's JSON shape, the rest succeed, no 5xx but those 503s, the
access log records every refusal, probes answer during the burst, and the server serves
normally right after.

The server here runs with tiny limits: the gateway admits 4 requests at a time
(IMAGE_EMBED_MAX_IN_FLIGHT), the InternViT runner 2 (a configuration file of its own).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import pytest
import yaml

from config.sections import GatewaySettings
from tests.conftest import ROOT, encode, photo
from tests.integration.conftest import start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BURST = 64
GATEWAY_LIMIT = 4
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def tight_server(tiny_models, tmp_path_factory):
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())
    config["services"]["internvit_runner"]["traffic"]["max_concurrency"] = 2
    path = tmp_path_factory.mktemp("overload") / "configuration.yaml"
    path.write_text(yaml.safe_dump(config))
    srv = start_server(BENTOML_CONFIG=str(path), IMAGE_EMBED_MAX_IN_FLIGHT=str(GATEWAY_LIMIT))
    yield srv
    srv.stop()


async def burst(base_url: str) -> tuple[Counter, list[dict], list[int]]:
    """BURST requests at once, and probes among them. Returns statuses (or exception names),
    every refusal (status, body, Retry-After) and the probes' statuses."""
    statuses: Counter = Counter()
    refusals: list[dict] = []
    probes: list[int] = []

    async def one(client: httpx.AsyncClient, i: int) -> None:
        route = "/encode_internvit_levels" if i % 2 else "/encode_internvit"
        try:
            resp = await client.post(
                route, files={"image": ("a.jpg", JPEG, "image/jpeg")}, headers={"X-Request-ID": f"burst-{i}"}
            )
        except httpx.HTTPError as exc:  # a hang (timeout) or a dropped connection
            statuses[type(exc).__name__] += 1
            return
        statuses[resp.status_code] += 1
        if resp.status_code != 200:
            try:
                body = resp.json()
            except ValueError:
                body = {"unparsable": resp.text[:200]}
            refusals.append({"status": resp.status_code, "body": body, "retry_after": resp.headers.get("retry-after")})

    async def probe(client: httpx.AsyncClient) -> None:
        await asyncio.sleep(0.05)  # once the burst is under way
        for path in ("/livez", "/readyz", "/metrics"):
            probes.append((await client.get(path)).status_code)

    limits = httpx.Limits(max_connections=BURST + 4, max_keepalive_connections=BURST + 4)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await asyncio.gather(probe(client), *(one(client, i) for i in range(BURST)))
    return statuses, refusals, probes


def logged_refusals(server, expected: int, wait_s: float = 10.0) -> int:
    """How many of the burst's 429s the access log holds (a line is written just after its
    response is sent: wait a little for the last ones)."""
    deadline = time.monotonic() + wait_s
    while True:
        count = 0
        for line in server.log_path.read_text(errors="replace").splitlines():
            if line.startswith('{"ts"'):
                record = json.loads(line)
                count += record["request_id"].startswith("burst-") and record["status"] == 429
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


def test_a_burst_gets_fast_refusals_and_the_server_recovers(tight_server):
    started = time.monotonic()
    statuses, refusals, probes = asyncio.run(burst(tight_server.url))
    print(f"\nburst of {BURST} in {time.monotonic() - started:.1f} s: {dict(statuses)}")  # speed: bench/load.py

    assert sum(statuses.values()) == BURST
    assert set(statuses) <= {200, 429, 503}, f"{dict(statuses)}\n{tight_server.log(40)}"
    assert statuses[200] >= 1, "nothing got through"
    assert statuses[429] >= BURST // 2, "the gateway's admission limit did not refuse the excess"
    expected_code = {429: "overloaded", 503: "model_unavailable"}
    for refusal in refusals:
        assert refusal["retry_after"] == "1", refusal
        assert refusal["body"].get("error") == expected_code[refusal["status"]], refusal
        assert isinstance(refusal["body"].get("detail"), str) and refusal["body"]["detail"], refusal
    assert probes == [200, 200, 200], "probes must pass while the gateway is full"
    assert tight_server.process.poll() is None, "the server died"

    # Every refusal answered by our middleware is in the access log (BentoML's own limit was not).
    logged_429 = logged_refusals(tight_server, statuses[429])
    assert logged_429 == statuses[429], f"{logged_429} logged 429s for {statuses[429]} answered"

    with httpx.Client(base_url=tight_server.url, timeout=60) as client:
        for route in ("/encode_internvit", "/encode_internvit_levels", "/encode_image"):
            resp = client.post(route, files={"image": ("a.jpg", JPEG, "image/jpeg")})
            assert resp.status_code == 200, resp.text
        assert client.get("/health").json()["status"] == "healthy"


def test_the_deployed_configuration_sets_traffic_limits():
    config = yaml.safe_load((ROOT / "configuration.yaml").read_text())["services"]
    for name in ("clip_runner", "dino_runner", "internvit_runner"):
        traffic = config[name]["traffic"]
        assert traffic["timeout"] > 0 and traffic["max_concurrency"] > 0, name
    runners = [config[n]["traffic"] for n in ("clip_runner", "dino_runner", "internvit_runner")]
    assert all(r["timeout"] < config["image_embed"]["traffic"]["timeout"] for r in runners)
    # The gateway's own admission limit must be the one that acts: BentoML's, if set, above it.
    bentoml_limit = config["image_embed"]["traffic"].get("max_concurrency")
    assert bentoml_limit is None or bentoml_limit > GatewaySettings().max_in_flight
