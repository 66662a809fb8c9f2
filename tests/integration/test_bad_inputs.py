"""Bad inputs over HTTP: each one a clear 4xx JSON error, and the server keeps serving."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import encode, noise_image, photo
from tests.integration.conftest import TEST_LIMITS
from tests.intake.test_decode import png_claiming

pytestmark = pytest.mark.integration

MAX_IMAGE = int(TEST_LIMITS["IMAGE_EMBED_MAX_IMAGE_BYTES"])
MAX_BODY = int(TEST_LIMITS["IMAGE_EMBED_MAX_BODY_BYTES"])
JPEG = encode(photo(), "JPEG")


def upload(http, data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg"):
    return http.post("/encode_image", files={"image": (name, data, content_type)})


def assert_refused(resp, status: int, code: str | None = None, mentions: str | None = None):
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error", "detail"}, body
    if code is not None:
        assert body["error"] == code, body
    if mentions is not None:
        assert mentions in body["detail"], body


def test_empty_body(http):
    assert_refused(http.post("/encode_image", content=b""), 400, "missing_image")


def test_empty_upload(http):
    assert_refused(upload(http, b""), 400, "empty_image")


def test_random_bytes(http):
    assert_refused(upload(http, np.random.default_rng(0).bytes(50_000)), 415, "unsupported_image_format")


def test_truncated_jpeg(http):
    assert_refused(upload(http, JPEG[: len(JPEG) // 3]), 400, "corrupt_image", "JPEG")


def test_png_claiming_30000_by_30000(http):
    assert_refused(upload(http, png_claiming(30000, 30000), "bomb.png", "image/png"), 413, "image_too_large", "30000x30000")


def test_one_pixel_image(http):
    assert_refused(upload(http, encode(noise_image(1, 1), "PNG")), 400, "image_too_small")


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"><circle r="40"/></svg>', "SVG"),
        (encode(noise_image(64, 64), "TIFF"), "TIFF"),
        (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", "PDF"),
    ],
)
def test_other_formats_disguised_as_jpeg(http, data, name):
    assert_refused(upload(http, data, "photo.jpg", "image/jpeg"), 415, "unsupported_image_format", name)


def test_upload_over_the_image_cap(http):
    data = b"\xff\xd8\xff" + b"\x00" * (MAX_IMAGE + 1)
    assert_refused(upload(http, data), 413, "image_too_large")


def test_body_over_the_request_cap(http):
    assert_refused(upload(http, b"\x00" * (MAX_BODY + 1)), 413, "request_too_large")


def test_chunked_body_over_the_request_cap(http):
    def chunks():
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"\x00" * 65536

    resp = http.post("/encode_image", content=chunks(), headers={"Content-Type": "application/octet-stream"})
    assert_refused(resp, 413, "request_too_large")


def test_base64_over_the_image_cap(http):
    resp = http.post("/encode_image", json={"image_base64": "A" * (MAX_IMAGE * 4 // 3 + 8)})
    assert_refused(resp, 413, "image_too_large")


def test_invalid_base64(http):
    assert_refused(http.post("/encode_image", json={"image_base64": "not base64!"}), 400, "invalid_base64")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/a.jpg",
        "http://[::1]/a.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.jpg",
        "http://192.168.0.1/a.jpg",
        "http://2130706433/a.jpg",
        "http://localhost:3000/",
        "http://[::ffff:127.0.0.1]/a.jpg",
    ],
)
def test_private_urls(http, url):
    assert_refused(http.post("/encode_image", json={"url": url}), 400, "url_not_allowed")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://example.com/", "data:,x"])
def test_other_schemes(http, url):
    assert_refused(http.post("/encode_image", json={"url": url}), 400, "url_not_allowed", "only http and https")


def test_url_in_a_file_field_is_not_fetched(http):
    # Unpatched, BentoML would try to download this itself (and fail differently: its own guard
    # blocks loopback); the gateway accepts uploads only in file fields. Loopback only, so a
    # regression can never make the server fetch a real address.
    resp = http.post("/encode_image", files={"image": (None, "http://127.0.0.1:9/a.jpg")})
    assert resp.status_code == 400
    assert resp.json()["detail"][0]["type"] == "upload_required"


def test_json_path_in_a_file_field_is_not_read(http):
    resp = http.post("/encode_image", json={"image": "/etc/hostname"})
    assert resp.status_code == 400


def test_malformed_json(http):
    resp = http.post("/encode_image", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400


def test_wrong_types(http):
    assert http.post("/encode_text", json={"text": 42}).status_code == 400
    assert http.post("/encode_texts", json={"texts": "not a list"}).status_code == 400


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("multipart/form-data", b""), ("multipart/form-data; boundary=abc", b"--abc\r\n[]--abc--\r\n")],
)
def test_unparseable_multipart(http, content_type, body):
    resp = http.post("/encode_images", content=body, headers={"Content-Type": content_type})
    assert resp.status_code == 400
    assert resp.json()["detail"][0]["type"] == "malformed_multipart"


def test_server_still_serves_after_bad_inputs(http):
    assert http.get("/health").json()["status"] == "healthy"
    resp = upload(http, JPEG)
    assert resp.status_code == 200 and len(resp.json()) == 512
