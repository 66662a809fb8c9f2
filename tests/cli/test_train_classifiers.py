"""image-embed train-classifiers: npz and image-folder data, versions, bake-off, pruning, index."""

from __future__ import annotations

import importlib
import json
import time

import numpy as np
import pytest

from gateway.analyze.classifiers import FORMAT, INDEX_FILE, ClassifierStore
from models import get_spec

MODEL = "clip-test:abc"


@pytest.fixture(scope="module")
def script():
    module = importlib.import_module("cli.train_classifiers")
    yield module


def separable(n_pos=40, n_neg=120, dim=64, seed=0, noise=0.6):
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=dim)
    x = rng.normal(scale=noise, size=(n_pos + n_neg, dim))
    x[:n_pos] += direction / np.linalg.norm(direction) * 2
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]


def write_npz(path, x, y, model=MODEL):
    extra = {"embedding_model": np.array(model)} if model else {}
    np.savez(path, embeddings=x, labels=y, **extra)


def train(script, data, out, *extra):
    return script.main(["--data", str(data), "--out", str(out), *extra])


def test_trains_a_usable_classifier_and_writes_the_index(script, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable()
    write_npz(data / "12.npz", x, y)
    assert train(script, data, out) == 0
    index = json.loads((out / INDEX_FILE).read_text())
    assert index["format"] == FORMAT
    entry = index["collections"]["12"]
    assert entry["metric"] == "macro_precision" and entry["score"] > 0.9 and entry["embedding_model"] == MODEL
    assert (out / f"{entry['model']}.npz").exists() and (out / f"{entry['model']}.json").exists()
    clf = ClassifierStore(out).get("12")
    predictions = np.array([clf.predict(v)["is_in_collection"] for v in x])
    assert (predictions == y.astype(bool)).mean() > 0.9
    meta = clf.metadata
    assert meta["class_weight"] == "balanced" and meta["n_test"] == 32 and meta["positives"] == 40
    assert "collection 12: new collection_12_" in capsys.readouterr().out


def test_versions_compete_and_only_the_best_n_are_kept(script, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable(seed=1)
    write_npz(data / "7.npz", x, y)
    for _ in range(3):
        assert train(script, data, out, "--keep", "2") == 0
        time.sleep(0.01)
    kept = sorted(p.stem for p in out.glob("collection_7_*.npz"))
    assert len(kept) == 2 and len(list(out.glob("collection_7_*.json"))) == 2
    best = json.loads((out / INDEX_FILE).read_text())["collections"]["7"]["model"]
    assert best in kept


def test_the_bake_off_ranks_by_macro_precision_not_by_age(script, tmp_path):
    from gateway.analyze.classifiers import save_classifier

    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable(seed=2)
    write_npz(data / "5.npz", x, y)
    assert train(script, data, out) == 0
    (good,) = [p.stem for p in out.glob("collection_5_*.npz")]
    # a newer version that calls everything "in": macro precision ~0.5 * 40/160 + 0 -> low
    newest = "collection_5_99990101T000000000000Z"
    save_classifier(out, newest, np.zeros(x.shape[1]), 5.0, {"collection_id": "5", "embedding_model": MODEL})
    assert train(script, data, out, "--keep", "2") == 0
    kept = sorted(p.stem for p in out.glob("collection_5_*.npz"))
    assert newest not in kept and good in kept and len(kept) == 2
    entry = json.loads((out / INDEX_FILE).read_text())["collections"]["5"]
    assert entry["model"] != newest and entry["score"] > 0.5  # "all in" scores (8/32 + 0) / 2 = 0.125


def test_other_collections_and_models_are_left_alone(script, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable(seed=3)
    write_npz(data / "1.npz", x, y)
    write_npz(data / "2.npz", x, y, model="another-clip:def")
    assert train(script, data, out) == 0
    assert train(script, data, out, "--collections", "1", "--keep", "1") == 0
    index = json.loads((out / INDEX_FILE).read_text())["collections"]
    assert set(index) == {"1", "2"} and index["2"]["embedding_model"] == "another-clip:def"
    assert len(list(out.glob("collection_2_*.npz"))) == 1


def test_the_default_embedding_model_is_this_profiles_clip(script, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable(seed=4)
    write_npz(data / "9.npz", x, y, model=None)
    assert train(script, data, out) == 0
    assert json.loads((out / INDEX_FILE).read_text())["collections"]["9"]["embedding_model"] == get_spec("clip").store_tag
    assert train(script, data, out, "--embedding-model", "x:1") == 0
    assert json.loads((out / INDEX_FILE).read_text())["collections"]["9"]["embedding_model"] == "x:1"


def test_bad_collections_are_reported_and_the_others_trained(script, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    x, y = separable(seed=5)
    write_npz(data / "good.npz", x, y)
    write_npz(data / "oneclass.npz", x, np.ones(len(x), int))
    write_npz(data / "fewpos.npz", x, np.r_[np.ones(3, int), np.zeros(len(x) - 3, int)])
    write_npz(data / "labels.npz", x, np.full(len(x), 2))
    np.savez(data / "nolabels.npz", embeddings=x)
    np.savez(data / "pickled.npz", embeddings=np.array([object()] * 3, dtype=object), labels=np.zeros(3))
    bad = x.copy()
    bad[0, 0] = np.nan
    write_npz(data / "nan.npz", bad, y)
    (data / "folder").mkdir()
    assert train(script, data, out) == 1
    err = capsys.readouterr().err
    assert "collection oneclass: 160 positive and 0 negative" in err
    assert "collection fewpos: 3 positive" in err and "at least 5" in err
    assert "collection labels: labels must be 0 or 1" in err
    assert "collection nolabels: nolabels.npz lacks the array(s) labels" in err
    assert "collection pickled: pickled.npz is not a readable .npz of plain arrays" in err
    assert "collection nan: embeddings contain NaN" in err
    assert "collection folder:" in err and "positive/ and a negative/" in err
    assert set(json.loads((out / INDEX_FILE).read_text())["collections"]) == {"good"}


def test_usage_errors(script, tmp_path, capsys):
    assert train(script, tmp_path / "missing", tmp_path / "out") == 2
    (tmp_path / "empty").mkdir()
    assert train(script, tmp_path / "empty", tmp_path / "out") == 2
    assert train(script, tmp_path / "empty", tmp_path / "out", "--collections", "3") == 2
    assert "no training data for collection(s) 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train(script, tmp_path, tmp_path, "--keep", "0")


def test_image_folders_need_a_server(script, tmp_path, capsys):
    data = tmp_path / "data"
    for label in ("positive", "negative"):
        (data / "4" / label).mkdir(parents=True)
    assert train(script, data, tmp_path / "out") == 1
    assert "pass --server URL" in capsys.readouterr().err
