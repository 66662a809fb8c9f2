"""Seed 000's routes over HTTP: POST /embedding/fast_extract (DINOv2 ViT-g/14: dinov2_giant) and
/embedding/test_extract (InternViT) with {"url"} -> {"embedding", "url"}, and GET / as its
health check. URLs come from a loopback image server admitted by this server's allow-list
alone; every other address is refused by the intake, before any connection."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from models import get_spec
from tests.conftest import encode, noise_image, photo
from tests.integration.conftest import start_server
from tests.localhttp import LocalHTTPServer

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG")
PORTRAIT = encode(noise_image(301, 500, seed=5), "PNG")  # odd margins: DINOv2's floor-rounded crop


@pytest.fixture(scope="module")
def images():
    with LocalHTTPServer() as local:
        yield local


@pytest.fixture(scope="module")
def seed_server(tiny_models, images):
    srv = start_server(IMAGE_EMBED_URL_ALLOWLIST=f"127.0.0.1:{images.port}", IMAGE_EMBED_FETCH_TIMEOUT="3")
    yield srv
    srv.stop()


@pytest.fixture()
def http(seed_server):
    with httpx.Client(base_url=seed_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def dinov2_reference():
    """transformers' own pipeline (PIL backend processor + Dinov2Model + pooler_output) on the
    server's stored folder."""
    import torch
    from transformers import AutoImageProcessor, AutoModel

    from models.store import model_dir

    folder = str(model_dir(get_spec("dinov2_giant")))  # seed 000's model, not `dinov2`
    processor = AutoImageProcessor.from_pretrained(folder, backend="pil")
    model = AutoModel.from_pretrained(folder).eval()

    def vector(data: bytes) -> np.ndarray:
        pixel_values = processor(images=Image.open(io.BytesIO(data)).convert("RGB"), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            return torch.nn.functional.normalize(model(pixel_values=pixel_values).pooler_output, dim=-1)[0].numpy()

    return vector


@pytest.mark.parametrize("data", [JPEG, PORTRAIT], ids=["jpeg", "portrait-png"])
def test_fast_extract_is_dinov2_giant(http, images, dinov2_reference, data):
    url = images.serve(f"img-{len(data)}", data)
    resp = http.post("/embedding/fast_extract", json={"url": url})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"embedding", "url"} and body["url"] == url
    embedding = np.asarray(body["embedding"], dtype=np.float32)
    assert embedding.shape == (get_spec("dinov2_giant").output_dim,) != (get_spec("dinov2").output_dim,)
    assert np.abs(embedding - dinov2_reference(data)).max() < 1e-5


def test_test_extract_is_the_simple_internvit_extractor(http, images):
    url = images.serve("astronaut.jpg", JPEG)
    resp = http.post("/embedding/test_extract", json={"url": url})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"embedding", "url"} and body["url"] == url
    by_upload = http.post("/encode_internvit", files={"image": ("a.jpg", JPEG, "image/jpeg")}).json()
    np.testing.assert_array_equal(body["embedding"], by_upload)


def test_root_is_the_health_check(http):
    resp = http.get("/")
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    assert {"fast_extract", "test_extract"} <= set(resp.json()["apis"])


@pytest.mark.parametrize("route", ["/embedding/fast_extract", "/embedding/test_extract"])
@pytest.mark.parametrize(
    "target", ["http://10.1.1.1/a.jpg", "http://169.254.169.254/latest/meta-data/", "http://[::1]:3000/", "file:///etc/passwd"]
)
def test_private_and_non_http_urls_are_refused(http, images, route, target):
    before = len(images.requests)
    resp = http.post(route, json={"url": target})
    assert resp.status_code == 400 and resp.json()["error"] == "url_not_allowed", resp.text
    assert len(images.requests) == before


@pytest.mark.parametrize("route", ["/embedding/fast_extract", "/embedding/test_extract"])
def test_redirects_to_private_addresses_are_refused(http, images, route):
    resp = http.post(route, json={"url": images.url("/redirect?to=http://169.254.169.254/")})
    assert resp.status_code == 400 and resp.json()["error"] == "url_not_allowed"


@pytest.mark.parametrize("route", ["/embedding/fast_extract", "/embedding/test_extract"])
def test_size_and_time_limits(http, images, route):
    resp = http.post(route, json={"url": images.url("/stream?size=5000000")})
    assert resp.status_code == 413 and resp.json()["error"] == "image_too_large"
    resp = http.post(route, json={"url": images.url("/slow?seconds=30")})
    assert resp.status_code == 400 and resp.json()["error"] == "url_timeout"


@pytest.mark.parametrize("route", ["/embedding/fast_extract", "/embedding/test_extract"])
def test_missing_or_empty_url(http, route):
    assert http.post(route, json={}).status_code == 400
    resp = http.post(route, json={"url": ""})
    assert resp.status_code == 400 and resp.json()["error"] == "missing_image"
    resp = http.post(route, json={"url": 42})
    assert resp.status_code == 400


def test_bentoml_client_as_the_readme_shows(seed_server, images):
    import bentoml

    url = images.serve("client.jpg", JPEG)
    with bentoml.SyncHTTPClient(seed_server.url, timeout=60) as client:
        dinov2 = client.fast_extract(url=url)
        internvit = client.test_extract(url=url)
    assert dinov2["url"] == internvit["url"] == url
    assert len(dinov2["embedding"]) == get_spec("dinov2_giant").output_dim
    assert len(internvit["embedding"]) == get_spec("internvit").output_dim
