"""Runner service config: GPU shares that fit one GPU, and the two configuration profiles."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from bentoml._internal.configuration.containers import BentoMLConfiguration

from models import get_spec
from runners import common

ROOT = Path(__file__).resolve().parents[2]
MODEL_RUNNERS = ["clip_runner", "person_runner", "face_runner", "caption_runner", "dino_runner", "internvit_runner"]


def one_gpu_allocator(monkeypatch):
    from _bentoml_impl.server import allocator as alloc

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv(alloc.DISABLE_GPU_ALLOCATION_ENV, raising=False)
    monkeypatch.setattr(alloc, "system_resources", lambda: {alloc.NVIDIA_GPU: [0], "cpu": 8})
    return alloc.ResourceAllocator()


class FakeService:
    def __init__(self, name: str) -> None:
        self.name = name


def test_on_cuda_each_model_runner_asks_for_a_share_of_a_gpu(monkeypatch):
    monkeypatch.setattr(common, "device_kind", lambda: "cuda")
    assert common.runner_config("clip", [get_spec("clip")])["resources"] == {"gpu": common.GPU_SHARE}
    monkeypatch.setattr(common, "device_kind", lambda: "cpu")
    assert "resources" not in common.runner_config("clip", [get_spec("clip")])


def test_six_runners_with_their_shares_all_land_on_the_one_gpu(monkeypatch):
    allocator = one_gpu_allocator(monkeypatch)
    services = {name: {"resources": {"gpu": common.GPU_SHARE}, "workers": 1} for name in MODEL_RUNNERS}
    envs = [allocator.get_worker_env(FakeService(name), services=services)[1] for name in MODEL_RUNNERS]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0"] * len(MODEL_RUNNERS)


def test_sixteen_runners_fit_one_gpu_the_catalogs_and_extra_clips(monkeypatch):
    allocator = one_gpu_allocator(monkeypatch)
    names = MODEL_RUNNERS + [f"clip_extra_{i}_runner" for i in range(10)]
    services = {name: {"resources": {"gpu": common.GPU_SHARE}, "workers": 1} for name in names}
    envs = [allocator.get_worker_env(FakeService(name), services=services)[1] for name in names]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0"] * 16


def test_whole_gpus_each_would_push_runners_off_a_one_gpu_machine(monkeypatch):
    # Why the share is a fraction: with gpu 1 each, the second runner gets a GPU that does not exist.
    allocator = one_gpu_allocator(monkeypatch)
    services = {name: {"resources": {"gpu": 1}, "workers": 1} for name in MODEL_RUNNERS[:2]}
    with pytest.warns(ResourceWarning):
        envs = [allocator.get_worker_env(FakeService(name), services=services)[1] for name in MODEL_RUNNERS[:2]]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1"]


@pytest.mark.parametrize("name", ["configuration.yaml", "configuration-gpu.yaml"])
def test_configuration_profiles_are_valid_bentoml_config(name):
    config = BentoMLConfiguration(override_config_file=str(ROOT / name), use_version=2).to_dict()
    services = config["services"]
    for runner in [*MODEL_RUNNERS, "index_runner"]:
        assert services[runner]["traffic"]["timeout"] < services["image_embed"]["traffic"]["timeout"], runner


def test_gpu_profile_puts_every_model_runner_on_the_gpu_and_the_index_on_the_cpu(monkeypatch):
    services = yaml.safe_load((ROOT / "configuration-gpu.yaml").read_text())["services"]
    allocator = one_gpu_allocator(monkeypatch)
    for runner in MODEL_RUNNERS:
        assert services[runner]["resources"]["gpu"] == common.GPU_SHARE
        assert allocator.get_worker_env(FakeService(runner), services=services)[1] == {"CUDA_VISIBLE_DEVICES": "0"}
    assert "resources" not in services["index_runner"]


def test_profiles_name_the_same_services():
    cpu = yaml.safe_load((ROOT / "configuration.yaml").read_text())["services"]
    gpu = yaml.safe_load((ROOT / "configuration-gpu.yaml").read_text())["services"]
    assert set(cpu) == set(gpu)


@pytest.mark.parametrize(("name", "kind"), [("configuration.yaml", "cpu"), ("configuration-gpu.yaml", "cuda")])
def test_configuration_profiles_repeat_the_limits_of_the_service_definitions(monkeypatch, name, kind):
    """The traffic limits live in the service definitions (they hold without BENTOML_CONFIG);
    the configuration files spell out the same values."""
    from models import list_models

    monkeypatch.setattr(common, "device_kind", lambda: kind)
    services = yaml.safe_load((ROOT / name).read_text())["services"]
    runners = sorted({spec.runner for spec in list_models()})
    assert sorted(f"{r}_runner" for r in runners) == sorted(MODEL_RUNNERS)
    for runner in runners:
        traffic = common.runner_config(runner, [s for s in list_models() if s.runner == runner])["traffic"]
        assert services[f"{runner}_runner"]["traffic"] == traffic, runner
