"""The analyze engine with fake model backends: every operation x target, shared work done
once, concurrency, and each task's failure isolated in its own result."""

from __future__ import annotations

import asyncio
import base64
import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gateway.analyze.classifiers import ClassifierStore
from gateway.analyze.context import AnalysisContext
from gateway.analyze.engine import run_tasks
from gateway.analyze.operations import OPERATIONS, validate_tasks
from gateway.analyze.schemas import AnalysisTask
from gateway.errors import RunnerUnavailable
from intake.errors import ClientError
from models import get_spec
from tests.gateway.analyze.fakes import FACE_IN_PERSON, FACE_OUTSIDE, PERSON, FakeBackends, scene
from tests.gateway.analyze.test_classifiers import write_classifier

EMBEDDERS = {"embed_clip_vit_b_32": "clip", "embed_dino_v2": "dinov2", "embed_dino_v3": "dinov3", "embed_clip": "clip"}
TARGETS = ["whole_image", "prominent_person", "prominent_face"]


def close(box, expected, tol=2):
    return box is not None and all(abs(a - b) <= tol for a, b in zip(box, expected))


def analyze(tasks, img=None, backends=None, classifiers_dir: Path | None = None):
    backends = backends or FakeBackends()
    store = ClassifierStore(classifiers_dir or Path("/nonexistent-classifiers"))
    valid = validate_tasks([AnalysisTask(**t) for t in tasks], 32)

    async def go():
        return await run_tasks(AnalysisContext(img or scene(), backends, store), valid)

    return asyncio.run(go()), backends


def crop_of(result) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(result.cropped_image_base64))).convert("RGB"))


def expected_bbox(target, face_context="prominent_person"):
    if target == "whole_image":
        return None
    if target == "prominent_person":
        return PERSON
    return FACE_IN_PERSON if face_context == "prominent_person" else FACE_OUTSIDE


@pytest.mark.parametrize("target", ["prominent_person", "prominent_face"])
@pytest.mark.parametrize("face_context", ["prominent_person", "whole_image"])
def test_detect_bounding_box(target, face_context):
    results, _ = analyze([{"operation_id": "b", "type": "detect_bounding_box", "params": {"target": target, "face_context": face_context}}])
    r = results["b"]
    assert r.status == "success" and r.error_message is None
    assert close(r.data, expected_bbox(target, face_context))
    assert r.cropped_image_bbox is None and r.cropped_image_base64 is None  # seed 002: no crop for detection


def test_detect_bounding_box_without_a_person_or_face_is_null():
    results, _ = analyze(
        [
            {"operation_id": "p", "type": "detect_bounding_box"},
            {"operation_id": "f", "type": "detect_bounding_box", "params": {"target": "prominent_face"}},
        ],
        img=scene(person=False, faces=False),
    )
    assert [(r.status, r.data) for r in results.values()] == [("success", None), ("success", None)]


@pytest.mark.parametrize("op", [*EMBEDDERS, "classify", "describe_image"])
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("face_context", ["prominent_person", "whole_image"])
def test_every_operation_on_every_target(op, target, face_context, tmp_path):
    write_classifier(tmp_path, "5", get_spec("clip", "tiny").store_tag)
    params = {"target": target, "face_context": face_context}
    params.update({"classify": {"collection_id": 5}, "describe_image": {"max_length": 12}}.get(op, {}))
    img = scene()
    results, backends = analyze([{"operation_id": "t", "type": op, "params": params}], img=img, classifiers_dir=tmp_path)
    r = results["t"]
    assert r.status == "success", r.error_message
    bbox = expected_bbox(target, face_context)
    if bbox is None:
        assert r.cropped_image_bbox is None and r.cropped_image_base64 is None
    else:
        assert close(r.cropped_image_bbox, bbox)
        np.testing.assert_array_equal(crop_of(r), np.asarray(img.crop(tuple(r.cropped_image_bbox))))
    if op in EMBEDDERS:
        key = EMBEDDERS[op]
        assert len(r.data) == get_spec(key, "tiny").output_dim and abs(np.linalg.norm(r.data) - 1) < 1e-5 and backends.calls[key] == 1
    elif op == "classify":
        assert set(r.data) == {"is_in_collection", "probability"} and 0 <= r.data["probability"] <= 1
        assert r.data["is_in_collection"] == (r.data["probability"] >= 0.5) and backends.calls["clip"] == 1
    else:
        assert r.data.startswith("12: mean colour") and backends.captions == [((1, 384, 384, 3), 12)]
    assert backends.calls["person"] == (target != "whole_image" and (target == "prominent_person" or face_context == "prominent_person"))


def test_person_target_falls_back_to_the_whole_image():
    img = scene(person=False)
    results, _ = analyze([{"operation_id": "e", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_person"}},
                          {"operation_id": "w", "type": "embed_clip_vit_b_32"}], img=img)
    assert results["e"].status == "success" and results["e"].cropped_image_bbox is None
    assert results["e"].data == results["w"].data


@pytest.mark.parametrize("op", ["embed_clip_vit_b_32", "embed_dino_v2", "classify", "describe_image"])
def test_face_target_without_a_face_is_skipped_and_the_rest_succeed(op, tmp_path):
    write_classifier(tmp_path, "5", get_spec("clip", "tiny").store_tag)
    params = {"target": "prominent_face", **({"collection_id": 5} if op == "classify" else {})}
    results, backends = analyze(
        [{"operation_id": "f", "type": op, "params": params}, {"operation_id": "ok", "type": "embed_clip_vit_b_32"}],
        img=scene(faces=False),
        classifiers_dir=tmp_path,
    )
    assert results["f"].status == "skipped" and "no face found" in results["f"].error_message
    assert results["f"].data is None and results["ok"].status == "success"


def test_shared_work_is_done_once_per_request(tmp_path):
    """Four tasks on the person, three on the face, classify and embed of one region: one call each."""
    write_classifier(tmp_path, "1", get_spec("clip", "tiny").store_tag)
    tasks = [
        {"operation_id": "p1", "type": "detect_bounding_box"},
        {"operation_id": "p2", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_person"}},
        {"operation_id": "p3", "type": "describe_image", "params": {"target": "prominent_person"}},
        {"operation_id": "p4", "type": "embed_dino_v2", "params": {"target": "prominent_person"}},
        {"operation_id": "f1", "type": "detect_bounding_box", "params": {"target": "prominent_face"}},
        {"operation_id": "f2", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_face"}},
        {"operation_id": "c1", "type": "classify", "params": {"target": "prominent_face", "collection_id": 1}},
        {"operation_id": "w1", "type": "embed_clip_vit_b_32"},
    ]
    results, backends = analyze(tasks, classifiers_dir=tmp_path)
    assert [r.status for r in results.values()] == ["success"] * 8
    assert backends.calls["person"] == 1 and backends.calls["face"] == 1
    assert backends.calls["clip"] == 3  # the person, the face (shared by f2 and c1), the whole image
    assert backends.calls["dinov2"] == backends.calls["caption"] == 1
    assert list(results) == [t["operation_id"] for t in tasks]
    assert results["p2"].cropped_image_base64 == results["p3"].cropped_image_base64 == results["p4"].cropped_image_base64


def test_independent_model_calls_run_concurrently():
    delay = 0.3
    tasks = [
        {"operation_id": "a", "type": "embed_clip_vit_b_32"},
        {"operation_id": "b", "type": "embed_dino_v2"},
        {"operation_id": "c", "type": "embed_dino_v3"},
        {"operation_id": "d", "type": "describe_image"},
        {"operation_id": "e", "type": "detect_bounding_box"},
    ]
    started = time.perf_counter()
    results, backends = analyze(tasks, backends=FakeBackends(delay=delay))
    elapsed = time.perf_counter() - started
    assert all(r.status == "success" for r in results.values())
    assert sum(backends.calls.values()) == 5
    assert elapsed < 3 * delay, f"five {delay} s calls took {elapsed:.2f} s: not concurrent"


def test_failures_stay_in_their_own_task():
    backends = FakeBackends(
        fail={
            "dinov2": RunnerUnavailable("dinov2", "overloaded, retry shortly"),
            "caption": ClientError("the caption model refused the input: bad shape"),
            "dinov3": ZeroDivisionError("a bug"),
        },
    )
    results, _ = analyze(
        [
            {"operation_id": "ok", "type": "embed_clip_vit_b_32"},
            {"operation_id": "busy", "type": "embed_dino_v2"},
            {"operation_id": "refused", "type": "describe_image"},
            {"operation_id": "bug", "type": "embed_dino_v3"},
        ],
        backends=backends,
    )
    assert results["ok"].status == "success"
    assert results["busy"].status == "error" and "dinov2 model is unavailable" in results["busy"].error_message
    assert results["refused"].status == "error" and "refused the input" in results["refused"].error_message
    assert results["bug"].status == "error" and "ZeroDivisionError" in results["bug"].error_message


def test_a_model_that_is_not_deployed_is_an_error():
    results, _ = analyze(
        [{"operation_id": "v3", "type": "embed_dino_v3"}, {"operation_id": "ok", "type": "embed_dino_v2"}],
        backends=FakeBackends(missing={"dinov3"}),
    )
    assert results["v3"].status == "error" and "not deployed" in results["v3"].error_message
    assert results["ok"].status == "success"


def test_every_registered_operation_is_covered_here():
    assert set(OPERATIONS) == {"detect_bounding_box", *EMBEDDERS, "classify", "describe_image"}


def test_embed_clip_embeds_with_the_named_clip_and_shares_the_vector_of_the_same_model():
    results, backends = analyze([
        {"operation_id": "a", "type": "embed_clip_vit_b_32"},
        {"operation_id": "b", "type": "embed_clip"},
        {"operation_id": "c", "type": "embed_clip", "params": {"model": "clip"}},
    ])
    assert results["a"].data == results["b"].data == results["c"].data
    assert backends.calls["clip"] == 1  # one vector of one model for one region


@pytest.mark.parametrize("model", ["dinov2", "nope", 3])
def test_embed_clip_refuses_a_model_that_is_not_a_clip(model):
    with pytest.raises(ClientError) as err:
        validate_tasks([AnalysisTask(operation_id="x", type="embed_clip", params={"model": model})], 32)
    assert err.value.code == "invalid_task" and "CLIP models clip" in err.value.detail


def test_classify_without_a_classifier_is_skipped_naming_the_known_ones(tmp_path):
    write_classifier(tmp_path, "1", get_spec("clip", "tiny").store_tag)
    write_classifier(tmp_path, "2", get_spec("clip", "tiny").store_tag)
    results, backends = analyze([{"operation_id": "c", "type": "classify", "params": {"collection_id": 99}}], classifiers_dir=tmp_path)
    r = results["c"]
    assert r.status == "skipped" and "collection_id 99" in r.error_message and "known: 1, 2" in r.error_message
    assert not backends.calls  # nothing was computed for it


def test_classify_refuses_a_classifier_of_another_embedding_model(tmp_path):
    write_classifier(tmp_path, "1", get_spec("clip", "default").store_tag)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "best_models.json").write_text("{")
    results, _ = analyze([{"operation_id": "c", "type": "classify", "params": {"collection_id": "1"}}], classifiers_dir=tmp_path)
    assert results["c"].status == "error" and "trained on embeddings of" in results["c"].error_message
    results, _ = analyze([{"operation_id": "c", "type": "classify", "params": {"collection_id": "1"}}], classifiers_dir=tmp_path / "broken")
    assert results["c"].status == "error" and "unreadable" in results["c"].error_message


def test_classify_uses_the_regions_clip_vector(tmp_path):
    coef, intercept = write_classifier(tmp_path, "7", get_spec("clip", "tiny").store_tag, seed=3)
    results, _ = analyze(
        [
            {"operation_id": "e", "type": "embed_clip_vit_b_32", "params": {"target": "prominent_person"}},
            {"operation_id": "c", "type": "classify", "params": {"target": "prominent_person", "collection_id": 7}},
        ],
        classifiers_dir=tmp_path,
    )
    z = float(np.dot(coef.astype(np.float64), np.asarray(results["e"].data)) + intercept)
    assert results["c"].data["probability"] == pytest.approx(1 / (1 + np.exp(-z)), rel=1e-6)
    assert results["c"].cropped_image_bbox == results["e"].cropped_image_bbox
