"""Device choice: select_device, preflight, the torch-free GPU probe."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from config.sections import ModelSettings
from models import device as device_mod
from models.device import (
    DeviceChoice,
    DeviceUnavailableError,
    preflight,
    probe_device_kind,
    select_device,
    visible_gpu_count,
)
from tests.conftest import ROOT


def settings(device: str = "auto", require_gpu: bool = False) -> ModelSettings:
    return ModelSettings(profile="tiny", device=device, require_gpu=require_gpu)


@pytest.fixture
def fake_gpu_name(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU 9000")


# --- select_device -----------------------------------------------------------------------


@pytest.mark.parametrize("cuda_available", [False, True])
def test_cpu_is_float32_whatever_is_available(cuda_available):
    choice = select_device(settings("cpu"), cuda_available=cuda_available)
    assert choice == DeviceChoice(device="cpu", dtype="float32", name="cpu")
    assert choice.kind == "cpu"


def test_auto_without_cuda_falls_back_to_cpu():
    choice = select_device(settings("auto"), cuda_available=False)
    assert (choice.device, choice.dtype, choice.kind) == ("cpu", "float32", "cpu")


@pytest.mark.parametrize(("device", "require_gpu"), [("auto", False), ("auto", True), ("cuda", False), ("cuda", True)])
def test_cuda_when_available_is_float16(fake_gpu_name, device, require_gpu):
    choice = select_device(settings(device, require_gpu), cuda_available=True)
    assert choice == DeviceChoice(device="cuda", dtype="float16", name="Fake GPU 9000")
    assert choice.kind == "cuda"


def test_cuda_forced_without_cuda_names_the_variable():
    with pytest.raises(DeviceUnavailableError, match="IMAGE_EMBED_DEVICE=cuda") as info:
        select_device(settings("cuda"), cuda_available=False)
    assert "torch.cuda.is_available() is False" in str(info.value)


def test_require_gpu_without_cuda_names_the_variable():
    with pytest.raises(DeviceUnavailableError, match="IMAGE_EMBED_REQUIRE_GPU=1"):
        select_device(settings("auto", require_gpu=True), cuda_available=False)


@pytest.mark.parametrize("cuda_available", [False, True])
def test_require_gpu_contradicts_cpu(cuda_available):
    with pytest.raises(DeviceUnavailableError, match="IMAGE_EMBED_REQUIRE_GPU=1 contradicts IMAGE_EMBED_DEVICE=cpu"):
        select_device(settings("cpu", require_gpu=True), cuda_available=cuda_available)


def test_select_device_reads_the_environment(monkeypatch):
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailableError, match="IMAGE_EMBED_DEVICE=cuda"):
        select_device(cuda_available=False)
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "cpu")
    assert select_device().device == "cpu"  # asks torch itself; cpu needs no CUDA


def test_device_choice_kind_of_indexed_cuda():
    assert DeviceChoice(device="cuda:1", dtype="float16", name="x").kind == "cuda"


# --- preflight ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", [settings("auto", True), settings("cuda", False), settings("cuda", True)])
def test_preflight_refuses_without_a_visible_gpu(monkeypatch, case):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    with pytest.raises(DeviceUnavailableError) as info:
        preflight(case)
    message = str(info.value)
    assert ("IMAGE_EMBED_REQUIRE_GPU=1" if case.require_gpu else "IMAGE_EMBED_DEVICE=cuda") in message
    assert "CUDA_VISIBLE_DEVICES=7" in message and "Refusing to start" in message


@pytest.mark.parametrize("case", [settings("auto", True), settings("cuda", False), settings("auto", False)])
def test_preflight_passes_with_a_visible_gpu(monkeypatch, case):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 1)
    assert preflight(case) is None


@pytest.mark.parametrize("case", [settings("auto", False), settings("cpu", False)])
def test_preflight_without_demands_passes_without_gpu(monkeypatch, case):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 0)
    assert preflight(case) is None


def test_preflight_refuses_require_gpu_with_cpu(monkeypatch):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 1)
    with pytest.raises(DeviceUnavailableError, match="contradicts IMAGE_EMBED_DEVICE=cpu"):
        preflight(settings("cpu", True))


def test_preflight_reads_the_environment(monkeypatch):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 0)
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "auto")
    monkeypatch.setenv("IMAGE_EMBED_REQUIRE_GPU", "1")
    with pytest.raises(DeviceUnavailableError, match="IMAGE_EMBED_REQUIRE_GPU=1"):
        preflight()


# --- visible_gpu_count / probe_device_kind -------------------------------------------------


@pytest.mark.parametrize("value", ["", " ", "-1"])
def test_no_visible_gpu_when_hidden(monkeypatch, value):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    monkeypatch.setattr(device_mod.ctypes, "CDLL", _fake_driver(cuda_count=4))
    assert visible_gpu_count() == 0


def _fake_driver(cuda_count: int | None = None, cuda_init: int = 0, hip_count: int | None = None):
    """A ctypes.CDLL stand-in: None means the library is missing."""

    def counter(n):
        def count(ref):
            ref._obj.value = n
            return 0

        return count

    class Lib:
        def __init__(self, name):
            if name == "libcuda.so.1" and cuda_count is not None:
                self.cuInit = lambda flags: cuda_init
                self.cuDeviceGetCount = counter(cuda_count)
            elif name == "libamdhip64.so" and hip_count is not None:
                self.hipGetDeviceCount = counter(hip_count)
            else:
                raise OSError(f"{name}: cannot open shared object file")

    return Lib


@pytest.mark.parametrize(
    ("driver", "expected"),
    [
        (_fake_driver(), 0),
        (_fake_driver(cuda_count=2), 2),
        (_fake_driver(cuda_count=0), 0),
        (_fake_driver(cuda_count=2, cuda_init=100), 0),  # cuInit failed: no usable CUDA
        (_fake_driver(cuda_count=2, cuda_init=100, hip_count=3), 3),
        (_fake_driver(hip_count=1), 1),
    ],
)
def test_visible_gpu_count_asks_the_driver(monkeypatch, driver, expected):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(device_mod.ctypes, "CDLL", driver)
    assert visible_gpu_count() == expected


def test_fake_driver_matches_ctypes_byref():
    """The fake's way of writing through byref is the real one."""
    n = ctypes.c_int(0)
    _fake_driver(cuda_count=5)("libcuda.so.1").cuDeviceGetCount(ctypes.byref(n))
    assert n.value == 5


@pytest.mark.parametrize("forced", ["cpu", "cuda"])
def test_probe_honours_a_forced_device(monkeypatch, forced):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: 0 if forced == "cuda" else 1)
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", forced)
    assert probe_device_kind() == forced
    assert probe_device_kind(settings(forced)) == forced


@pytest.mark.parametrize(("count", "expected"), [(0, "cpu"), (1, "cuda"), (8, "cuda")])
def test_probe_auto_follows_the_driver(monkeypatch, count, expected):
    monkeypatch.setattr(device_mod, "visible_gpu_count", lambda: count)
    monkeypatch.setenv("IMAGE_EMBED_DEVICE", "auto")
    assert probe_device_kind() == expected


def test_probe_does_not_import_torch():
    code = (
        "import sys; from models.device import probe_device_kind, visible_gpu_count; "
        "probe_device_kind(); visible_gpu_count(); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    env = {"PATH": "/usr/bin:/bin", "IMAGE_EMBED_DEVICE": "auto", "IMAGE_EMBED_PROFILE": "tiny"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
