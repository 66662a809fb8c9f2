"""Process-wide model settings, read from the environment.

    IMAGE_EMBED_PROFILE       default | tiny | bench   (default: default)
    IMAGE_EMBED_DEVICE        auto | cpu | cuda        (default: auto)
    IMAGE_EMBED_REQUIRE_GPU   1 to refuse to start without a GPU (default: 0)

Read on every call rather than cached at import, so one process (a test, a script) can
change them before building anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .specs import PROFILE_HELP, PROFILES

DEVICE_CHOICES = ("auto", "cpu", "cuda")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting has a value the server cannot use; the message says which and why."""


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    profile: str
    device: str
    require_gpu: bool


def _flag(name: str) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1 or 0")


def current_profile() -> str:
    profile = os.environ.get("IMAGE_EMBED_PROFILE", "default").strip().lower() or "default"
    if profile not in PROFILES:
        choices = "; ".join(f"{p}: {PROFILE_HELP[p]}" for p in PROFILES)
        raise SettingsError(f"IMAGE_EMBED_PROFILE={profile!r} is unknown. Choose one of: {choices}")
    return profile


def model_settings() -> ModelSettings:
    device = os.environ.get("IMAGE_EMBED_DEVICE", "auto").strip().lower() or "auto"
    if device not in DEVICE_CHOICES:
        raise SettingsError(f"IMAGE_EMBED_DEVICE={device!r} is unknown; use one of {DEVICE_CHOICES}")
    return ModelSettings(
        profile=current_profile(),
        device=device,
        require_gpu=_flag("IMAGE_EMBED_REQUIRE_GPU"),
    )
