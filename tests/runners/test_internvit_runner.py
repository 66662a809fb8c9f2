"""The InternViT runner (runners/define.py) in-process: one batchable API for images and views, the spec's batch
limits, the weights declared for `bentoml build`, and the views-per-forward metric."""

from __future__ import annotations

import numpy as np
import pytest

from config.sections import LevelSettings
from models import get_spec
from models.preprocess import prepare_images
from models.views import prepare_views
from runners.services import runner_service
from tests.conftest import noise_image, photo

SPEC = get_spec("internvit")


@pytest.fixture(scope="module")
def runner(tiny_models):
    return runner_service("internvit").inner()


def test_service_declaration():
    InternVitRunner = runner_service("internvit")
    assert InternVitRunner.name == "internvit_runner"
    assert [str(m.tag) for m in InternVitRunner.models] == [SPEC.store_tag, SPEC.onnx_store_tag]
    method = InternVitRunner.apis["encode_images"]
    limits = SPEC.batch_limits("encode_images", "cpu")
    assert method.batchable and method.batch_dim == (0, 0)
    assert (method.max_batch_size, method.max_latency_ms) == (limits.max_batch_size, limits.max_latency_ms)
    assert limits.max_batch_size >= LevelSettings().n_views  # one three-level request fits one forward


def test_views_of_two_images_in_one_batch_equal_each_alone(runner):
    settings = LevelSettings()
    a, _ = prepare_views(photo(), SPEC, settings)
    b, _ = prepare_views(noise_image(640, 360, seed=1), SPEC, settings)
    together = runner.encode_images(np.concatenate([a, b]))
    assert together.shape == (12, SPEC.output_dim) and together.dtype == np.float32
    alone = np.concatenate([runner.encode_images(a), runner.encode_images(b)])
    assert np.abs(together - alone).max() < 1e-5


def test_forward_sizes_are_recorded(runner):
    from prometheus_client import REGISTRY

    def count_and_sum():
        labels = {"runner": "internvit", "method": "encode_images"}
        return tuple(REGISTRY.get_sample_value(f"image_embed_batch_items_{k}", labels) or 0 for k in ("count", "sum"))

    before = count_and_sum()
    runner.encode_images(prepare_images([photo(), photo(), noise_image(100, 100)], SPEC))
    after = count_and_sum()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 3)


def test_info(runner):
    info = runner.info()
    assert info["store_tag"] == SPEC.store_tag and info["embedding_size"] == SPEC.output_dim
    assert "patch tokens" in info["pooling"] and "CLS token excluded" in info["pooling"]
    assert info["batching"]["encode_images"]["max_batch_size"] == SPEC.batch_limits("encode_images", "cpu").max_batch_size
