"""The OpenAI-compatible route's rules, over the real encode path and fake runners: which
items are images, their order, the limits, base64, and the errors in OpenAI's shape."""

from __future__ import annotations

import asyncio
import base64
import json
from types import SimpleNamespace

import numpy as np
import pytest

from config.sections import GatewaySettings
from config.sections import IntakeSettings
from gateway.encode import EncodeRoutes
from gateway.images import ImageLoader
from gateway.openai_embeddings import EmbeddingsRequest, OpenAIError, OpenAIRoutes, error_response, is_image
from gateway.runner_client import RunnerClient
from intake.errors import ClientError
from tests.conftest import encode, noise_image

IMAGE = "data:image/png;base64," + base64.b64encode(encode(noise_image(64, 48), "PNG")).decode()


def vectors(prefix: float):
    """A fake runner API: row i of the answer is [prefix, i, 0, ...], normalized later by nobody."""
    async def call(batch):
        return np.array([[prefix, i] + [0.0] * 510 for i in range(len(batch))], np.float32)

    return call


@pytest.fixture
def routes():
    clip = SimpleNamespace(to_async=SimpleNamespace(encode_images=vectors(1.0), encode_texts=vectors(2.0)))
    dino = SimpleNamespace(to_async=SimpleNamespace(encode_dinov2=vectors(3.0)))
    runners = RunnerClient({"clip": clip, "dino": dino}, ["clip", "dinov2", "face"])
    limits = GatewaySettings(max_items=2, max_texts=3)
    return OpenAIRoutes(runners, EncodeRoutes(runners, ImageLoader(IntakeSettings()), limits), limits)


def embed(routes, **body):
    return asyncio.run(routes.embeddings(EmbeddingsRequest(**body)))


@pytest.mark.parametrize(
    ("item", "modality", "image"),
    [(IMAGE, None, True), ("https://example.com/a.jpg", None, False), ("a cat", None, False),
     (IMAGE, "text", False), ("https://example.com/a.jpg", "image", True), ("data:text/plain;base64,eA==", None, False)],
)
def test_which_items_are_images(item, modality, image):
    assert is_image(item, modality) is image


def test_texts_and_images_come_back_in_input_order(routes):
    answer = embed(routes, model="clip", input=["a", IMAGE, "b", IMAGE])
    rows = [(d["index"], d["embedding"][:2]) for d in answer["data"]]
    # texts (prefix 2) and images (prefix 1) each embedded in one call, put back in place
    assert rows == [(0, [2.0, 0.0]), (1, [1.0, 0.0]), (2, [2.0, 1.0]), (3, [1.0, 1.0])]
    assert answer["object"] == "list" and answer["model"] == "clip" and answer["usage"] == {"prompt_tokens": 0, "total_tokens": 0}
    assert {d["object"] for d in answer["data"]} == {"embedding"}


def test_base64_is_the_little_endian_float32_bytes(routes):
    floats = embed(routes, model="clip", input="a cat")["data"][0]["embedding"]
    packed = embed(routes, model="clip", input="a cat", encoding_format="base64")["data"][0]["embedding"]
    assert np.array_equal(np.frombuffer(base64.b64decode(packed), "<f4"), np.asarray(floats, np.float32))


def test_an_image_only_model_embeds_images_and_refuses_texts(routes):
    assert embed(routes, model="dinov2", input=IMAGE)["data"][0]["embedding"][0] == 3.0
    with pytest.raises(ClientError) as err:
        embed(routes, model="dinov2", input="a cat")
    assert (err.value.status, err.value.code) == (400, "model_embeds_images_only")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"model": "face", "input": "a"}, 404, "model_not_served"),  # served, but not an embedding model
        ({"model": "nope", "input": "a"}, 404, "model_not_served"),
        ({"model": "clip", "input": []}, 400, "invalid_request"),
        ({"model": "clip", "input": [1, 2]}, 400, "invalid_request"),  # token ids
        ({"model": "clip", "input": "a", "dimensions": 256}, 400, "invalid_request"),
        ({"model": "clip", "input": "a cat", "modality": "image"}, 400, "invalid_image"),
        ({"model": "clip", "input": [IMAGE] * 3}, 400, "too_many_items"),  # IMAGE_EMBED_MAX_ITEMS
        ({"model": "clip", "input": ["a"] * 4}, 400, "too_many_items"),  # IMAGE_EMBED_MAX_TEXTS
        ({"model": "clip", "input": "data:image/png;base64,AAAA"}, 415, "unsupported_image_format"),  # the intake's own
    ],
)
def test_refusals(routes, body, status, code):
    with pytest.raises(ClientError) as err:
        embed(routes, **body)
    assert (err.value.status, err.value.code) == (status, code)


def test_errors_have_openais_shape():
    resp = error_response(400, "input[1]: not an image", "invalid_image", "input")
    assert json.loads(resp.body) == {
        "error": {"message": "input[1]: not an image", "type": "invalid_request_error", "param": "input", "code": "invalid_image"}
    }
    assert json.loads(error_response(503, "busy", "model_unavailable").body)["error"]["type"] == "server_error"
    assert isinstance(OpenAIError("x"), ClientError)


def test_models_lists_the_served_embedding_models_and_what_they_take(routes):
    listed = routes.models()
    assert listed["object"] == "list"
    assert [(m["id"], m["object"], m["modalities"]) for m in listed["data"]] == [
        ("clip", "model", ["text", "image"]), ("dinov2", "model", ["image"])
    ]
