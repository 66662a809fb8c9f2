"""Parity: encode_image / encode_text over HTTP equal open_clip's own pipeline on the same
weights (the server's model-store folder, loaded by open_clip itself), within 1e-5, with
either engine: the session's server (ONNX Runtime, the default on CPU) and a CLIP-only server
with IMAGE_EMBED_ENGINE=torch."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.clip_reference import OpenClipReference
from tests.conftest import encode, noise_image, photo
from tests.integration.conftest import start_server

pytestmark = pytest.mark.integration
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def torch_server(tiny_models):
    srv = start_server(args=("--arg", "models=clip"), IMAGE_EMBED_ENGINE="torch")
    yield srv
    srv.stop()


@pytest.fixture(params=["onnx", "torch"])
def engine_http(request, server):
    """A client of a server whose CLIP runs on the engine `request.param`."""
    srv = server if request.param == "onnx" else request.getfixturevalue("torch_server")
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_health_says_which_engine(engine, server, request):
    srv = server if engine == "onnx" else request.getfixturevalue("torch_server")
    clip = httpx.get(f"{srv.url}/health", timeout=30).json()["models"]["clip"]
    assert (clip["engine"], clip["precision"]) == ((engine, "fp32") if engine == "onnx" else (engine, "float32"))


@pytest.fixture(scope="module")
def reference():
    """open_clip's create_model_and_transforms + tokenizer on the server's stored weights."""
    from models import get_spec
    from models.store import model_dir

    ref = OpenClipReference(model_dir(get_spec("clip")))
    return (lambda data: ref.images([data])[0]), (lambda text: ref.texts([text])[0])


@pytest.mark.parametrize(
    "data",
    [
        encode(photo(), "JPEG", quality=90),
        encode(photo().resize((640, 360)), "PNG"),  # landscape: exercises the center crop
        encode(noise_image(180, 400, seed=7), "PNG"),  # portrait, smaller than 224 on one side
        encode(noise_image(224, 224, seed=8), "WEBP", lossless=True),  # already the input size
    ],
    ids=["jpeg", "landscape-png", "portrait-png", "square-webp"],
)
def test_image_parity(engine_http, reference, data):
    resp = engine_http.post("/encode_image", files={"image": ("x", data, "application/octet-stream")})
    assert resp.status_code == 200, resp.text
    ours = np.asarray(resp.json(), dtype=np.float32)
    expected = reference[0](data)
    assert np.abs(ours - expected).max() < TOLERANCE


@pytest.mark.parametrize("text", ["a photo of an astronaut", "ein Hund im Schnee", "🐱 cat " * 40])
def test_text_parity(engine_http, reference, text):
    resp = engine_http.post("/encode_text", json={"text": text})
    assert resp.status_code == 200, resp.text
    ours = np.asarray(resp.json(), dtype=np.float32)
    assert np.abs(ours - reference[1](text)).max() < TOLERANCE
