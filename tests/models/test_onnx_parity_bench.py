"""ONNX engine parity at real size: the bench profile's ViT-B/32 (open_clip's architecture,
seeded random weights), image and text towers, on real photographs and random images.

The bench model is imported once for this module (about 25 s with its graphs; marked slow) and
removed after it. DINOv2, DINOv3 and InternViT at real size are checked by the engines benchmark
(`python -m bench --scenario engines`, docs/performance.md): importing them here would
cost minutes of CI time.
"""

from __future__ import annotations

import dataclasses

import pytest

from models import get_spec
from models.device import CPU
from models.onnx_engine import PRECISIONS, OnnxModel
from models.preprocess import prepare_images
from models.store import import_spec, model_dir, onnx_dir, remove
from tests.models.engine_cases import max_abs_and_min_cosine, neighbours_agreement, parity_images, search_set

pytestmark = pytest.mark.slow
TEXTS = ["a photo of an astronaut", "a cat on a sofa", "a cup of coffee", "a rocket on its launch pad"]


@pytest.fixture(scope="module")
def bench_clip(bentoml_home):
    """(spec, torch ClipModel, {precision: OnnxModel}) of a bench ViT-B/32, in the session's store
    while this module runs. Its own seed, so its store tag is not the bench profile's (other tests
    check that the profile's models are absent)."""
    from models.clip import ClipModel

    spec = dataclasses.replace(get_spec("clip", "bench"), seed=12)
    import_spec(spec)
    yield spec, ClipModel(spec, model_dir(spec), CPU), {p: OnnxModel(spec, onnx_dir(spec), CPU, p) for p in PRECISIONS}
    remove(spec)


@pytest.fixture(scope="module")
def image_embeddings(bench_clip):
    spec, torch_model, onnx = bench_clip
    batch = prepare_images(parity_images(), spec)
    return torch_model.encode_images(batch), {p: m.encode_images(batch) for p, m in onnx.items()}


def test_fp32_image_tower_equals_torch(image_embeddings):
    reference, onnx = image_embeddings
    diff, cosine = max_abs_and_min_cosine(onnx["fp32"], reference)
    assert diff <= 1e-4 and cosine >= 0.99999, (diff, cosine)


def test_int8_image_tower_is_close_on_every_image(image_embeddings):
    _, onnx = image_embeddings
    _, cosine = max_abs_and_min_cosine(onnx["int8"], onnx["fp32"])
    assert cosine >= 0.999, cosine


def test_text_tower(bench_clip):
    _, torch_model, onnx = bench_clip
    reference = torch_model.encode_texts(TEXTS)
    diff, cosine = max_abs_and_min_cosine(onnx["fp32"].encode_texts(TEXTS), reference)
    assert diff <= 1e-4 and cosine >= 0.99999, (diff, cosine)
    _, cosine = max_abs_and_min_cosine(onnx["int8"].encode_texts(TEXTS), onnx["fp32"].encode_texts(TEXTS))
    assert cosine >= 0.999, cosine


def test_int8_finds_the_same_neighbours(bench_clip):
    """Top-10 neighbours of each of 48 images (photographs, their crops and variants, noise)."""
    spec, _, onnx = bench_clip
    batch = prepare_images(search_set(), spec)
    shared, total = neighbours_agreement(onnx["int8"].encode_images(batch), onnx["fp32"].encode_images(batch))
    print(f"bench ViT-B/32 int8 vs fp32: {shared}/{total} top-10 neighbours agree")
    assert shared >= 0.9 * total, (shared, total)
