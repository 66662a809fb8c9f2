"""Search on both back ends: best-first hits whose scores are their stored vectors' true
scores, filters (JSON equality), min_score, offset paging, top_k up to 10,000, similar by one
key or by several (with negative examples), duplicates and bad queries."""

from __future__ import annotations

import numpy as np
import pytest

from search.errors import InvalidItem, KeyNotFound
from search.manifest import Binding
from tests.search import helpers
from tests.search.backends import open_indexes

DIM = 16
BINDING = Binding(model="m", dim=DIM)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    return helpers.clustered(n, DIM, seed)


def brute(vectors: np.ndarray, keys: list[str], q: np.ndarray, k: int) -> list[str]:
    return [keys[i] for i in np.argsort(-(vectors @ q), kind="stable")[:k]]


@pytest.fixture()
def registry(place):
    cat = open_indexes(place)
    yield cat
    cat.close()


def filled(registry, n: int, metas=None):
    ix = registry.get("ix", BINDING, create=True)
    x = clustered(n)
    keys = [f"k{i}" for i in range(n)]
    ix.upsert(keys, x, metas if metas is not None else [{"i": i} for i in range(n)])
    return ix, ix.store.stored_vectors(x), keys  # as the back end keeps them (SQLite: float16)


def test_search_is_best_first_with_true_scores(registry):
    ix, x, keys = filled(registry, 300)
    q = clustered(5, seed=1)
    for qi, hits in zip(q, ix.search(q, top_k=7)):
        assert [h.key for h in hits] == brute(x, keys, qi, 7)  # HNSW at this size finds them all
        for h in hits:
            assert h.score == pytest.approx(float(x[int(h.key[1:])] @ qi), abs=1e-5)
            assert h.metadata == {"i": int(h.key[1:])}
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_filters_and_min_score(registry):
    metas = [{"color": "red" if i % 10 == 0 else "blue", "flag": i % 2 == 0, "n": i % 2, "tags": ["a"] if i < 5 else ["a", "b"]}
             for i in range(200)]
    ix, x, _ = filled(registry, 200, metas)
    (hits,) = ix.search(x[5:6], top_k=50, where={"color": "red"})
    assert len(hits) == 20 and all(h.metadata["color"] == "red" for h in hits)  # a selective filter: all 20
    (hits,) = ix.search(x[5:6], top_k=200, where={"flag": True})
    assert len(hits) == 100 and all(h.metadata["flag"] is True for h in hits)
    (hits,) = ix.search(x[5:6], top_k=200, where={"n": True})  # true is not 1
    assert hits == []
    (hits,) = ix.search(x[5:6], top_k=200, where={"tags": ["a"]})  # equality, not containment
    assert sorted(h.key for h in hits) == [f"k{i}" for i in range(5)]
    (hits,) = ix.search(x[5:6], top_k=200, where={"missing": None})
    assert hits == []
    (hits,) = ix.search(x[5:6], top_k=200, min_score=0.9)
    assert hits and all(h.score >= 0.9 for h in hits)
    with pytest.raises(InvalidItem):
        ix.search(x[:1], where=["color"])


def test_offset_pages_and_large_top_k(registry):
    ix, x, keys = filled(registry, 1200)
    (everything,) = ix.search(x[:1], top_k=10_000)
    assert len(everything) == 1200 and {h.key for h in everything} == set(keys)
    assert [h.score for h in everything] == sorted((h.score for h in everything), reverse=True)
    (page,) = ix.search(x[:1], top_k=10, offset=20)
    assert [h.key for h in page] == [h.key for h in everything[20:30]]
    (tail,) = ix.search(x[:1], top_k=50, offset=1190)
    assert [h.key for h in tail] == [h.key for h in everything[1190:]]
    (above,) = ix.search(x[:1], top_k=10_000, min_score=0.5)
    assert above == [h for h in everything if h.score >= 0.5]
    for bad in ({"top_k": 10_001}, {"top_k": 0}, {"offset": -1}, {"offset": 10_001}):
        with pytest.raises(InvalidItem):
            ix.search(x[:1], **{"top_k": 10, **bad})


def test_similar_by_one_or_several_examples(registry):
    ix, x, keys = filled(registry, 50)
    hits = ix.similar("k3", top_k=4)
    assert [h.key for h in hits] == brute(x, keys, x[3], 5)[1:]
    centroid = x[[1, 2]].mean(axis=0)
    centroid /= np.linalg.norm(centroid)
    hits = ix.similar(keys=["k1", "k2"], top_k=5)
    assert [h.key for h in hits] == [k for k in brute(x, keys, centroid, 7) if k not in ("k1", "k2")][:5]
    query = x[[1, 2]].mean(axis=0) - x[[7]].mean(axis=0)
    query /= np.linalg.norm(query)
    hits = ix.similar(keys=["k1", "k2"], negative_keys=["k7"], top_k=5)
    assert [h.key for h in hits] == [k for k in brute(x, keys, query, 8) if k not in ("k1", "k2", "k7")][:5]
    assert hits[0].score == pytest.approx(float(x[int(hits[0].key[1:])] @ query), abs=1e-5)
    assert [h.key for h in ix.similar("k3", top_k=2, offset=2)] == brute(x, keys, x[3], 5)[3:5]
    with pytest.raises(KeyNotFound, match="nope"):
        ix.similar(keys=["k1", "nope"])
    with pytest.raises(InvalidItem):
        ix.similar()
    with pytest.raises(InvalidItem, match="cancel"):
        ix.similar(keys=["k1"], negative_keys=["k1"])


def test_duplicates(registry):
    ix, x, _ = filled(registry, 120)
    ix.upsert(["copy-of-k7", "near-k9"], np.stack([x[7], x[9] + 0.01]))
    pairs = ix.duplicates(threshold=0.999)["pairs"]
    assert {(p["a"], p["b"]) for p in pairs} == {("copy-of-k7", "k7"), ("k9", "near-k9")}
    assert pairs[0]["score"] >= pairs[1]["score"]
    assert len(ix.duplicates(threshold=0.5, limit=3)["pairs"]) == 3


def test_bad_queries(registry):
    ix, _, _ = filled(registry, 1)
    for bad in (np.ones((1, DIM + 1)), np.zeros((1, DIM)), np.full((1, DIM), np.inf)):
        with pytest.raises(InvalidItem):
            ix.search(bad)
