"""SIGTERM to `bentoml serve` with requests in flight: every one of them is answered 200 (their
runners are still there: runners/shutdown.py, gateway/shutdown.py), new connections are refused
from the signal on, the server exits 0 within its grace period (`--timeout-graceful-shutdown`),
and what was indexed, right before the signal or by a request in flight, is there after a
restart on the same data directory.

Requests are kept in flight deterministically: their image URL answers late (a local server on
127.0.0.1), so the gateway is still waiting for it, and has its runner calls still to make,
when the signal comes.
"""

from __future__ import annotations

import base64
import os
import signal
import tempfile
import threading
import time

import httpx
import pytest

from tests.conftest import encode, photo
from tests.integration.conftest import start_server
from tests.localhttp import LocalHTTPServer
from tests.search.images import block_png

pytestmark = [pytest.mark.integration, pytest.mark.slow]
GRACE_S = 12  # --timeout-graceful-shutdown: the longest the gateway drains
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def images():
    with LocalHTTPServer() as local:
        local.files["a.jpg"] = JPEG
        yield local


def serve(data_dir: str, images: LocalHTTPServer):
    return start_server(
        args=("--timeout-graceful-shutdown", str(GRACE_S)),
        IMAGE_EMBED_DATA_DIR=data_dir,
        IMAGE_EMBED_URL_ALLOWLIST=f"127.0.0.1:{images.port}",
        IMAGE_EMBED_FETCH_TIMEOUT="120",  # the hanging fetch below is cut by the grace period only
    )


def post(url: str, route: str, body: dict, out: dict, name: str) -> None:
    started = time.monotonic()
    try:
        resp = httpx.post(url + route, json=body, timeout=90)
        out[name] = (resp.status_code, resp.json() if resp.status_code == 200 else resp.text, time.monotonic() - started)
    except httpx.HTTPError as exc:
        out[name] = (type(exc).__name__, str(exc), time.monotonic() - started)


def test_sigterm_answers_what_is_in_flight_refuses_the_rest_and_keeps_the_index(tiny_models, images):
    data_dir = tempfile.mkdtemp(prefix="graceful-shutdown-")
    server = serve(data_dir, images)
    results: dict[str, tuple] = {}
    refused: list[str] = []
    try:
        b64 = base64.b64encode(block_png(42)).decode()
        resp = httpx.post(
            f"{server.url}/index_images",
            json={"images_base64": [b64], "keys": ["before-sigterm"], "index": "shutdown"},
            timeout=60,
        )
        assert resp.status_code == 200 and resp.json()["indexed"] == 1, resp.text

        late = lambda seconds: images.url(f"/delayed?name=a.jpg&seconds={seconds}")  # noqa: E731
        in_flight = {
            "encode_image": ("/encode_image", {"url": late(3)}),
            "internvit_levels": ("/encode_internvit_levels", {"url": late(4)}),
            "index_images": ("/index_images", {"urls": [late(5)], "keys": ["in-flight"], "index": "shutdown"}),
            # Still waiting for its image when the grace period ends: cut, not waited for.
            "past_the_grace": ("/encode_image", {"url": images.url("/slow?seconds=100")}),
        }
        threads = [
            threading.Thread(target=post, args=(server.url, route, body, results, name))
            for name, (route, body) in in_flight.items()
        ]
        fetched_before = len(images.requests)
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30  # every request has reached the gateway: its fetch started
        while len(images.requests) < fetched_before + len(in_flight) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(images.requests) == fetched_before + len(in_flight), images.requests

        signalled = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)  # the main process only, as `docker stop` does
        time.sleep(1.0)  # the arbiter passes the signal on to the workers
        while server.process.poll() is None and time.monotonic() < signalled + 2 * GRACE_S:
            try:
                got = httpx.get(f"{server.url}/livez", timeout=5)
                refused.append(f"answered {got.status_code}")
            except httpx.ConnectError:
                refused.append("refused")
            except httpx.HTTPError as exc:
                refused.append(type(exc).__name__)
            time.sleep(0.25)
        returncode = server.process.wait(3 * GRACE_S)
        exited_after = time.monotonic() - signalled
        for t in threads:
            t.join(30)
    finally:
        server.stop()
    print(f"\nexit {returncode} {exited_after:.1f} s after SIGTERM; new connections: {set(refused)}")
    print({k: (v[0], round(v[2], 1)) for k, v in results.items()})

    # Requests in flight at the signal: answered in full.
    for name in ("encode_image", "internvit_levels", "index_images"):
        status, body, _ = results[name]
        assert status == 200, f"{name}: {status} {body}\n{server.log(40)}"
    assert len(results["encode_image"][1]) == 512
    assert set(results["internvit_levels"][1]) >= {"global", "focused", "tiles"}
    assert results["index_images"][1]["indexed"] == 1
    # The request still waiting past the grace period was cut, not waited for.
    assert results["past_the_grace"][0] != 200
    # New connections after the signal: refused, never served, never left hanging.
    assert refused and set(refused) == {"refused"}, refused
    # A clean exit within the grace period (plus the runners' own clean-up).
    assert returncode == 0, server.log(60)
    assert exited_after < GRACE_S + 15, exited_after

    restarted = serve(data_dir, images)
    try:
        got = httpx.post(
            f"{restarted.url}/get", json={"keys": ["before-sigterm", "in-flight"], "index": "shutdown"}, timeout=60
        ).json()
        assert got["missing"] == [], got
        assert sorted(item["key"] for item in got["items"]) == ["before-sigterm", "in-flight"]
    finally:
        restarted.stop()
