"""The BentoML model store: idempotent imports, spec metadata, clear "not imported" errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import bentoml
import pytest

from models import get_spec
from models.clip import CONFIG_FILE, WEIGHTS_FILE
from models.store import ModelNotImportedError, family_module, find, import_spec, model_dir


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
