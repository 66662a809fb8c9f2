"""Which models a server serves: the `models` template argument, or IMAGE_EMBED_MODELS.

    bentoml serve . --arg models=clip,face      bentoml build --arg models=clip
    IMAGE_EMBED_MODELS=clip,face bentoml serve .    (containers)

The argument wins over the variable; with neither, every model of the registry is served.
Names are the registry's keys (`clip`, `dinov2`, ...); an unknown one stops the start with a
message listing the known ones. Only the runners hosting the chosen models are declared and
started, and only their weights must be in the model store.

    bentoml build --arg models=clip --arg engine=onnx     the lean image: no PyTorch

`engine=onnx` serves every chosen model on ONNX Runtime alone and gives the Bento the lean
image (config/image.py); a model ONNX Runtime cannot run stops the build (models/store.py
`loadable_dir`). `engine=torch` runs every model on torch. Without it IMAGE_EMBED_ENGINE decides.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from config.settings import SettingsError, load_settings

from .registry import list_models

ENV = "IMAGE_EMBED_MODELS"
HOW_TO_CHOOSE = f"--arg models=... (bentoml serve/build), {ENV}=... or make serve MODELS=..."


class ServeArguments(BaseModel):
    """The bundle's template arguments (`bentoml.use_arguments`)."""

    models: list[str] | None = Field(default=None, description="model keys to serve, comma-separated; default: all")
    engine: Literal["onnx", "torch"] | None = Field(
        default=None,
        description="onnx: every model on ONNX Runtime alone, in the lean image without PyTorch (models it "
        "cannot run are refused); torch: every model on torch; default: IMAGE_EMBED_ENGINE decides per model",
    )

    @field_validator("models", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return parse_model_list(value) if isinstance(value, str) else value


def parse_model_list(value: str) -> list[str]:
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def known_models(profile: str | None = None) -> list[str]:
    return [spec.key for spec in list_models(profile)]


def check_models(names: Iterable[str], profile: str | None = None, source: str = "models") -> tuple[str, ...]:
    """The names in registry order, each known, or a SettingsError listing the known ones."""
    wanted = list(dict.fromkeys(names))
    known = known_models(profile)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise SettingsError(
            f"unknown model(s) {', '.join(map(repr, unknown))} in {source}; known models: {', '.join(known)}"
        )
    if not wanted:
        raise SettingsError(f"{source} names no model; choose among: {', '.join(known)}")
    return tuple(k for k in known if k in wanted)


def served_models(arguments: ServeArguments | None = None, profile: str | None = None) -> tuple[str, ...]:
    """The model keys this server serves (registry order)."""
    if arguments is not None and arguments.models is not None:
        return check_models(arguments.models, profile, source="--arg models")
    chosen = load_settings().models
    if chosen:
        return check_models(chosen, profile, source=ENV)
    return tuple(known_models(profile))


def default_selection(profile: str, have_token: bool) -> tuple[tuple[str, ...], list[str]]:
    """What `make serve` serves when no models are chosen: every model, less the gated ones
    (hub repositories that need a token) when there is no token. Returns (keys, left out)."""
    specs = list_models(profile)
    left_out = [s.key for s in specs if s.gated and not have_token]
    return tuple(s.key for s in specs if s.key not in left_out), left_out


def left_out_line(left_out: list[str]) -> str:
    names = ", ".join(left_out)
    return (
        f"note: not serving {names}: its weights are gated on the Hugging Face hub. To add it, accept "
        f"its licence on the hub and set HF_TOKEN, or choose the models yourself with MODELS=..."
    )
