"""Models in the BentoML model store: import (write once, complete what is missing) and locate.

A model has one entry, or two for the families that run on ONNX Runtime (models/families.py
`graphs`), each with the spec as metadata and its key and profile as labels, so `bentoml models
list` shows what is there and a runner can never load files that belong to another spec:

    spec.store_tag        <name>:<fingerprint>       the weights (what torch loads) and the
                                                     family's stored files (CLIP: text tokenizer,
                                                     logit scale)
    spec.onnx_store_tag   <name>-onnx:<fingerprint>  what ONNX Runtime serving reads: the graphs
                                                     in both precisions (models/onnx_engine.py)
                                                     and copies of the stored files; no weights

A runner declares the entries of its engine (`entries`), and `bentoml build` packs exactly
those: the lean Bento (`--arg engine=onnx`) the ONNX entries alone, so its image has no torch
weights; a full Bento both (its engine is chosen at start, by device).

Moving in: a store written by an older version has weights entries without some stored files
(before the stored tokenizer and logit scale), with the graphs inside (`onnx/`, before the ONNX
entry), or with no graphs at all (before the ONNX engine). `import_spec` completes them from the
weights already in the store, offline: the family's `complete` writes the stored files, the
graphs move into the ONNX entry (or are exported). A runner that needs what is missing refuses
to start with the command that does it (`import_command`); there is no silent fallback to torch.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .device import DeviceChoice
from .families import family_module, family_of
from .specs import ModelSpec


class ModelNotImportedError(RuntimeError):
    """A runner's files are not in the model store; the message says how to put them there."""


def import_command(spec: ModelSpec) -> str:
    """The command that puts `spec` in the store, or completes it there."""
    from config.settings import load_settings

    from .catalog.extra_clip import ENTRIES

    extra = load_settings().extra_clip
    prefix = f"IMAGE_EMBED_EXTRA_CLIP={','.join(extra)} " if any(e.key == spec.key for e in ENTRIES) else ""
    return f"{prefix}image-embed import-models --profile {spec.profile} --models {spec.key}"


def entries(spec: ModelSpec, engine: str | None = None) -> list[str]:
    """The store tags a runner of `spec` declares for `engine` (the Bento's `--arg engine=`):
    onnx: the ONNX entry alone (the lean image); torch: the weights; None: both. A family
    without graphs has its weights entry only."""
    if not family_of(spec).graphs or engine == "torch":
        return [spec.store_tag]
    return [spec.onnx_store_tag] if engine == "onnx" else [spec.store_tag, spec.onnx_store_tag]


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
    """The folder `spec`'s engine on `device` loads from (its weights entry on torch, its ONNX
    entry on ONNX Runtime), with everything that engine needs; else a clear error (service.py
    calls it before any runner starts, with the probed device kind, so `bentoml build` and
    `bentoml serve` stop there). With `engine="onnx"` (the lean image, no torch) a model that
    ONNX Runtime cannot run alone is refused."""
    from . import onnx_engine

    if engine == "onnx":
        _refuse_torch_needs(spec, onnx_engine.torch_free_gaps(spec))
    if onnx_engine.select_engine(spec, device, engine=engine).engine == "torch":
        return model_dir(spec)
    stored = find(spec, spec.onnx_store_tag)
    if stored is None and find(spec) is None:
        model_dir(spec)  # never imported: says so
    missing = [] if stored is None else onnx_engine.missing_graphs(spec, Path(stored.path))
    if engine == "onnx" and stored is not None:
        _refuse_torch_needs(spec, onnx_engine.torch_free_gaps(spec, Path(stored.path)))
    if stored is None or missing:
        tag = spec.onnx_store_tag
        what = f"no entry {tag}" if stored is None else f"{', '.join(missing)} not in {tag}"
        raise ModelNotImportedError(
            f"model {spec.key!r} is in the model store without the files of its ONNX engine "
            f"({what}): an older version imported it. `{import_command(spec)}` adds "
            "them offline, from the weights already in the store"
            + (", or set IMAGE_EMBED_ENGINE=torch." if engine != "onnx" else ".")
        )
    return Path(stored.path)


def _refuse_torch_needs(spec: ModelSpec, gaps: list[str]) -> None:
    from .onnx_engine import EngineUnavailableError, torch_free_models

    if gaps:
        raise EngineUnavailableError(
            f"model {spec.key!r} cannot be served without PyTorch ({'; '.join(gaps)}), and "
            "--arg engine=onnx builds the lean image, which serves every model on ONNX Runtime "
            f"alone (these can: {', '.join(torch_free_models(spec.profile))}). Leave "
            f"{spec.key!r} out of --arg models=..., or build without --arg engine=onnx (the full image)."
        )


def find(spec: ModelSpec, tag: str | None = None):
    """The stored bentoml Model of `spec` (its weights entry, or `tag`: one of `entries`), or None."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag or spec.store_tag)
    except NotFound:
        return None


def is_imported(spec: ModelSpec) -> bool:
    """Every entry of `spec` is in the store with everything an import writes."""
    from .onnx_engine import GRAPHS_DIR, missing_graphs

    weights = find(spec)
    if weights is None or _missing_stored_files(spec, Path(weights.path)):
        return False
    if not family_of(spec).graphs:
        return True
    onnx = find(spec, spec.onnx_store_tag)
    legacy = Path(weights.path) / GRAPHS_DIR
    return onnx is not None and not missing_graphs(spec, Path(onnx.path)) and not legacy.exists()


def model_dir(spec: ModelSpec) -> Path:
    """The folder of `spec`'s weights entry; a clear error when they were never imported."""
    stored = find(spec)
    if stored is None:
        raise ModelNotImportedError(
            f"model {spec.key!r} (profile {spec.profile!r}) is not in the BentoML model store "
            f"as {spec.store_tag}. Import it first: `{import_command(spec)}`"
            + (" (offline: use --profile tiny)" if spec.profile == "default" else "")
        )
    return Path(stored.path)


def onnx_dir(spec: ModelSpec) -> Path:
    """The folder of `spec`'s ONNX entry (graphs and stored files)."""
    stored = find(spec, spec.onnx_store_tag)
    if stored is None:
        raise ModelNotImportedError(
            f"model {spec.key!r} has no ONNX entry {spec.onnx_store_tag}: `{import_command(spec)}`"
        )
    return Path(stored.path)


def remove(spec: ModelSpec) -> None:
    """Delete every entry of `spec` from the store."""
    import bentoml

    for tag in entries(spec):
        if find(spec, tag) is not None:
            bentoml.models.delete(tag)


@dataclass(frozen=True)
class ImportResult:
    tag: str
    new: bool = False  # the weights entry was made (materialized: the pretrained weights downloaded)
    added: tuple[str, ...] = ()  # what was added beside weights already in the store (offline)

    @property
    def created(self) -> bool:
        """Anything was written."""
        return self.new or bool(self.added)


def import_spec(spec: ModelSpec) -> ImportResult:
    """Put every entry of `spec` in the store, complete, writing only what is missing (module
    docstring): the weights entry (materialize, the only step that may need the network), the
    stored files an older import left out, the ONNX entry. Idempotent."""
    weights = find(spec)
    new = weights is None
    added: list[str] = []
    if new:
        _create(spec, spec.store_tag, lambda folder: family_module(spec).materialize(spec, folder))
        weights = find(spec)
    else:
        missing = _missing_stored_files(spec, Path(weights.path))
        if missing:
            family_module(spec).complete(spec, Path(weights.path))
            added += missing
    if family_of(spec).graphs:
        onnx = _complete_onnx_entry(spec, Path(weights.path))
        if not new:
            added += onnx
    return ImportResult(tag=spec.store_tag, new=new, added=tuple(added))


def _missing_stored_files(spec: ModelSpec, folder: Path) -> list[str]:
    return [name for name in family_of(spec).stored_files if not (folder / name).is_file()]


def _create(spec: ModelSpec, tag: str, fill: Callable[[Path], None], **labels: str) -> None:
    """A new entry `tag` of `spec`, filled by `fill(folder)`; nothing is left if it fails."""
    import bentoml

    labels = {"key": spec.key, "profile": spec.profile, "project": "image-embed", **labels}
    with bentoml.models.create(tag, labels=labels, metadata=spec.to_metadata()) as stored:
        fill(Path(stored.path))


def _complete_onnx_entry(spec: ModelSpec, weights: Path) -> list[str]:
    """Make `spec`'s ONNX entry when it is missing or incomplete: the stored files copied from
    the weights entry `weights`, the graphs moved out of it (where an older import wrote them)
    or exported from its weights. What was done, for the import's message."""
    import bentoml

    from .onnx_engine import GRAPHS_DIR, export_graphs, missing_graphs

    done = []
    legacy = weights / GRAPHS_DIR
    stored = find(spec, spec.onnx_store_tag)
    if stored is not None:
        missing = missing_graphs(spec, Path(stored.path))
        if set(missing) <= set(family_of(spec).stored_files):  # the graphs are there: copy the files
            for name in missing:
                shutil.copy2(weights / name, Path(stored.path) / name)
            done += [f"{name} to {spec.onnx_store_tag}" for name in missing]
        else:
            bentoml.models.delete(spec.onnx_store_tag)
            stored = None
    made = stored is None
    if made:
        move = legacy.is_dir() and not missing_graphs(spec, weights)

        def fill(folder: Path) -> None:
            for name in family_of(spec).stored_files:
                shutil.copy2(weights / name, folder / name)
            if move:
                shutil.copytree(legacy, folder / GRAPHS_DIR)
            else:
                export_graphs(spec, weights, folder)

        _create(spec, spec.onnx_store_tag, fill, engine="onnx")
        how = "moved out of the weights entry" if move else "exported from the weights"
        done.append(f"the ONNX entry {spec.onnx_store_tag} (graphs {how})")
    if legacy.exists():  # the graphs live in the ONNX entry now
        shutil.rmtree(legacy)
        if not made:
            done.append(f"the old graphs removed from {spec.store_tag}")
    return done
