"""kill -9 of the whole server while a client streams acknowledged index_images calls:
after a restart on the same data directory every acknowledged item is there with its own
vector. Also: items indexed from URLs are re-fetched and re-embedded by verify_index."""

from __future__ import annotations

import base64
import os
import tempfile
import threading
import time

import httpx
import numpy as np
import pytest

from tests.integration.conftest import start_server
from tests.localhttp import LocalHTTPServer
from tests.search.images import block_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def images():
    with LocalHTTPServer() as local:
        yield local


@pytest.fixture(scope="module")
def data_dir():
    return tempfile.mkdtemp(prefix="index-durability-")


def serve(data_dir, images):
    return start_server(IMAGE_EMBED_DATA_DIR=data_dir, IMAGE_EMBED_URL_ALLOWLIST=f"127.0.0.1:{images.port}")


def stream(url: str, acked: dict[str, int], stop: threading.Event) -> None:
    """index_images calls of 1-3 images each, until the server dies; records acknowledged keys."""
    seed = 1000
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            seeds = list(range(seed, seed + 1 + seed % 3))
            seed += len(seeds)
            keys = [f"s{s}" for s in seeds]
            b64 = [base64.b64encode(block_png(s)).decode() for s in seeds]
            try:
                resp = http.post("/index_images", json={"images_base64": b64, "keys": keys, "index": "stream"})
            except httpx.HTTPError:
                return
            if resp.status_code == 200 and resp.json()["indexed"] == len(keys):
                acked.update(zip(keys, seeds))


def embed(http, seeds) -> np.ndarray:
    b64 = [base64.b64encode(block_png(s)).decode() for s in seeds]
    out = []
    for start in range(0, len(b64), 32):
        resp = http.post("/encode_images", json={"images_base64": b64[start : start + 32]})
        out += [r["embedding"] for r in resp.json()["results"]]
    return np.asarray(out, np.float32)


def check_acknowledged(http, acked: dict[str, int], index: str = "stream") -> None:
    """Every acknowledged key is stored, holding its own image's vector (re-embedded here)."""
    keys = sorted(acked)
    got = http.post("/get", json={"keys": keys, "index": index, "with_vectors": True}).json()
    assert got["missing"] == [], "acknowledged items were lost"
    stored = np.asarray([item["vector"] for item in got["items"]], np.float32)
    fresh = embed(http, [acked[item["key"]] for item in got["items"]])
    assert np.sum(stored * fresh, axis=1).min() >= 0.999  # each key holds its own image's vector...
    assert np.all(np.argmax(stored @ fresh.T, axis=1) == np.arange(len(keys)))  # ...no other's


def test_acknowledged_adds_survive_kill_9(tiny_models, data_dir, images):
    server = serve(data_dir, images)
    acked: dict[str, int] = {}
    stop = threading.Event()
    try:
        urls = [images.serve(f"u{i}.png", block_png(500 + i)) for i in range(3)]
        resp = httpx.post(f"{server.url}/index_images", json={"urls": urls, "index": "stream"}, timeout=60)
        assert resp.json()["indexed"] == 3
        writer = threading.Thread(target=stream, args=(server.url, acked, stop))
        writer.start()
        deadline = time.monotonic() + 120
        while len(acked) < 40 and time.monotonic() < deadline and writer.is_alive():
            time.sleep(0.05)
        server.kill()  # SIGKILL to every process of the server, mid-stream
        stop.set()
        writer.join(60)
    finally:
        stop.set()
        server.stop()
    assert len(acked) >= 40, server.log()

    restarted = serve(data_dir, images)
    try:
        with httpx.Client(base_url=restarted.url, timeout=60) as http:
            check_acknowledged(http, acked)
            report = http.post("/verify_index", json={"index": "stream", "sample": 3}).json()
            assert report["ok"] and report["problems"] == [] and report["checked"] == 3  # the URL items
            assert http.get("/stats", params={"index": "stream"}).json()["count"] >= len(acked) + 3
    finally:
        restarted.stop()


def test_graceful_restart_keeps_everything(tiny_models, images):
    data_dir = tempfile.mkdtemp(prefix="index-restart-")
    server = serve(data_dir, images)
    try:
        b64 = [base64.b64encode(block_png(s)).decode() for s in range(5)]
        httpx.post(f"{server.url}/index_images", json={"images_base64": b64, "keys": list("abcde")}, timeout=60)
        httpx.post(f"{server.url}/delete", json={"keys": ["b"]}, timeout=60)
    finally:
        server.stop()  # SIGTERM: the runner checkpoints the SQLite WAL into the database on shutdown
    wal = os.path.join(data_dir, "default", "index.sqlite3-wal")
    assert os.path.exists(os.path.join(data_dir, "default", "index.sqlite3"))
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
    server = serve(data_dir, images)
    try:
        got = httpx.post(f"{server.url}/get", json={"keys": list("abcde")}, timeout=60).json()
        assert [i["key"] for i in got["items"]] == ["a", "c", "d", "e"] and got["missing"] == ["b"]
    finally:
        server.stop()
