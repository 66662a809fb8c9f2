"""The DINO runner (runners/define.py) in-process: every DINO model (dinov2, dinov2_giant, dinov3) in one service,
the agreed API names and shapes, the batching limits of the spec, and the weights declared for
`bentoml build`."""

from __future__ import annotations

import numpy as np
import pytest

from models import get_spec
from models.device import CPU
from models.dino import DinoModel
from models.preprocess import prepare_images
from models.store import entries, model_dir
from runners.services import runner_service
from tests.conftest import noise_image, photo

KEYS = ("dinov2", "dinov2_giant", "dinov3")


@pytest.fixture(scope="module")
def runner(tiny_models):
    return runner_service("dino").inner()  # the class behind the service: same __init__, no server


def test_service_declaration():
    DinoRunner = runner_service("dino")
    assert DinoRunner.name == "dino_runner"
    assert {str(m.tag) for m in DinoRunner.models} == {tag for key in KEYS for tag in entries(get_spec(key))}
    assert DinoRunner.config["runner_connection"]["max_requests"] > 10**9  # the session-recycling fix
    for key in KEYS:
        method = DinoRunner.apis[f"encode_{key}"]
        limits = get_spec(key).batch_limits("encode_images", "cpu")
        assert method.batchable and method.batch_dim == (0, 0)
        assert (method.max_batch_size, method.max_latency_ms) == (limits.max_batch_size, limits.max_latency_ms)


@pytest.mark.parametrize("key", KEYS)
def test_encode_apis_equal_the_model(runner, key):
    api = f"encode_{key}"
    spec = get_spec(key)
    batch = prepare_images([photo(), noise_image(300, 200, seed=1), noise_image(90, 400, seed=2)], spec)
    got = getattr(runner, api)(batch)
    assert got.dtype == np.float32 and got.shape == (3, spec.output_dim)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    expected = DinoModel(spec, model_dir(spec), CPU).encode_images(batch)
    assert np.abs(got - expected).max() < 1e-6


def test_the_models_differ(runner):
    pixels = prepare_images([photo()], get_spec("dinov2"))
    assert not np.allclose(runner.encode_dinov2(pixels), runner.encode_dinov3(pixels), atol=1e-3)
    giant = runner.encode_dinov2_giant(pixels)
    assert giant.shape == (1, get_spec("dinov2_giant").output_dim) != runner.encode_dinov2(pixels).shape


def test_info(runner):
    info = runner.info()
    assert info["key"] == "dino" and info["device"] == "cpu" and info["profile"] == "tiny"
    assert list(info["models"]) == list(KEYS)
    for key in KEYS:
        spec = get_spec(key)
        entry = info["models"][key]
        assert entry["store_tag"] == spec.store_tag and entry["embedding_size"] == spec.output_dim
        assert "CLS" in entry["pooling"] and entry["weights"] == "random (seeded)"
        assert entry["batching"][f"encode_{key}"]["max_batch_size"] == spec.batch_limits("encode_images", "cpu").max_batch_size
