"""Weights in the BentoML model store: import (write once) and locate (for runners).

Each spec is stored under `spec.store_tag` (`<readable name>:<fingerprint>`), with the spec
as metadata, so `bentoml models list` shows what is there, an import of the same spec is a
no-op, and a runner can never load weights that belong to another spec.

An entry holds the weights and, for the families that run on ONNX Runtime, their ONNX graphs
(models/onnx_engine.py) in `onnx/`, exported by the import, and the files the graphs need
(CLIP's text tokenizer, models/clip_tokenizer.py). An entry imported by an older version
lacks some: the import replaces it, and a runner that would run it on ONNX Runtime refuses to
start with a message saying so (no silent fallback to torch).
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


def load(spec: ModelSpec, device: DeviceChoice, engine: str | None = None) -> Any:
    """`spec`'s model, loaded from the store onto `device`: with its family's model class on
    the torch engine, as an OnnxModel on ONNX Runtime (onnx_engine.select_engine decides;
    `engine`, the Bento's `--arg engine=`, overrides IMAGE_EMBED_ENGINE)."""
    from . import onnx_engine

    folder = loadable_dir(spec, device, engine)
    choice = onnx_engine.select_engine(spec, device, engine=engine)
    if choice.engine == "torch":
        return getattr(family_module(spec), family_of(spec).model_class)(spec, folder, device)
    return onnx_engine.OnnxModel(spec, folder, device, choice.precision)


def loadable_dir(spec: ModelSpec, device: DeviceChoice, engine: str | None = None) -> Path:
    """`spec`'s folder, with everything its engine on `device` needs; else a clear error
    (service.py calls it before any runner starts, with the probed device kind, so `bentoml
    build` and `bentoml serve` stop there). With `engine="onnx"` (the lean image, no torch)
    a model that ONNX Runtime cannot run alone is refused."""
    from . import onnx_engine

    folder = model_dir(spec)
    if engine == "onnx":
        gaps = onnx_engine.torch_free_gaps(spec, folder)
        if gaps:
            raise onnx_engine.EngineUnavailableError(
                f"model {spec.key!r} cannot be served without PyTorch ({'; '.join(gaps)}), and "
                "--arg engine=onnx builds the lean image, which serves every model on ONNX Runtime "
                f"alone (these can: {', '.join(onnx_engine.torch_free_models(spec.profile))}). Leave "
                f"{spec.key!r} out of --arg models=..., or build without --arg engine=onnx (the full image)."
            )
    if onnx_engine.select_engine(spec, device, engine=engine).engine == "onnx":
        missing = onnx_engine.missing_graphs(spec, folder)
        if missing:
            raise ModelNotImportedError(
                f"model {spec.key!r} is in the model store as {spec.store_tag} without the files of its "
                f"ONNX engine ({', '.join(missing)}): an older version imported it. Re-import it "
                f"(`image-embed import-models --profile {spec.profile}` replaces it)"
                + (", or set IMAGE_EMBED_ENGINE=torch." if engine != "onnx" else ".")
            )
    return folder


def find(spec: ModelSpec):
    """The stored bentoml Model of `spec`, or None."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(spec.store_tag)
    except NotFound:
        return None


def is_imported(spec: ModelSpec) -> bool:
    """`spec` is in the store with everything an import writes (weights and ONNX graphs)."""
    from .onnx_engine import missing_graphs

    stored = find(spec)
    return stored is not None and not missing_graphs(spec, Path(stored.path))


def model_dir(spec: ModelSpec) -> Path:
    """The folder holding `spec`'s weights; a clear error when they were never imported."""
    stored = find(spec)
    if stored is None:
        hint = f"image-embed import-models --profile {spec.profile}"
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
    """Materialize `spec` into the store, weights then ONNX graphs, unless it is already there
    (idempotent). An entry without its graphs (imported before the ONNX engine) is replaced."""
    import bentoml

    from .onnx_engine import export_graphs

    if is_imported(spec):
        return ImportResult(tag=spec.store_tag, created=False)
    if find(spec) is not None:
        bentoml.models.delete(spec.store_tag)
    family = family_module(spec)
    labels = {"key": spec.key, "profile": spec.profile, "project": "image-embed"}
    with bentoml.models.create(spec.store_tag, labels=labels, metadata=spec.to_metadata()) as stored:
        family.materialize(spec, Path(stored.path))
        export_graphs(spec, Path(stored.path))
    return ImportResult(tag=spec.store_tag, created=True)
