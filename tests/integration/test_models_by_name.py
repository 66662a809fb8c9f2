"""CLIP models by name beside `clip`, the model chosen per request, zero-shot ranking, an index
bound to its model, and a model added by its catalog file alone: one real `bentoml serve`
(tests/integration/catalog_entry.py) serving clip, dinov2, a ViT-L/14 and an RN50x16 tiny twin
(IMAGE_EMBED_EXTRA_CLIP) and the test-only dinov2_small_test."""

from __future__ import annotations

import json

import httpx
import numpy as np
import psutil
import pytest

from models import get_spec
from models.store import model_dir
from tests.clip_reference import OpenClipReference
from tests.conftest import encode, noise_image, photo
from tests.integration.catalog_entry import DIMS, RN, TEST_MODEL, VIT_L, extra_clip_spec

pytestmark = pytest.mark.integration
JPEG = encode(photo(), "JPEG", quality=90)
PNG = encode(noise_image(300, 180, seed=4), "PNG")  # landscape: the center crop
CLIPS = ("clip", VIT_L, RN)
TOL = 1e-5


@pytest.fixture()
def http(named_models):
    with httpx.Client(base_url=named_models.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def references(named_models):
    """open_clip on each CLIP's stored folder (the session's model store, shared with the server)."""
    specs = {"clip": get_spec("clip"), VIT_L: extra_clip_spec(VIT_L), RN: extra_clip_spec(RN)}
    return {key: OpenClipReference(model_dir(spec)) for key, spec in specs.items()}


def vector(http, model: str | None, data: bytes = JPEG) -> np.ndarray:
    resp = http.post("/encode_image", files={"image": ("x", data)}, data={} if model is None else {"model": model})
    assert resp.status_code == 200, resp.text
    return np.asarray(resp.json(), np.float32)


def test_each_model_runs_in_its_own_runner_side_by_side(named_models, http):
    services = set()
    for proc in psutil.Process(named_models.process.pid).children(recursive=True):
        cmd = proc.cmdline()
        if "--service-name" in cmd:
            services.add(cmd[cmd.index("--service-name") + 1])
    runners = {"clip", VIT_L, RN, "dino", TEST_MODEL}
    assert services == {f"{r}_runner" for r in runners} | {"image_embed", "index_runner"}
    health = http.get("/health").json()
    assert health["status"] == "healthy" and set(health["models"]) == runners | {"index"}
    assert health["models"][VIT_L]["model"] == "ViT-L-14/openai" and health["models"][RN]["embedding_size"] == 768
    assert health["model"] == "ViT-B/32" and health["embedding_size"] == 512  # seed 001's fields: still clip


@pytest.mark.parametrize("data", [JPEG, PNG], ids=["photo", "landscape"])
def test_model_per_request_equals_open_clip_on_the_same_weights(http, references, data):
    vectors = {model: vector(http, model, data) for model in CLIPS}
    for model, got in vectors.items():
        assert got.shape == (DIMS[model],)
        assert np.abs(got - references[model].images([data])[0]).max() < TOL, model
    assert np.abs(vectors[VIT_L] - vectors[RN]).max() > 1e-3  # two models, two answers
    assert np.array_equal(vector(http, None, data), vectors["clip"])  # the default is clip, unchanged


def test_texts_per_model_equal_open_clip(http, references):
    texts = ["a photo of an astronaut", "ein Hund im Schnee"]
    for model in CLIPS:
        one = http.post("/encode_text", json={"text": texts[0], "model": model})
        many = http.post("/encode_texts", json={"texts": texts, "model": model})
        assert one.status_code == many.status_code == 200, (one.text, many.text)
        expected = references[model].texts(texts)
        assert np.abs(np.asarray(many.json()) - expected).max() < TOL
        assert np.abs(np.asarray(one.json()) - expected[0]).max() < TOL


def test_encode_images_names_the_model(http):
    resp = http.post("/encode_images", files=[("images", ("a.jpg", JPEG))], data={"model": RN})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["model"], body["dim"], len(body["results"][0]["embedding"])) == ("RN50x16/openai", 768, 768)


def test_unknown_or_unserved_models_are_404_naming_the_served_ones(http):
    for model in ("nope", "internvit", "face"):
        resp = http.post("/encode_image", files={"image": ("x", JPEG)}, data={"model": model})
        assert resp.status_code == 404, resp.text
        body = resp.json()
        assert body["error"] == "model_not_served" and f"the {model} model" in body["detail"]
        assert f"clip, {RN}, {VIT_L}, dinov2, {TEST_MODEL}" in body["detail"]
    refused = http.post("/encode_text", json={"text": "a cat", "model": "dinov2"})
    assert refused.status_code == 400 and refused.json()["error"] == "model_embeds_images_only"


@pytest.mark.parametrize("model", ["clip", VIT_L])
def test_rank_equals_open_clips_zero_shot(http, references, model):
    texts = ["a photo of an astronaut", "a dog", "a red car", "static noise"]
    resp = http.post("/rank", files={"image": ("x", JPEG)}, data={"texts": json.dumps(texts), "model": model})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    scores, probs = references[model].zero_shot(JPEG, texts)
    ranked = body["results"]
    assert [r["index"] for r in ranked] == list(np.argsort(-scores, kind="stable"))  # best first
    for r in ranked:
        assert r["text"] == texts[r["index"]]
        assert abs(r["score"] - scores[r["index"]]) < TOL and abs(r["probability"] - probs[r["index"]]) < TOL
    assert abs(body["logit_scale"] - float(references[model].model.logit_scale.detach().exp())) < 1e-6


def test_an_index_stays_bound_to_the_model_it_was_created_with(http, references):
    created = http.post("/index_images", files={"images": ("astronaut.jpg", JPEG)}, data={"index": "by-rn", "model": RN})
    assert created.status_code == 200 and created.json()["model"] == "RN50x16/openai", created.text
    stats = http.post("/index_stats", json={"index": "by-rn"}).json()
    assert (stats["model"], stats["dimension"]) == (extra_clip_spec(RN).store_tag, 768)
    more = http.post("/index_images", files={"images": ("noise.png", PNG)}, data={"index": "by-rn"})  # no model: the index's
    assert more.status_code == 200 and more.json()["indexed"] == 1, more.text
    found = http.post("/search_text", json={"query": "a photo of an astronaut", "index": "by-rn"}).json()["results"]
    expected = references[RN].texts(["a photo of an astronaut"])[0] @ references[RN].images([JPEG])[0]
    hit = next(h for h in found if h["key"] == "astronaut.jpg")
    assert abs(hit["score"] - expected) < 1e-4  # the query was embedded by the index's model
    same = http.post("/search_image", files={"image": ("x", JPEG)}, data={"index": "by-rn"}).json()["results"]
    assert same[0]["key"] == "astronaut.jpg" and same[0]["score"] > 0.9999
    other = http.post("/index_images", files={"images": ("a.jpg", JPEG)}, data={"index": "by-rn", "model": "clip"})
    assert other.status_code == 409 and other.json()["error"] == "index_model_mismatch"


def test_analyze_embeds_with_the_named_clip(http):
    tasks = [
        {"operation_id": "default", "type": "embed_clip_vit_b_32"},
        {"operation_id": "named", "type": "embed_clip", "params": {"model": VIT_L}},
        {"operation_id": "test", "type": f"embed_{TEST_MODEL}"},
    ]
    resp = http.post("/analyze", files={"image": ("x", JPEG)}, data={"tasks": json.dumps(tasks)})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert np.allclose(results["default"]["data"], vector(http, None), atol=1e-6)
    assert np.allclose(results["named"]["data"], vector(http, VIT_L), atol=1e-6)
    assert np.allclose(results["test"]["data"], vector(http, TEST_MODEL), atol=1e-6)
    refused = http.post("/analyze", files={"image": ("x", JPEG)},
                        data={"tasks": json.dumps([{"operation_id": "x", "type": "embed_clip", "params": {"model": "dinov2"}}])})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_task"


def test_a_model_added_by_its_catalog_file_is_served_listed_and_callable(http):
    """docs/development.md, "Adding a model": the catalog file, the import, nothing else."""
    listed = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert listed[TEST_MODEL]["dimensions"] == 24 and listed[TEST_MODEL]["modalities"] == ["image"]
    ops = http.get("/available_operations/").json()["operations"]
    assert ops[f"embed_{TEST_MODEL}"]["description"] == "Generates an embedding using the test-only DINOv2 ViT-S/14."
    assert [m["key"] for m in http.get("/").json()["models"] if m["key"] == TEST_MODEL] == [TEST_MODEL]
    got = vector(http, TEST_MODEL)
    assert got.shape == (24,) and abs(np.linalg.norm(got) - 1) < 1e-5
    info = http.get("/health").json()["models"][TEST_MODEL]
    assert info["key"] == TEST_MODEL and info["engine"] == "onnx"  # its graphs came with the import
