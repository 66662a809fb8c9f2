"""image-embed convert-classifiers on seed 002's files, made here as seed 002 made them: a
LogisticRegression(class_weight="balanced", C=0.1, solver="liblinear") on CLIP vectors, saved
with joblib as `collection_<id>_classifier_<date>.pkl` and with pickle protocol 4 as
`collection_<id>_compatible_classifier.pkl`, and best_models.json naming the best version."""

from __future__ import annotations

import importlib
import json
import pathlib
import pickle

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gateway.analyze.classifiers import FORMAT, INDEX_FILE, ClassifierStore
from models import get_spec


@pytest.fixture(scope="module")
def script():
    module = importlib.import_module("cli.convert_classifiers")
    yield module


def training(dim: int, seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = (x[:, 0] + 0.3 * rng.normal(size=n)) > 0.4  # imbalanced, booleans as the seed's labels
    return x, y


def seed_classifier(dim: int, seed: int = 0):
    x, y = training(dim, seed)
    return LogisticRegression(class_weight="balanced", C=0.1, solver="liblinear", random_state=42).fit(x, y)


def seed_folder(tmp_path: pathlib.Path) -> tuple[pathlib.Path, dict]:
    """Seed 002's trained_classifiers/: four collections in its two index formats."""
    old = tmp_path / "old"
    old.mkdir()
    x12, y12 = training(512, 1)
    models = {
        "7": seed_classifier(512),
        "12": make_pipeline(StandardScaler(), LogisticRegression()).fit(x12, y12.astype(int)),  # scaled, 0/1 labels
        "3": seed_classifier(32, seed=2),  # on DINOv2 vectors (the tiny profile's are 32-d)
        "9": RandomForestClassifier(n_estimators=3).fit(*training(512, 3)),
    }
    joblib.dump(models["7"], old / "collection_7_classifier_2025-12-01_101010.pkl")
    with open(old / "collection_7_compatible_classifier.pkl", "wb") as f:
        pickle.dump(models["7"], f, protocol=4)
    joblib.dump(models["12"], old / "collection_12_classifier_2025-11-02_004720.pkl")
    joblib.dump(models["3"], old / "collection_3_classifier_2025-10-01_000000.pkl")
    with open(old / "collection_9_compatible_classifier.pkl", "wb") as f:
        pickle.dump(models["9"], f, protocol=4)
    (old / "best_models.json").write_text(json.dumps({
        "7": "collection_7_classifier_2025-12-01_101010.pkl",  # the first format: a file name
        "12": {"model_file": "collection_12_classifier_2025-11-02_004720.pkl", "derivative_type": "whole_image",
               "embedding_type": "embed_clip_vit_b_32", "dimensionality": 512},
        "3": {"model_file": "collection_3_classifier_2025-10-01_000000.pkl", "derivative_type": "prominent_face",
              "embedding_type": "embed_dino_v2", "dimensionality": 32},
    }, indent=4))
    return old, models


def test_converts_seed_002s_classifiers_to_the_same_probabilities(script, tmp_path, capsys):
    old, models = seed_folder(tmp_path)
    out = tmp_path / "new"
    assert script.main([str(old), "--out", str(out), "--i-trust-these-files"]) == 1  # collection 9 cannot convert
    err = capsys.readouterr().err
    assert "unpickling runs code" in err and "done: 3 collection(s) converted" in err
    assert "collection 9: collection_9_compatible_classifier.pkl holds RandomForestClassifier" in err
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["format"] == FORMAT and sorted(index["collections"]) == ["12", "3", "7"]
    assert index["collections"]["7"]["converted_from"] == "collection_7_compatible_classifier.pkl"
    store = ClassifierStore(out)
    expected_models = {"7": get_spec("clip"), "12": get_spec("clip"), "3": get_spec("dinov2")}
    for cid, spec in expected_models.items():
        clf = store.get(cid)
        store.check(clf, spec.store_tag, spec.output_dim)  # what classify checks before using it
        x, _ = training(spec.output_dim, seed=50)
        x = x.astype(np.float32)
        positive = list(models[cid].classes_).index(1)
        expected = models[cid].predict_proba(x)[:, positive]
        got = np.array([clf.probability(v) for v in x])
        assert np.abs(got - expected).max() < 1e-6, cid
        assert [clf.predict(v)["is_in_collection"] for v in x] == [bool(p) for p in models[cid].predict(x)]
    assert store.get("3").metadata["derivative_type"] == "prominent_face"
    assert not list(out.glob("*.pkl"))  # nothing the server could unpickle


class Tripwire:
    """Unpickling this touches a file: proof that something was unpickled."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_nothing_is_unpickled_without_the_flag(script, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    marker = tmp_path / "unpickled"
    with open(old / "collection_1_compatible_classifier.pkl", "wb") as f:
        pickle.dump(Tripwire(marker), f, protocol=4)
    assert script.main([str(old), "--out", str(tmp_path / "new")]) == 2
    assert "refusing to unpickle" in capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "new").exists()
    assert script.main([str(old), "--out", str(tmp_path / "new"), "--i-trust-these-files"]) == 1
    assert marker.exists()  # with the flag, the file's code ran: why the flag and the warning exist


def test_the_source_folder_is_not_overwritten(script, tmp_path, capsys):
    old, _ = seed_folder(tmp_path)
    before = (old / "best_models.json").read_text()
    assert script.main([str(old), "--out", str(old), "--i-trust-these-files"]) == 2
    assert (old / "best_models.json").read_text() == before


def test_vectors_of_another_size_need_the_model_named(script, tmp_path, capsys):
    old = tmp_path / "old"
    old.mkdir()
    joblib.dump(seed_classifier(768), old / "collection_5_compatible_classifier.pkl")
    assert script.main([str(old), "--out", str(tmp_path / "new"), "--i-trust-these-files"]) == 1
    assert "takes 768-d vectors; clip makes 512-d (pass --model KEY)" in capsys.readouterr().err
