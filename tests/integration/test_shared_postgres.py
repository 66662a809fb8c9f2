"""Two `bentoml serve` processes on one PostgreSQL, as two replicas behind a load balancer:
what one indexes the other finds; what one drops is gone for the other; and `kill -9` of one
while it is indexing loses no acknowledged item, read back through the other."""

from __future__ import annotations

import base64
import threading
import time

import httpx
import pytest

from tests.integration.conftest import start_server
from tests.integration.test_index_durability import check_acknowledged, stream
from tests.search.images import block_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def replicas(pg_server):
    """A second server on the session's PostgreSQL server's database: (new one, session's)."""
    other = start_server(IMAGE_EMBED_SEARCH_URL=pg_server.search_url)
    yield other, pg_server
    other.stop()


def test_one_index_shared_by_two_servers(replicas):
    a, b = replicas
    b64 = [base64.b64encode(block_png(s)).decode() for s in (41, 42, 43)]
    resp = httpx.post(f"{a.url}/index_images", json={"images_base64": b64, "keys": ["x", "y", "z"], "index": "shared"}, timeout=60)
    assert resp.status_code == 200 and resp.json()["indexed"] == 3
    resp = httpx.post(f"{b.url}/search_image", json={"image_base64": b64[1], "index": "shared", "top_k": 1}, timeout=60)
    assert resp.status_code == 200 and resp.json()["results"][0]["key"] == "y" and resp.json()["results"][0]["score"] > 0.9999
    assert httpx.post(f"{b.url}/delete", json={"keys": ["z"], "index": "shared"}, timeout=60).json()["deleted"] == ["z"]
    assert httpx.post(f"{a.url}/get", json={"keys": ["z"], "index": "shared"}, timeout=60).json()["missing"] == ["z"]
    assert httpx.post(f"{b.url}/drop_index", json={"index": "shared"}, timeout=60).status_code == 200
    assert httpx.post(f"{a.url}/index_stats", json={"index": "shared"}, timeout=60).status_code == 404


def test_kill_9_of_one_server_loses_no_acknowledged_item(replicas):
    a, b = replicas  # a is killed, b is the session's server (it lives on)
    acked: dict[str, int] = {}
    stop = threading.Event()
    writer = threading.Thread(target=stream, args=(a.url, acked, stop))
    writer.start()
    try:
        deadline = time.monotonic() + 120
        while len(acked) < 40 and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.05)
        a.kill()  # SIGKILL to every process of server A, mid-stream
    finally:
        stop.set()
        writer.join(60)
    assert len(acked) >= 40, a.log()
    with httpx.Client(base_url=b.url, timeout=60) as http:
        check_acknowledged(http, acked)  # through the other server
        report = http.post("/verify_index", json={"index": "stream", "sample": 0}).json()
        assert report["ok"] and report["count"] >= len(acked)
