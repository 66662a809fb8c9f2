"""Device selection: which device and dtype a runner uses.

`IMAGE_EMBED_DEVICE=cuda|cpu` forces a device, `auto` takes CUDA when PyTorch sees one,
`IMAGE_EMBED_REQUIRE_GPU=1` turns "no GPU" into a start-up failure with a clear message
instead of a silent, slow CPU fallback. Models run in float16 on CUDA, float32 on CPU.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from dataclasses import dataclass

from config.sections import ModelSettings
from config.settings import load_settings


class DeviceUnavailableError(RuntimeError):
    """The configured device cannot be used; raised at start-up, never per request."""


@dataclass(frozen=True, kw_only=True)
class DeviceChoice:
    device: str  # torch device string: "cpu" | "cuda"
    dtype: str  # "float32" | "float16"
    name: str  # human-readable, for /health

    @property
    def kind(self) -> str:
        return "cuda" if self.device.startswith("cuda") else "cpu"


CPU = DeviceChoice(device="cpu", dtype="float32", name="cpu")  # the CPU in full precision

# (library, init function or None, device-count function): CUDA's driver, then ROCm's HIP.
_GPU_RUNTIMES = (("libcuda.so.1", "cuInit", "cuDeviceGetCount"), ("libamdhip64.so", None, "hipGetDeviceCount"))


def visible_gpu_count() -> int:
    """GPUs the driver exposes to this process (CUDA_VISIBLE_DEVICES applies), asked through
    the driver library directly: no torch import, no CUDA context, a few milliseconds."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    for library, init, count in _GPU_RUNTIMES:
        try:
            lib = ctypes.CDLL(library)
            if init is not None and getattr(lib, init)(0) != 0:
                continue
            n = ctypes.c_int(0)
            if getattr(lib, count)(ctypes.byref(n)) == 0 and n.value > 0:
                return n.value
        except (OSError, AttributeError):
            continue
    return 0


def probe_device_kind(settings: ModelSettings | None = None) -> str:
    """The device kind without importing torch.

    Runner modules pick their batch limits at import time (BentoML's decorators need them),
    and the gateway imports runner modules, so this must not pull in torch. The model's
    device is confirmed by `select_device` when it loads.
    """
    settings = settings or load_settings()
    if settings.device != "auto":
        return settings.device
    return "cuda" if visible_gpu_count() > 0 and torch_installed() else "cpu"  # no torch: the lean image, CPU


def preflight(settings: ModelSettings | None = None) -> None:
    """Refuse to start, before any worker spawns, when a GPU is demanded but absent.

    Called when `bentoml serve` imports service.py: without it BentoML would restart the
    failing runner every few seconds forever instead of exiting.
    """
    settings = settings or load_settings()
    if settings.require_gpu and settings.device == "cpu":
        raise DeviceUnavailableError("IMAGE_EMBED_REQUIRE_GPU=1 contradicts IMAGE_EMBED_DEVICE=cpu; unset one of them.")
    if (settings.require_gpu or settings.device == "cuda") and visible_gpu_count() == 0:
        reason = "IMAGE_EMBED_REQUIRE_GPU=1" if settings.require_gpu else "IMAGE_EMBED_DEVICE=cuda"
        raise DeviceUnavailableError(
            f"{reason}, but no GPU is visible (no CUDA or ROCm device through the driver; "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}). "
            "Refusing to start. Unset it to run on CPU."
        )


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def select_device(settings: ModelSettings | None = None, *, cuda_available: bool | None = None) -> DeviceChoice:
    """The runner's device. torch is imported only when a GPU is visible (or forced): on a
    machine without one, and in the lean image (no torch, ONNX Runtime on the CPU), never."""
    settings = settings or load_settings()
    if settings.device == "cuda" and not torch_installed():
        raise DeviceUnavailableError(
            "IMAGE_EMBED_DEVICE=cuda, but this image has no PyTorch: the lean image (--arg engine=onnx) "
            "serves on the CPU with ONNX Runtime. Use the full image for a GPU, or unset IMAGE_EMBED_DEVICE."
        )
    if cuda_available is None:
        cuda_available = settings.device != "cpu" and visible_gpu_count() > 0 and torch_installed()
        if cuda_available:
            import torch

            cuda_available = torch.cuda.is_available()

    if settings.device == "cpu":
        if settings.require_gpu:
            raise DeviceUnavailableError(
                "IMAGE_EMBED_REQUIRE_GPU=1 contradicts IMAGE_EMBED_DEVICE=cpu; unset one of them."
            )
        return CPU

    if not cuda_available:
        if settings.device == "cuda" or settings.require_gpu:
            reason = "IMAGE_EMBED_DEVICE=cuda" if settings.device == "cuda" else "IMAGE_EMBED_REQUIRE_GPU=1"
            raise DeviceUnavailableError(
                f"{reason} but PyTorch sees no CUDA device (torch.cuda.is_available() is False). "
                "Check the driver, CUDA_VISIBLE_DEVICES and that a CUDA build of torch is installed, "
                "or unset it to run on CPU."
            )
        return CPU

    import torch

    return DeviceChoice(device="cuda", dtype="float16", name=torch.cuda.get_device_name(0))
