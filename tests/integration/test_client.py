"""Every API through BentoML's own Python client, as the README shows it."""

from __future__ import annotations

import base64
from pathlib import Path

import bentoml
import numpy as np
import pytest

from tests.conftest import encode, noise_image, photo

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(server):
    with bentoml.SyncHTTPClient(server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("client") / "astronaut.jpg"
    path.write_bytes(encode(photo(), "JPEG"))
    return path


def test_encode_image_with_a_path(client, image_file):
    vector = client.encode_image(image=image_file)
    assert len(vector) == 512
    assert abs(np.linalg.norm(vector) - 1) < 1e-5


def test_encode_image_with_base64(client, image_file):
    b64 = base64.b64encode(image_file.read_bytes()).decode()
    np.testing.assert_array_equal(client.encode_image(image_base64=b64), client.encode_image(image=image_file))


def test_encode_images(client, image_file, tmp_path):
    other = tmp_path / "noise.png"
    other.write_bytes(encode(noise_image(64, 64), "PNG"))
    result = client.encode_images(images=[image_file, other])
    assert [r["source"] for r in result["results"]] == ["upload:astronaut.jpg", "upload:noise.png"]
    assert all(r["error"] is None and len(r["embedding"]) == 512 for r in result["results"])


def test_encode_text_and_texts(client):
    one = client.encode_text(text="a photo of an astronaut")
    many = client.encode_texts(texts=["a photo of an astronaut", "a cat"])
    assert len(one) == 512 and len(many) == 2
    np.testing.assert_allclose(many[0], one, atol=1e-6)


def test_embed_image(client, image_file):
    result = client.embed_image(file=image_file)
    assert result["model"] == "CLIP-ViT-B/32" and len(result["embedding"]) == 512


def test_client_errors_carry_the_reason(client, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(bentoml.exceptions.BentoMLException) as err:
        client.encode_image(image=bad)
    assert err.value.error_code == 415
    assert "PDF" in str(err.value)


def test_encode_images_with_a_failing_item(client, image_file, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    result = client.encode_images(images=[image_file, bad])
    ok, failed = result["results"]
    assert ok["error"] is None and len(ok["embedding"]) == 512
    assert failed["embedding"] is None
    assert failed["error"]["error"] == "unsupported_image_format"
