"""runners/define.py and runners/services.py: runners built from the registry, hosting exactly
the chosen models, with the spec's batch limits per device kind and the agreed API names."""

from __future__ import annotations

import numpy as np
import pytest

from models import get_spec, list_models
from models.detection import MAX_DETECTIONS
from models.device import CPU
from models.registry import UnknownModelError
from runners import common
from models.store import entries, onnx_dir
from runners.define import define_runner, runner_info
from runners.services import RUNNER_ORDER, runner_of, runner_service, runner_services

# The runner APIs the gateway calls, per runner, with every model of the profile hosted.
API_NAMES = {
    "clip": {"encode_images", "encode_texts"},
    "dino": {"encode_dinov2", "encode_dinov2_giant", "encode_dinov3"},
    "internvit": {"encode_images"},
    "person": {"detect"},
    "face": {"detect"},
    "caption": {"caption"},
}


def hosted_tags(service) -> list[str]:
    return sorted(str(m.tag) for m in service.models)


def test_runner_of():
    assert [runner_of(k) for k in ("clip", "dinov2", "dinov2_giant", "dinov3", "internvit")] == [
        "clip", "dino", "dino", "dino", "internvit"
    ]
    with pytest.raises(UnknownModelError, match="'nope'.*'dinov2_giant'"):
        runner_of("nope")


def test_every_runner_with_all_its_models():
    services = runner_services([s.key for s in list_models()])
    assert list(services) == list(RUNNER_ORDER)
    for runner, service in services.items():
        assert service.name == f"{runner}_runner"
        assert set(service.apis) == API_NAMES[runner] | {"info"}, runner
        assert hosted_tags(service) == sorted(tag for s in list_models() if s.runner == runner for tag in entries(s))
        assert service.config["workers"] == 1
        assert service.config["traffic"]["timeout"] == common.RUNNER_TIMEOUT_S
        assert service.config["runner_connection"] == common.NO_SESSION_RECYCLING
        assert service is runner_service(runner)


def test_a_subset_hosts_only_its_models():
    services = runner_services(["dinov2"])
    assert list(services) == ["dino"]
    dino = services["dino"]
    assert set(dino.apis) == {"encode_dinov2", "info"}
    assert hosted_tags(dino) == sorted([get_spec("dinov2").store_tag, get_spec("dinov2").onnx_store_tag])
    assert dino is not runner_service("dino")


def test_the_engine_chooses_the_entries_a_runner_packs():
    """--arg engine=onnx (the lean Bento): the ONNX entries alone, no weights; torch: the weights."""
    clip, face = get_spec("clip"), get_spec("face")
    assert hosted_tags(runner_services(["clip"], "onnx")["clip"]) == [clip.onnx_store_tag]
    assert hosted_tags(runner_services(["clip"], "torch")["clip"]) == [clip.store_tag]
    assert hosted_tags(runner_services(["clip"])["clip"]) == sorted([clip.store_tag, clip.onnx_store_tag])
    assert hosted_tags(runner_services(["face"])["face"]) == [face.store_tag]  # no graphs: its weights, always


def test_order_duplicates_and_memo():
    services = runner_services(["caption", "dinov3", "clip", "dinov3", "dinov2"])
    assert list(services) == ["clip", "dino", "caption"]
    assert set(services["dino"].apis) == {"encode_dinov2", "encode_dinov3", "info"}
    again = runner_services(["dinov2", "clip", "caption", "dinov3"])
    assert all(again[r] is services[r] for r in services)


def test_unknown_keys_name_the_known_ones():
    with pytest.raises(UnknownModelError) as info:
        runner_services(["clip", "dinov9"])
    for spec in list_models():
        assert repr(spec.key) in str(info.value)


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_batch_limits_and_traffic_per_device_kind(monkeypatch, kind):
    monkeypatch.setattr(common, "device_kind", lambda: kind)
    specs = [get_spec("dinov2"), get_spec("dinov2_giant")]
    dino = define_runner("dino", specs)
    for spec in specs:
        method, limits = dino.apis[f"encode_{spec.key}"], spec.batch_limits("encode_images", kind)
        assert method.batchable and method.batch_dim == (0, 0)
        assert (method.max_batch_size, method.max_latency_ms) == (limits.max_batch_size, limits.max_latency_ms)
    assert dino.config["traffic"]["max_concurrency"] == get_spec("dinov2").max_concurrency[kind]
    assert dino.config.get("resources") == ({"gpu": common.GPU_SHARE} if kind == "cuda" else None)
    clip = define_runner("clip", [get_spec("clip")])
    for api in ("encode_images", "encode_texts"):
        limits = get_spec("clip").batch_limits(api, kind)
        assert clip.apis[api].max_batch_size == limits.max_batch_size


def test_giant_is_small_batches_on_cpu():
    limits = get_spec("dinov2_giant").batch_limits("encode_images", "cpu")
    assert 2 <= limits.max_batch_size <= 4
    assert limits.max_latency_ms < common.RUNNER_TIMEOUT_S * 1000


def test_a_runner_hosts_only_models_that_name_it():
    with pytest.raises(ValueError, match="cannot host \\['clip'\\]"):
        define_runner("dino", [get_spec("dinov2"), get_spec("clip")])
    with pytest.raises(ValueError, match="no model"):
        define_runner("dino", [])
    with pytest.raises(ValueError, match="no model of profile"):
        runner_service("nobody")


def test_api_signatures_give_io_schemas():
    """BentoML derives the schemas from the generated methods' annotations."""
    for runner in RUNNER_ORDER:
        service = runner_service(runner)
        for name, method in service.apis.items():
            assert method.input_spec.model_json_schema(), (runner, name)
        assert service.openapi_spec.asdict()["paths"]
    caption = runner_service("caption").apis["caption"].input_spec.model_json_schema()
    assert "CaptionRequest" in str(caption)
    texts = runner_service("clip").apis["encode_texts"].input_spec.model_json_schema()
    assert texts["properties"]["texts"]["items"]["type"] == "string"


class FakeFace:
    settings = {"min_face_size": 20}


class FakeClip:
    """A loaded CLIP as the info reads it: its entry's folder (the ONNX entry's here)."""

    def __init__(self, folder):
        self.model_dir = folder


def limits_of(spec, api):
    return {api: spec.batch_limits(api, "cpu")}


def test_info_of_a_one_model_runner(tiny_models):  # the store: CLIP's info reads its logit scale from its entry
    spec = get_spec("face")
    info = runner_info("face", [spec], CPU, {"face": FakeFace()}, limits_of(spec, "detect"))
    assert info["key"] == "face" and info["store_tag"] == spec.store_tag and info["device"] == "cpu"
    assert info["weights"] == spec.weights_source and info["settings"] == FakeFace.settings
    assert (info["canvas"], info["max_detections"], info["dtype"]) == (spec.input_size, MAX_DETECTIONS, "float32")
    assert info["batching"] == {"detect": vars(spec.batch_limits("detect", "cpu"))}
    clip = get_spec("clip")
    limits = {**limits_of(clip, "encode_images"), **limits_of(clip, "encode_texts")}
    info = runner_info("clip", [clip], CPU, {"clip": FakeClip(onnx_dir(clip))}, limits)
    assert info["embedding_size"] == 512 and set(info["batching"]) == {"encode_images", "encode_texts"}
    assert abs(info["logit_scale"] - 1 / 0.07) < 1e-4  # open_clip's initial temperature, in the tiny weights


def test_info_of_the_dino_runner_lists_only_its_models():
    spec = get_spec("dinov2_giant")
    limits = {"encode_dinov2_giant": spec.batch_limits("encode_images", "cpu")}
    info = runner_info("dino", [spec], CPU, {"dinov2_giant": None}, limits)
    assert info["key"] == "dino" and info["profile"] == spec.profile and list(info["models"]) == ["dinov2_giant"]
    entry = info["models"]["dinov2_giant"]
    assert entry["embedding_size"] == spec.output_dim and "CLS" in entry["pooling"]
    assert entry["store_tag"] == spec.store_tag and entry["weights"] == "random (seeded)"
    assert entry["batching"] == {"encode_dinov2_giant": vars(spec.batch_limits("encode_images", "cpu"))}


@pytest.fixture(scope="module")
def giant_runner(tiny_models):
    return runner_services(["dinov2_giant"])["dino"].inner()


def test_a_subset_runner_loads_only_its_models(giant_runner):
    from models.preprocess import prepare_images
    from tests.conftest import photo

    assert list(giant_runner.models) == ["dinov2_giant"]
    got = giant_runner.encode_dinov2_giant(prepare_images([photo(), photo()], get_spec("dinov2_giant")))
    assert got.shape == (2, 48) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert not hasattr(giant_runner, "encode_dinov2")
    assert list(giant_runner.info()["models"]) == ["dinov2_giant"]


def test_every_spec_has_the_batch_limits_its_family_apis_need():
    from models.families import family_of
    from models.specs import DEVICE_KINDS

    for profile in ("default", "tiny", "bench"):
        for spec in list_models(profile):
            for api in family_of(spec).apis:
                for kind in DEVICE_KINDS:
                    assert spec.batch_limits(api.limits, kind), (spec.key, api.name, kind)


DESCRIBE = """
import json, sys
from runners.services import runner_services
from tests.runners.test_define import describe
services = runner_services(sys.argv[1].split(","))
print(json.dumps(describe(services)))
"""


def describe(services) -> dict:
    return {r: [s.name, sorted(s.apis), sorted(str(m.tag) for m in s.models), s.config] for r, s in services.items()}


def test_definitions_are_the_same_in_every_process():
    """Every BentoML worker re-imports service.py and must find the same services."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    keys = "caption,dinov2,clip"
    env = {**os.environ, "IMAGE_EMBED_PROFILE": "tiny", "IMAGE_EMBED_DEVICE": "cpu"}
    runs = [
        subprocess.run([sys.executable, "-c", DESCRIBE, keys], cwd=ROOT, env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    here = describe(runner_services(keys.split(",")))
    assert first == second == json.loads(json.dumps(here))
    assert list(first) == ["clip", "dino", "caption"]
