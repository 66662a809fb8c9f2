"""Process-wide model settings: a view of config.settings (IMAGE_EMBED_PROFILE, _DEVICE,
_REQUIRE_GPU, _ENGINE, _CPU_PRECISION, declared and documented there).

Read through load_settings() on every call (parsed once per environment), so one process
(a test, a script) can change them before building anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.settings import DEVICE_CHOICES, Settings, SettingsError, load_settings

__all__ = ["DEVICE_CHOICES", "ModelSettings", "SettingsError", "current_profile", "model_settings"]


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    profile: str
    device: str
    require_gpu: bool
    engine: str = "auto"  # "auto" | "onnx" | "torch" (models/onnx_engine.py resolves auto)
    cpu_precision: str = "fp32"  # "fp32" | "int8"

    @classmethod
    def from_settings(cls, s: Settings) -> "ModelSettings":
        return cls(
            profile=s.profile, device=s.device, require_gpu=s.require_gpu, engine=s.engine, cpu_precision=s.cpu_precision
        )


def current_profile() -> str:
    return load_settings().profile


def model_settings() -> ModelSettings:
    return ModelSettings.from_settings(load_settings())
