"""scripts/bench_engines.py (`benchmark.py --scenario engines`): its per-engine settings, its
in-process measurement and parity on the tiny weights, and its ratios."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, "scripts")
import bench_engines  # noqa: E402


def test_engine_env_sets_and_restores_the_settings(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_CPU_PRECISION", "fp32")
    monkeypatch.delenv("IMAGE_EMBED_ENGINE", raising=False)
    with bench_engines.engine_env("onnx-int8"):
        assert (os.environ["IMAGE_EMBED_ENGINE"], os.environ["IMAGE_EMBED_CPU_PRECISION"]) == ("onnx", "int8")
    assert "IMAGE_EMBED_ENGINE" not in os.environ and os.environ["IMAGE_EMBED_CPU_PRECISION"] == "fp32"


def test_bench_model_measures_every_engine_and_their_parity(tiny_models):
    from models import get_spec
    from models.preprocess import prepare_images
    from tests.models.engine_cases import parity_images

    spec = get_spec("clip", "tiny")
    speed, parity = bench_engines.bench_model(spec, prepare_images(parity_images(), spec), [1, 3], 0.01, rounds=1)
    assert set(speed) == set(bench_engines.ENGINES)
    assert [r["batch_size"] for r in speed["onnx-int8"]] == [1, 3] and speed["torch"][0]["images_per_s"] > 0
    assert parity["fp32_vs_torch_max_abs_diff"] <= 1e-4 and parity["int8_vs_fp32_min_cosine"] >= 0.995


def test_ratios_compare_with_torch_at_the_same_clients():
    def rows(*rates):
        return [{"batch_size": 8, "images_per_s": r} for r in rates]

    def loads(**by_clients):
        return {"loads": [{"concurrency": int(c[1:]), "images_per_s": v} for c, v in by_clients.items()]}

    report = {
        "in_process": {"clip": {"torch": rows(10), "onnx-fp32": rows(20, 25), "onnx-int8": rows(40)}},
        "served": {"torch": loads(c1=5, c32=8), "onnx-fp32": loads(c1=10, c32=20), "onnx-int8": loads(c1=12, c32=34)},
    }
    rat = bench_engines.ratios(report)
    assert rat["served_over_torch_served"]["onnx-int8"] == {1: 2.4, 32: 4.25}
    assert rat["served_over_in_process"]["onnx-fp32"] == pytest.approx(20 / 25)
    assert rat["in_process_best_over_torch"] == {"torch": 1.0, "onnx-fp32": 2.5, "onnx-int8": 4.0}
