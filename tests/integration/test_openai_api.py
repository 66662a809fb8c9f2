"""The OpenAI-compatible API with OpenAI's own Python client against a real `bentoml serve`
(the session's `named_models` server): texts, images as data URIs and as URLs of a loopback
server admitted by the allow-list, base64, image-only models, and the clients' exceptions."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import encode, noise_image, photo
from tests.integration.catalog_entry import DIMS, RN, TEST_MODEL, VIT_L

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG", quality=90)
PNG = encode(noise_image(300, 180, seed=4), "PNG")


def data_uri(data: bytes, kind: str) -> str:
    return f"data:image/{kind};base64," + base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def client(named_models):
    with openai.OpenAI(base_url=f"{named_models.url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def http(named_models):
    with httpx.Client(base_url=named_models.url, timeout=120) as c:
        yield c


def encode_image(http, model: str, data: bytes) -> np.ndarray:
    resp = http.post("/encode_image", files={"image": ("x", data)}, data={"model": model})
    assert resp.status_code == 200, resp.text
    return np.asarray(resp.json(), np.float32)


def test_models_lists_every_served_embedding_model(client):
    models = {m.id: m for m in client.models.list()}
    assert set(models) == {"clip", "dinov2", VIT_L, RN, TEST_MODEL}
    assert models["clip"].object == "model" and models["clip"].owned_by == "image-embed"


@pytest.mark.parametrize("model", ["clip", VIT_L, RN])
def test_texts_and_data_uri_images_equal_the_encode_routes(client, http, model):
    answer = client.embeddings.create(model=model, input=["a photo of an astronaut", data_uri(JPEG, "jpeg")])
    assert answer.object == "list" and answer.model == model and [d.index for d in answer.data] == [0, 1]
    text = http.post("/encode_text", json={"text": "a photo of an astronaut", "model": model}).json()
    assert np.abs(np.asarray(answer.data[0].embedding) - text).max() < 1e-6
    assert np.abs(np.asarray(answer.data[1].embedding) - encode_image(http, model, JPEG)).max() < 1e-6
    assert len(answer.data[1].embedding) == DIMS[model]


def test_urls_of_an_allowed_server_are_images_with_modality_image(client, http, images_server):
    urls = [images_server.serve("openai-photo.jpg", JPEG), images_server.serve("openai-noise.png", PNG)]
    answer = client.embeddings.create(model=VIT_L, input=urls, extra_body={"modality": "image"})
    for item, data in zip(answer.data, (JPEG, PNG)):
        assert np.abs(np.asarray(item.embedding) - encode_image(http, VIT_L, data)).max() < 1e-6
    as_text = client.embeddings.create(model=VIT_L, input=urls[0])  # no modality: a URL is a text
    text = http.post("/encode_text", json={"text": urls[0], "model": VIT_L}).json()
    assert np.abs(np.asarray(as_text.data[0].embedding) - text).max() < 1e-6


def test_base64_decodes_to_the_float_vector(client):
    inputs = ["a red car", data_uri(PNG, "png")]
    floats = client.embeddings.create(model="clip", input=inputs, encoding_format="float")
    packed = client.embeddings.create(model="clip", input=inputs, encoding_format="base64")
    for f, p in zip(floats.data, packed.data):
        assert isinstance(p.embedding, str)
        assert np.array_equal(np.frombuffer(base64.b64decode(p.embedding), "<f4"), np.asarray(f.embedding, np.float32))
    default = client.embeddings.create(model="clip", input=inputs)  # the client's own default, decoded by it
    assert np.allclose([d.embedding for d in default.data], [f.embedding for f in floats.data], atol=1e-7)


@pytest.mark.parametrize("model", ["dinov2", TEST_MODEL])
def test_an_image_only_model_embeds_images(client, http, model):
    answer = client.embeddings.create(model=model, input=data_uri(JPEG, "jpeg"))
    assert np.abs(np.asarray(answer.data[0].embedding) - encode_image(http, model, JPEG)).max() < 1e-6
    assert len(answer.data[0].embedding) == DIMS[model]


def test_text_to_an_image_only_model_is_a_bad_request(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="dinov2", input="a cat")
    assert err.value.code == "model_embeds_images_only" and "embeds images only" in err.value.message
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["param"] == "input"


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.embeddings.create(model="text-embedding-3-small", input="a cat")
    assert err.value.code == "model_not_served" and err.value.body["param"] == "model"
    assert "it serves clip" in err.value.message


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input": ["a cat", "data:image/png;base64,%%%"]},  # not base64
        {"input": "not an image", "extra_body": {"modality": "image"}},
        {"input": "https://example.com/a.jpg", "extra_body": {"modality": "image"}},  # not on the allow-list
        {"input": [[1, 2, 3]]},  # token ids
    ],
)
def test_bad_inputs_are_bad_requests(client, kwargs):
    with pytest.raises(openai.BadRequestError) as err:
        client.embeddings.create(model="clip", **kwargs)
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["message"]


def test_a_malformed_body_gets_openais_error_shape(http):
    resp = http.post("/v1/embeddings", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and set(resp.json()["error"]) == {"message", "type", "param", "code"}
    resp = http.post("/v1/embeddings", json={"model": "clip"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "input"
