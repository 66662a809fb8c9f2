"""The BentoML model store: idempotent imports, spec metadata, the ONNX entry, clear "not imported"
errors, and entries of older versions completed offline."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import bentoml
import pytest

from models import get_spec
from models.clip import CONFIG_FILE, LOGIT_SCALE_FILE, WEIGHTS_FILE, stored_logit_scale
from models.clip_tokenizer import TOKENIZER_FILE
from models.device import CPU
from models.store import (
    ModelNotImportedError,
    family_module,
    find,
    import_spec,
    is_imported,
    load,
    loadable_dir,
    model_dir,
    onnx_dir,
    remove,
)
from tests.models.old_store import make_old_entry, no_network


def test_tiny_import_is_idempotent(tiny_models):
    spec = get_spec("clip", "tiny")
    assert tiny_models["clip"] == spec.store_tag
    again = import_spec(spec)
    assert again.tag == spec.store_tag and again.created is False


def test_a_new_spec_is_created_once_with_its_metadata(tiny_models):
    spec = dataclasses.replace(get_spec("clip", "tiny"), seed=12345)
    assert find(spec) is None
    first = import_spec(spec)
    assert first.created is True and first.tag == spec.store_tag
    assert import_spec(spec).created is False

    stored = bentoml.models.get(spec.store_tag)
    assert str(stored.tag) == spec.store_tag
    assert stored.info.metadata["key"] == "clip"
    assert stored.info.metadata["profile"] == "tiny"
    assert stored.info.metadata["store_tag"] == spec.store_tag
    assert stored.info.metadata["seed"] == 12345
    assert stored.info.labels == {"key": "clip", "profile": "tiny", "project": "image-embed"}
    assert (Path(stored.path) / WEIGHTS_FILE).is_file() and (Path(stored.path) / CONFIG_FILE).is_file()


def test_model_dir_of_an_imported_spec(tiny_models):
    spec = get_spec("clip", "tiny")
    folder = model_dir(spec)
    assert folder == Path(bentoml.models.get(spec.store_tag).path)
    assert (folder / WEIGHTS_FILE).is_file()


def test_find_is_none_for_specs_never_imported(tiny_models):
    assert find(get_spec("clip", "default")) is None
    assert find(get_spec("clip", "bench")) is None
    assert find(get_spec("clip", "tiny")) is not None


def test_default_not_imported_says_how_and_offers_tiny(tiny_models):
    spec = get_spec("clip", "default")
    with pytest.raises(ModelNotImportedError) as info:
        model_dir(spec)
    message = str(info.value)
    assert "image-embed import-models --profile default" in message
    assert "offline: use --profile tiny" in message
    assert spec.store_tag in message and "'clip'" in message


def test_bench_not_imported_names_its_own_profile(tiny_models):
    spec = get_spec("clip", "bench")
    with pytest.raises(ModelNotImportedError) as info:
        model_dir(spec)
    message = str(info.value)
    assert "image-embed import-models --profile bench" in message
    assert "--profile tiny" not in message


def test_family_module_resolves_and_rejects():
    import models.clip

    assert family_module(get_spec("clip", "tiny")) is models.clip
    with pytest.raises(ValueError, match="no loader for model family 'nope'"):
        family_module(dataclasses.replace(get_spec("clip", "tiny"), family="nope"))


def test_failed_materialize_leaves_nothing_in_the_store(tiny_models, monkeypatch):
    import models.clip

    spec = dataclasses.replace(get_spec("clip", "tiny"), seed=999)

    def broken(spec, target):
        (target / "partial").write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models.clip, "materialize", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        import_spec(spec)
    assert find(spec) is None


def test_the_onnx_entry_holds_what_onnx_runtime_serving_reads_and_no_weights(tiny_models):
    spec = get_spec("clip", "tiny")
    stored = bentoml.models.get(spec.onnx_store_tag)
    assert stored.info.labels == {"key": "clip", "profile": "tiny", "project": "image-embed", "engine": "onnx"}
    # the spec: the models of IMAGE_EMBED_EXTRA_CLIP are described from it
    assert stored.info.metadata == bentoml.models.get(spec.store_tag).info.metadata
    files = sorted(str(p.relative_to(stored.path)) for p in Path(stored.path).rglob("*") if p.is_file())
    graphs = [f"onnx/{g}.{p}.onnx" for g in ("image", "text") for p in ("fp32", "int8")]
    assert files == sorted([*graphs, CONFIG_FILE, TOKENIZER_FILE, LOGIT_SCALE_FILE, "model.yaml"])
    assert WEIGHTS_FILE not in files and not (model_dir(spec) / "onnx").exists()
    assert json.loads((onnx_dir(spec) / LOGIT_SCALE_FILE).read_text())["logit_scale"] == pytest.approx(1 / 0.07)


def test_an_entry_of_an_older_version_is_completed_offline_from_its_weights(tiny_models):
    """Weights with the graphs inside and no stored tokenizer or logit scale (before the ONNX
    entry): the server refuses with the command, the import adds what is missing without any
    network (the tokenizer from open_clip's bundled vocabulary), moving the graphs, and it loads."""
    spec = dataclasses.replace(get_spec("clip", "tiny"), seed=77)
    old = make_old_entry(spec)
    graphs = {p.name: p.read_bytes() for p in (old / "onnx").iterdir()}
    try:
        command = "`image-embed import-models --profile tiny --models clip`"
        with pytest.raises(ModelNotImportedError, match=f"no entry {spec.onnx_store_tag}.*{command} adds them offline"):
            loadable_dir(spec, CPU, "onnx")
        assert not is_imported(spec)
        with no_network():
            result = import_spec(spec)
        assert not result.new and result.added == (
            TOKENIZER_FILE,
            LOGIT_SCALE_FILE,
            f"the ONNX entry {spec.onnx_store_tag} (graphs moved out of the weights entry)",
        )
        assert is_imported(spec) and not (old / "onnx").exists()
        assert {p.name: p.read_bytes() for p in (onnx_dir(spec) / "onnx").iterdir()} == graphs  # moved, not exported
        fresh = dataclasses.replace(spec, seed=78)  # the same architecture imported anew: the same tokenizer
        import_spec(fresh)
        assert _tokenizer(onnx_dir(spec)) == _tokenizer(onnx_dir(fresh))
        model = load(spec, CPU, "onnx")
        assert model.encode_texts(["a cat"]).shape == (1, 512)
        assert stored_logit_scale(model.model_dir) == pytest.approx(1 / 0.07)
        assert not import_spec(spec).created
    finally:
        remove(spec)
        remove(dataclasses.replace(spec, seed=78))


def _tokenizer(folder: Path) -> dict:
    with gzip.open(folder / TOKENIZER_FILE, "rt", encoding="utf-8") as f:
        return json.load(f)
