"""bench/engines.py (`python -m bench --scenario engines`): its per-engine settings, its
in-process measurement and parity on the tiny weights, and its ratios."""

from __future__ import annotations

import os

import pytest

from bench import engines as bench_engines


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


def test_ratios_compare_with_torch_on_the_same_images_clients_and_decoding():
    def rows(*rates):
        return [{"batch_size": 8, "images_per_s": r} for r in rates]

    def loads(**by_load):  # test_c1=5 -> 5 images/s on the test images at 1 client
        return {"loads": [{"images": k.split("_c")[0].replace("small", "224px"), "concurrency": int(k.split("_c")[1]),
                           "images_per_s": v} for k, v in by_load.items()]}

    report = {
        "in_process": {"clip": {"torch": rows(10), "onnx-fp32": rows(20, 25), "onnx-int8": rows(40)}},
        "served": {
            "torch": loads(test_c1=5, test_c32=8, small_c32=9),
            "onnx-fp32": loads(test_c1=10, test_c32=20, small_c32=22),
            "onnx-int8": loads(test_c1=12, test_c32=34, small_c32=36),
            "torch+draft": loads(test_c32=10),
            "onnx-int8+draft": loads(test_c32=35),
        },
    }
    rat = bench_engines.ratios(report)
    assert rat["served_over_torch_served"]["onnx-int8"] == {"test x1": 2.4, "test x32": 4.25, "224px x32": 4.0}
    assert rat["served_over_torch_served"]["onnx-int8+draft"] == {"test x32": 3.5}  # against torch+draft
    assert rat["served_over_in_process"]["onnx-fp32"] == {"test": pytest.approx(20 / 25), "224px": pytest.approx(22 / 25)}
    assert rat["served_over_in_process"]["onnx-int8+draft"] == {"test": pytest.approx(35 / 40)}
    assert rat["in_process_best_over_torch"] == {"torch": 1.0, "onnx-fp32": 2.5, "onnx-int8": 4.0}


def test_server_plan_loads_every_engine_then_the_draft_servers():
    args = bench_engines.parse_args(["--concurrency", "1", "8", "32"])
    plan = bench_engines.server_plan(args)
    assert [key for key, *_ in plan] == ["torch", "onnx-fp32", "onnx-int8", "torch+draft", "onnx-fp32+draft", "onnx-int8+draft"]
    key, engine, env, loads = plan[1]
    assert (engine, env, loads) == ("onnx-fp32", {}, [("test", 1), ("test", 8), ("test", 32), ("224px", 32), ("photos", 32)])
    assert plan[5][2] == {"IMAGE_EMBED_JPEG_DRAFT": "1"} and plan[5][3] == [("test", 32), ("photos", 32)]
    assert [key for key, *_ in bench_engines.server_plan(bench_engines.parse_args(["--skip-draft"]))] == list(bench_engines.ENGINES)


def test_image_sets_are_jpegs_of_the_announced_sizes():
    import io

    from PIL import Image

    sets = bench_engines.image_sets([_jpeg(640, 480), _jpeg(1920, 1080)])
    assert [Image.open(io.BytesIO(b)).size for b in sets["224px"]] == [(224, 224)] * 2
    assert [Image.open(io.BytesIO(b)).size for b in sets["photos"]] == list(bench_engines.PHOTO_SIZES) * 3
    assert all(Image.open(io.BytesIO(b)).format == "JPEG" for b in sets["224px"] + sets["photos"])


def _jpeg(w: int, h: int) -> bytes:
    from tests.conftest import encode, noise_image

    return encode(noise_image(w, h), "JPEG")


def test_draft_effect_times_both_decodes_and_compares_the_embeddings(tiny_models):
    from models import get_spec

    sets = {"test": [_jpeg(400, 300)], "photos": [_jpeg(1920, 1080), _jpeg(1280, 720)]}
    effect = bench_engines.draft_effect(get_spec("clip", "tiny"), sets)
    assert set(effect) == {"test", "photos"}
    assert effect["test"]["mean_abs_pixel_diff"] == 0 and effect["test"]["min_cosine"] >= 0.99999  # under 2x: exact
    photos = effect["photos"]
    assert photos["mean_abs_pixel_diff"] > 0 and photos["decode_resize_ms_draft"] < photos["decode_resize_ms_exact"]
    assert 0.9 < photos["min_cosine"] <= 1.0
