"""Collection classifiers: plain arrays + JSON, numpy evaluation, reload, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from gateway.analyze.classifiers import (
    FORMAT,
    INDEX_FILE,
    Classifier,
    ClassifierError,
    ClassifierStore,
    load_classifier,
    save_classifier,
)

DIM = 512


def write_classifier(directory: Path, collection_id: str, embedding_model: str, *, seed: int = 0, name: str | None = None,
                     dim: int = DIM) -> tuple[np.ndarray, float]:
    rng = np.random.default_rng(seed)
    coef, intercept = rng.normal(size=dim).astype(np.float32), float(rng.normal())
    name = name or f"collection_{collection_id}_v{seed}"
    save_classifier(directory, name, coef, intercept, {"collection_id": collection_id, "embedding_model": embedding_model})
    index_path = directory / INDEX_FILE
    index = json.loads(index_path.read_text()) if index_path.exists() else {"format": FORMAT, "collections": {}}
    index["collections"][collection_id] = {"model": name}
    index_path.write_text(json.dumps(index))
    return coef, intercept


def unit(seed: int, dim: int = DIM) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_probability_is_the_logistic_of_the_linear_score(tmp_path):
    coef, intercept = write_classifier(tmp_path, "3", "clip-x")
    clf = ClassifierStore(tmp_path).get("3")
    x = unit(1)
    expected = 1 / (1 + np.exp(-(float(coef.astype(np.float64) @ x) + intercept)))
    assert clf.probability(x) == pytest.approx(expected, rel=1e-6)
    assert clf.predict(x) == {"is_in_collection": expected >= 0.5, "probability": pytest.approx(expected, rel=1e-6)}


def test_sigmoid_is_stable_at_the_extremes():
    clf = Classifier("1", np.ones(2, np.float32), 0.0, 0.5, "m", {})
    assert clf.probability(np.array([1000.0, 1000.0])) == 1.0
    assert clf.probability(np.array([-1000.0, -1000.0])) == 0.0
    assert clf.predict(np.zeros(2)) == {"is_in_collection": True, "probability": 0.5}


def test_missing_directory_or_collection_is_none(tmp_path):
    assert ClassifierStore(tmp_path / "nope").get("1") is None
    write_classifier(tmp_path, "1", "m")
    store = ClassifierStore(tmp_path)
    assert store.get("2") is None and store.collection_ids() == ["1"]


def test_the_index_is_reloaded_when_it_changes(tmp_path):
    store = ClassifierStore(tmp_path)
    assert store.get("9") is None
    write_classifier(tmp_path, "9", "m", seed=1)
    first = store.get("9")
    assert first is not None
    write_classifier(tmp_path, "9", "m", seed=2)
    stat = (tmp_path / INDEX_FILE).stat()
    os.utime(tmp_path / INDEX_FILE, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = store.get("9")
    assert not np.array_equal(first.coef, second.coef)


def test_files_are_plain_arrays_and_json(tmp_path):
    write_classifier(tmp_path, "4", "m")
    with np.load(tmp_path / "collection_4_v0.npz", allow_pickle=False) as arrays:
        assert set(arrays.files) == {"coef", "intercept"} and arrays["coef"].dtype == np.float32
    meta = json.loads((tmp_path / "collection_4_v0.json").read_text())
    assert meta["embedding_dim"] == DIM and meta["threshold"] == 0.5 and meta["collection_id"] == "4"


def test_a_pickled_array_is_refused(tmp_path):
    write_classifier(tmp_path, "5", "m")
    np.savez(tmp_path / "collection_5_v0.npz", coef=np.array([object()], dtype=object), intercept=np.zeros(1))
    with pytest.raises(ClassifierError, match="unreadable"):
        ClassifierStore(tmp_path).get("5")


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a/b", "", ".hidden"])
def test_model_names_cannot_be_paths(tmp_path, name):
    (tmp_path / INDEX_FILE).write_text(json.dumps({"format": FORMAT, "collections": {"1": {"model": name}}}))
    with pytest.raises(ClassifierError, match="invalid model name"):
        ClassifierStore(tmp_path).get("1")
    with pytest.raises(ValueError):
        save_classifier(tmp_path, name, np.zeros(2), 0.0, {})


def test_broken_index_and_files_are_errors(tmp_path):
    (tmp_path / INDEX_FILE).write_text("{not json")
    with pytest.raises(ClassifierError, match="unreadable"):
        ClassifierStore(tmp_path).get("1")
    (tmp_path / INDEX_FILE).write_text(json.dumps({"collections": {}}))
    with pytest.raises(ClassifierError, match="format"):
        ClassifierStore(tmp_path).get("1")
    (tmp_path / INDEX_FILE).write_text(json.dumps({"format": FORMAT, "collections": {"1": {"model": "gone"}}}))
    with pytest.raises(ClassifierError, match="unreadable"):
        ClassifierStore(tmp_path).get("1")
    save_classifier(tmp_path, "nan", np.array([np.nan, 1.0]), 0.0, {})
    with pytest.raises(ClassifierError, match="non-finite"):
        load_classifier(tmp_path, "nan", "1")


def test_check_refuses_another_embedding_model_or_size(tmp_path):
    write_classifier(tmp_path, "1", "clip-tiny-random:abc")
    store = ClassifierStore(tmp_path)
    clf = store.get("1")
    store.check(clf, "clip-tiny-random:abc", DIM)
    with pytest.raises(ClassifierError, match="trained on embeddings of 'clip-tiny-random:abc'"):
        store.check(clf, "clip-vit-b-32-quickgelu-openai:c7b0", DIM)
    with pytest.raises(ClassifierError, match="expects 512-d"):
        store.check(clf, "clip-tiny-random:abc", 768)
