"""Image URLs end to end, against a loopback image server admitted by the allow-list of a
server started for this module alone (short fetch timeout)."""

from __future__ import annotations

import bentoml
import httpx
import numpy as np
import pytest

from tests.conftest import encode, photo
from tests.integration.conftest import start_server
from tests.localhttp import LocalHTTPServer

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG")


@pytest.fixture(scope="module")
def images():
    with LocalHTTPServer() as local:
        yield local


@pytest.fixture(scope="module")
def allowed(tiny_models, images):
    srv = start_server(IMAGE_EMBED_URL_ALLOWLIST=f"127.0.0.1:{images.port}", IMAGE_EMBED_FETCH_TIMEOUT="3")
    yield srv
    srv.stop()


@pytest.fixture()
def http(allowed):
    with httpx.Client(base_url=allowed.url, timeout=60) as client:
        yield client


def test_url_equals_upload(http, images):
    url = images.serve("astronaut.jpg", JPEG)
    by_url = http.post("/encode_image", json={"url": url})
    by_upload = http.post("/encode_image", files={"image": ("a.jpg", JPEG, "image/jpeg")})
    assert by_url.status_code == 200, by_url.text
    np.testing.assert_array_equal(by_url.json(), by_upload.json())


def test_client_with_url(allowed, images):
    url = images.serve("astronaut.jpg", JPEG)
    with bentoml.SyncHTTPClient(allowed.url) as client:
        assert len(client.encode_image(url=url)) == 512


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "http://[::1]:3000/", "http://10.1.1.1/"])
def test_redirect_to_a_private_address_is_refused(http, images, target):
    before = len(images.requests)
    resp = http.post("/encode_image", json={"url": images.url(f"/redirect?to={target}")})
    assert resp.status_code == 400 and resp.json()["error"] == "url_not_allowed"
    assert len(images.requests) == before + 1  # the redirect itself, nothing after it


def test_the_allow_list_is_pinned_to_its_port(http, allowed):
    resp = http.post("/encode_image", json={"url": f"{allowed.url}/health"})
    assert resp.status_code == 400 and resp.json()["error"] == "url_not_allowed"


def test_a_url_that_never_answers_times_out(http, images):
    resp = http.post("/encode_image", json={"url": images.url("/slow?seconds=30")})
    assert resp.status_code == 400
    assert resp.json()["error"] == "url_timeout"


def test_download_over_the_cap(http, images):
    resp = http.post("/encode_image", json={"url": images.url("/stream?size=5000000")})
    assert resp.status_code == 413 and resp.json()["error"] == "image_too_large"


def test_http_error_from_the_image_host(http, images):
    resp = http.post("/encode_image", json={"url": images.url("/file?name=missing.jpg")})
    assert resp.status_code == 400 and "HTTP 404" in resp.json()["detail"]


def test_encode_images_mixes_good_and_refused_urls(http, images):
    good = images.serve("astronaut.jpg", JPEG)
    resp = http.post("/encode_images", json={"urls": [good, "http://169.254.169.254/", good]})
    results = resp.json()["results"]
    assert [r["error"] is None for r in results] == [True, False, True]
    assert results[1]["error"]["error"] == "url_not_allowed"
    assert results[0]["embedding"] == results[2]["embedding"]


def test_seed_002_analyze_image_by_url(http, images):
    """POST /analyze_image/ (seed 002): the URL is fetched once and echoed as image_url."""
    url = images.serve("person.jpg", JPEG)
    before = len(images.requests)
    tasks = [
        {"operation_id": "whole", "type": "embed_clip_vit_b_32", "params": {"target": "whole_image"}},
        {"operation_id": "face", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_face", "face_context": "whole_image"}},
        {"operation_id": "box", "type": "detect_bounding_box", "params": {"target": "prominent_face", "face_context": "whole_image"}},
    ]
    resp = http.post("/analyze_image/", json={"image_url": url, "tasks": tasks})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["image_url"] == url and len(images.requests) == before + 1
    assert {r["status"] for r in body["results"].values()} == {"success"}
    assert body["results"]["face"]["cropped_image_bbox"] == body["results"]["box"]["data"]
    by_upload = http.post("/encode_image", files={"image": ("a.jpg", JPEG, "image/jpeg")}).json()
    np.testing.assert_allclose(body["results"]["whole"]["data"], by_upload, atol=1e-6)


def test_unlisted_host_names_are_refused_under_the_allowlist_policy(http):
    # The session's servers run with IMAGE_EMBED_URL_POLICY=allowlist: a made-up name is
    # refused before any DNS lookup, so no test can make the server reach the outside world.
    resp = http.post("/encode_image", json={"url": "http://images.example.com/cat.jpg"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "url_not_allowed"
    assert "IMAGE_EMBED_URL_POLICY=allowlist" in body["detail"]
