"""Authentication end to end: a server started with API keys, raw HTTP and BentoML's client."""

from __future__ import annotations

import json
import time
from pathlib import Path

import bentoml
import httpx
import pytest

from tests.conftest import encode, photo
from tests.integration.conftest import start_server

pytestmark = pytest.mark.integration
KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def secured(tiny_models):
    srv = start_server(IMAGE_EMBED_API_KEYS=KEY)
    yield srv
    srv.stop()


def test_every_route_but_the_probes_needs_the_key(secured):
    with httpx.Client(base_url=secured.url, timeout=60) as http:
        for path in ("/livez", "/readyz"):
            assert http.get(path).status_code == 200
        for method, path in (("GET", "/health"), ("GET", "/"), ("GET", "/metrics"), ("GET", "/docs.json"), ("POST", "/encode_text")):
            resp = http.request(method, path, json={"text": "a"} if method == "POST" else None)
            assert resp.status_code == 401, path
        ok = http.post("/encode_text", json={"text": "a"}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and len(ok.json()) == 512


def test_python_client_with_token(secured, tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(encode(photo(), "JPEG"))
    with bentoml.SyncHTTPClient(secured.url, token=KEY) as client:
        assert len(client.encode_image(image=Path(image))) == 512


def access_lines(server, request_id: str, wait_s: float = 10.0) -> list[dict]:
    """The access-log lines of one request (written just after its response is sent)."""
    deadline = time.monotonic() + wait_s
    while True:
        lines = [json.loads(line) for line in server.log(2000).splitlines() if line.startswith('{"ts"')]
        mine = [line for line in lines if line.get("request_id") == request_id]
        if mine or time.monotonic() > deadline:
            return mine
        time.sleep(0.2)


def test_access_log_lines_carry_no_secrets(secured):
    httpx.get(f"{secured.url}/health?token=leaky", headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "req-42"})
    mine = access_lines(secured, "req-42")
    assert mine and mine[0]["path"] == "/health" and mine[0]["status"] == 200
    assert KEY not in secured.log(2000) and "leaky" not in secured.log(2000)
