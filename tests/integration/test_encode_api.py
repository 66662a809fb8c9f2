"""The encode APIs over raw HTTP: multipart, JSON, base64, per-item errors, seed shapes."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.conftest import encode, noise_image, photo

pytestmark = pytest.mark.integration

JPEG = encode(photo(), "JPEG")
PNG = encode(noise_image(300, 200, seed=3), "PNG")


def vec(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def encode_upload(http, data: bytes, name: str = "a.jpg") -> np.ndarray:
    resp = http.post("/encode_image", files={"image": (name, data, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    return vec(resp.json())


def test_encode_image_is_seed_004s_bare_list(http):
    resp = http.post("/encode_image", files={"image": ("astronaut.jpg", JPEG, "image/jpeg")})
    assert resp.status_code == 200
    body = resp.json()
    assert isinstance(body, list) and len(body) == 512
    assert all(isinstance(x, float) for x in body)
    assert abs(np.linalg.norm(body) - 1.0) < 1e-5


def test_base64_and_data_url_equal_the_upload(http):
    uploaded = encode_upload(http, JPEG)
    b64 = base64.b64encode(JPEG).decode()
    for payload in (b64, f"data:image/jpeg;base64,{b64}"):
        resp = http.post("/encode_image", json={"image_base64": payload})
        assert resp.status_code == 200, resp.text
        np.testing.assert_array_equal(vec(resp.json()), uploaded)


def test_different_images_give_different_vectors(http):
    a, b = encode_upload(http, JPEG), encode_upload(http, PNG, "b.png")
    assert float(a @ b) < 0.999


def test_content_type_and_file_name_do_not_matter(http):
    as_png = encode_upload(http, PNG, "b.png")
    resp = http.post("/encode_image", files={"image": ("photo.gif", PNG, "application/octet-stream")})
    np.testing.assert_array_equal(vec(resp.json()), as_png)


def test_encode_images_keeps_order_and_isolates_failures(http):
    b64 = base64.b64encode(PNG).decode()
    files = [("images", ("one.jpg", JPEG, "image/jpeg")), ("images", ("broken.jpg", b"not an image", "image/jpeg"))]
    data = {"images_base64": json.dumps([b64, "%%%"])}
    resp = http.post("/encode_images", files=files, data=data)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == "ViT-B/32" and body["dim"] == 512
    results = body["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["source"] for r in results] == ["upload:one.jpg", "upload:broken.jpg", "base64[0]", "base64[1]"]
    assert results[1]["embedding"] is None and results[1]["error"]["error"] == "unsupported_image_format"
    assert results[3]["embedding"] is None and results[3]["error"]["error"] == "invalid_base64"
    np.testing.assert_allclose(vec(results[0]["embedding"]), encode_upload(http, JPEG), atol=1e-6)
    np.testing.assert_allclose(vec(results[2]["embedding"]), encode_upload(http, PNG), atol=1e-6)


def test_encode_images_json_body(http):
    b64 = base64.b64encode(JPEG).decode()
    resp = http.post("/encode_images", json={"images_base64": [b64, b64]})
    results = resp.json()["results"]
    assert len(results) == 2 and results[0]["embedding"] == results[1]["embedding"]


def test_encode_images_needs_at_least_one(http):
    resp = http.post("/encode_images", json={})
    assert resp.status_code == 400 and resp.json()["error"] == "missing_image"


def test_encode_images_limit(http):
    b64 = base64.b64encode(encode(noise_image(20, 20), "PNG")).decode()
    resp = http.post("/encode_images", json={"images_base64": [b64] * 65})
    assert resp.status_code == 400 and resp.json()["error"] == "too_many_items"


def test_text_embeddings(http):
    one = http.post("/encode_text", json={"text": "an astronaut in a white suit"})
    assert one.status_code == 200 and len(one.json()) == 512
    many = http.post("/encode_texts", json={"texts": ["an astronaut in a white suit", "a cat"]})
    assert many.status_code == 200
    vectors = vec(many.json())
    assert vectors.shape == (2, 512)
    np.testing.assert_allclose(vectors[0], vec(one.json()), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    ("body", "code"),
    [({"text": "   "}, "empty_text"), ({"text": "x" * 10_001}, "text_too_long")],
)
def test_bad_texts(http, body, code):
    resp = http.post("/encode_text", json=body)
    assert resp.status_code == 400 and resp.json()["error"] == code


def test_empty_texts_violate_the_schema(http):
    for path, body in (("/encode_text", {"text": ""}), ("/encode_texts", {"texts": []}), ("/encode_texts", {"texts": [""]})):
        resp = http.post(path, json=body)
        assert resp.status_code == 400
        assert resp.json()["detail"][0]["type"] in ("string_too_short", "too_short")


def test_encode_texts_limits(http):
    assert http.post("/encode_texts", json={"texts": ["a"] * 257}).json()["error"] == "too_many_items"


def test_embed_image_is_seed_001s_shape(http):
    resp = http.post("/embed-image", files={"file": ("a.jpg", JPEG, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"embedding", "model", "device"}
    assert body["model"] == "CLIP-ViT-B/32" and body["device"] == "cpu"
    np.testing.assert_array_equal(vec(body["embedding"]), encode_upload(http, JPEG))


def test_exactly_one_image_source(http):
    none = http.post("/encode_image", json={})
    assert none.status_code == 400 and none.json()["error"] == "missing_image"
    both = http.post(
        "/encode_image",
        files={"image": ("a.jpg", JPEG, "image/jpeg")},
        data={"image_base64": base64.b64encode(JPEG).decode()},
    )
    assert both.status_code == 400 and both.json()["error"] == "ambiguous_image"
