"""Weights in the BentoML model store: import (write once) and locate (for runners).

Each spec is stored under `spec.store_tag` (`<readable name>:<fingerprint>`), with the spec
as metadata, so `bentoml models list` shows what is there, an import of the same spec is a
no-op, and a runner can never load weights that belong to another spec.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from .device import DeviceChoice
from .families import family_of
from .specs import ModelSpec


class ModelNotImportedError(RuntimeError):
    """A runner's weights are not in the model store; the message says how to put them there."""


def family_module(spec: ModelSpec) -> ModuleType:
    """The module with `materialize(spec, dir)` and the model class of `spec`'s family."""
    return importlib.import_module(family_of(spec).module)


def load(spec: ModelSpec, device: DeviceChoice) -> Any:
    """`spec`'s model, loaded from the store onto `device`, with its family's model class."""
    return getattr(family_module(spec), family_of(spec).model_class)(spec, model_dir(spec), device)


def find(spec: ModelSpec):
    """The stored bentoml Model of `spec`, or None."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(spec.store_tag)
    except NotFound:
        return None


def model_dir(spec: ModelSpec) -> Path:
    """The folder holding `spec`'s weights; a clear error when they were never imported."""
    stored = find(spec)
    if stored is None:
        hint = f"python scripts/import_models.py --profile {spec.profile}"
        raise ModelNotImportedError(
            f"model {spec.key!r} (profile {spec.profile!r}) is not in the BentoML model store "
            f"as {spec.store_tag}. Import it first: `{hint}`"
            + (" (offline: use --profile tiny)" if spec.profile == "default" else "")
        )
    return Path(stored.path)


@dataclass(frozen=True)
class ImportResult:
    tag: str
    created: bool


def import_spec(spec: ModelSpec) -> ImportResult:
    """Materialize `spec` into the store unless it is already there (idempotent)."""
    import bentoml

    if find(spec) is not None:
        return ImportResult(tag=spec.store_tag, created=False)
    family = family_module(spec)
    labels = {"key": spec.key, "profile": spec.profile, "project": "image-embed"}
    with bentoml.models.create(spec.store_tag, labels=labels, metadata=spec.to_metadata()) as stored:
        family.materialize(spec, Path(stored.path))
    return ImportResult(tag=spec.store_tag, created=True)
