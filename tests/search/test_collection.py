"""Embedded search (FAISS): approximate candidates with exact re-ranking, the un-indexed
tail, filters and duplicates on the approximate path, background builds that never block
searches, and the approximate index surviving a restart. What both back ends share is in
test_search_backends.py."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from search.ann import AnnSettings, ApproxIndex
from search.collection import Collection
from search.manifest import Binding
from search.sqlite_store import open_store
from tests.search import helpers

DIM = 16
BINDING = Binding(model="m", dim=DIM)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    return helpers.clustered(n, DIM, seed)


@pytest.fixture()
def pool():
    with ThreadPoolExecutor(1) as p:
        yield p


def make(tmp_path, pool, **ann) -> Collection:
    return Collection(open_store(tmp_path, "ix", BINDING, create=True), AnnSettings(**ann), pool.submit)


def brute(vectors: np.ndarray, keys: list[str], q: np.ndarray, k: int) -> list[str]:
    return [keys[i] for i in np.argsort(-(vectors @ q), kind="stable")[:k]]


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_approximate_search_with_exact_rerank(tmp_path, pool, kind):
    coll = make(tmp_path, pool, kind=kind, exact_max=100, tail_max=50, candidates=64, nprobe=16, pq_m=8)
    x = clustered(2000)
    keys = [f"k{i}" for i in range(2000)]
    coll.upsert(keys, x)
    x = coll.store.stored_vectors(x)  # float16 on disk: the scores are its own
    coll.wait_idle()
    assert coll.uses_ann() and coll.stats()["approximate"]["built"]["size"] == 2000
    q = clustered(50, seed=2)
    recall = []
    for qi, hits in zip(q, coll.search(q, top_k=10)):
        for h in hits:  # exact re-rank: scores are the stored vectors' true scores
            assert h.score == pytest.approx(float(x[int(h.key[1:])] @ qi), abs=1e-5)
        recall.append(len({h.key for h in hits} & set(brute(x, keys, qi, 10))) / 10)
    assert np.mean(recall) >= 0.9
    coll.close()


def test_the_candidates_re_ranked_grow_with_the_index(tmp_path, pool, monkeypatch):
    """Up to CANDIDATES_AT live items the setting holds; above, it grows as sqrt(n / CANDIDATES_AT)
    (at 10M clustered vectors 200 candidates gave recall@10 0.873, the grown 632 0.98)."""
    settings = AnnSettings(candidates=200)
    assert [settings.candidates_for(n, 10) for n in (0, 20_000, 1_000_000, 4_000_000, 10_000_000)] == [200, 200, 200, 400, 632]
    assert settings.candidates_for(10, 100) == 400  # at least 4 x top_k
    monkeypatch.setattr("search.ann.CANDIDATES_AT", 500)
    coll = make(tmp_path, pool, exact_max=100, tail_max=10**6, candidates=40, pq_m=8)
    coll.upsert([f"k{i}" for i in range(2000)], clustered(2000))
    coll.wait_idle()
    asked = []
    real = ApproxIndex.search
    monkeypatch.setattr(ApproxIndex, "search", lambda self, qs, k: asked.append(k) or real(self, qs, k))
    coll.search(clustered(1, seed=3), top_k=5)
    assert asked == [80]  # 40 x sqrt(2000 / 500)
    coll.close()


def test_the_tail_is_searched_before_the_index_catches_up(tmp_path, pool):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=100, tail_max=10**9)
    x = clustered(500)
    coll.upsert([f"k{i}" for i in range(500)], x)
    coll.wait_idle()
    new = clustered(1, seed=9)
    coll.upsert(["fresh"], new)  # not in the approximate index (tail_max is huge)
    assert coll.ann.size == 500
    (hits,) = coll.search(new, top_k=1)
    stored = coll.store.stored_vectors(new)[0]  # float16 on disk: within 1e-3 of float32's score
    assert hits[0].key == "fresh" and hits[0].score == pytest.approx(float(stored @ new[0]), abs=1e-6)
    assert hits[0].score == pytest.approx(1.0, abs=1e-3)
    coll.upsert(["k0"], new)  # replaced: its old id is still in the index, as a tombstone
    (hits,) = coll.search(x[:1], top_k=3)
    assert "k0" not in [h.key for h in hits if h.score > 0.99999]
    coll.delete(["fresh"])
    (hits,) = coll.search(new, top_k=3)
    assert "fresh" not in [h.key for h in hits]
    coll.close()


def test_the_index_is_extended_and_retrained(tmp_path, pool):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=100, tail_max=100, rebuild_growth=2.0)
    x = clustered(1200)
    coll.upsert([f"k{i}" for i in range(300)], x[:300])
    coll.wait_idle()
    assert coll.ann.size == 300 and coll.ann.meta["trained_on"] == 300
    coll.upsert([f"k{i}" for i in range(300, 450)], x[300:450])  # tail 150 > 100: extended
    coll.wait_idle()
    assert coll.ann.size == 450 and coll.ann.meta["trained_on"] == 300
    coll.upsert([f"k{i}" for i in range(450, 1200)], x[450:])  # 4x the trained size: rebuilt
    coll.wait_idle()
    assert coll.ann.size == 1200 and coll.ann.meta["trained_on"] == 1200
    coll.close()


def test_searches_do_not_wait_for_a_build(tmp_path, pool, monkeypatch):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=100)
    x = clustered(400)
    started, release = threading.Event(), threading.Event()
    real_build = ApproxIndex.build

    def slow_build(*args, **kwargs):
        started.set()
        assert release.wait(30)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(ApproxIndex, "build", slow_build)
    coll.upsert([f"k{i}" for i in range(400)], x)
    assert started.wait(30)  # the build is running (and blocked) in the background
    (hits,) = coll.search(x[:1], top_k=1)  # answered now, exactly
    assert hits[0].key == "k0"
    coll.upsert(["more"], clustered(1, seed=5))  # writes do not wait either
    assert coll.stats()["approximate"]["building"] is True
    release.set()
    coll.wait_idle()
    assert coll.uses_ann()
    coll.close()


def test_the_approximate_index_is_reloaded_after_a_restart(tmp_path, pool):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=100)
    coll.upsert([f"k{i}" for i in range(300)], clustered(300))
    coll.wait_idle()
    built_at = coll.ann.meta["built_at"]
    coll.close()
    again = make(tmp_path, pool, kind="hnsw", exact_max=100)
    assert again.ann is not None and again.ann.meta["built_at"] == built_at and again.uses_ann()
    again.close()
    other_kind = make(tmp_path, pool, kind="ivfpq", exact_max=100)  # settings changed: rebuilt
    other_kind.wait_idle()
    assert other_kind.ann.meta["kind"] == "ivfpq"
    other_kind.close()


def test_filters_and_min_score_on_the_approximate_path(tmp_path, pool):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=50)
    x = clustered(200)
    metas = [{"color": "red" if i % 10 == 0 else "blue", "flag": i % 2 == 0, "n": i % 2} for i in range(200)]
    coll.upsert([f"k{i}" for i in range(200)], x, metas)
    coll.wait_idle()
    (hits,) = coll.search(x[5:6], top_k=50, where={"color": "red"})
    assert len(hits) == 20 and all(h.metadata["color"] == "red" for h in hits)
    (hits,) = coll.search(x[5:6], top_k=200, where={"flag": True})
    assert len(hits) == 100 and all(h.metadata["flag"] is True for h in hits)
    (hits,) = coll.search(x[5:6], top_k=200, where={"n": True})  # true is not 1
    assert hits == []
    (hits,) = coll.search(x[5:6], top_k=200, min_score=0.9)
    assert hits and all(h.score >= 0.9 for h in hits)
    coll.close()


def test_duplicates_on_the_approximate_path(tmp_path, pool):
    coll = make(tmp_path, pool, kind="hnsw", exact_max=50)
    x = clustered(120)
    keys = [f"k{i}" for i in range(120)]
    coll.upsert(keys, x)
    coll.upsert(["copy-of-k7", "near-k9"], np.stack([x[7], x[9] + 0.01]))
    coll.wait_idle()
    pairs = coll.duplicates(threshold=0.999)["pairs"]
    assert {(p["a"], p["b"]) for p in pairs} == {("copy-of-k7", "k7"), ("k9", "near-k9")}
    assert pairs[0]["score"] >= pairs[1]["score"]
    assert len(coll.duplicates(threshold=0.5, limit=3)["pairs"]) == 3
    coll.close()


def test_dead_rows_give_their_disk_space_back(tmp_path, pool, monkeypatch):
    from search import sqlite_upkeep

    monkeypatch.setattr(sqlite_upkeep, "RECLAIM_MIN_ROWS", 100)
    binding = Binding(model="m", dim=512)
    coll = Collection(open_store(tmp_path, "ix", binding, create=True), AnnSettings(exact_max=10**9), pool.submit)
    keys = [f"k{i}" for i in range(4000)]
    x = helpers.clustered(4000, 512)
    coll.upsert(keys, x)
    coll.wait_idle()
    one_copy = coll.store.file.disk_bytes()
    coll.upsert(keys, x[::-1])  # every key again: the first 4,000 rows are dead for good
    coll.wait_idle()  # the reclaim ran in the background
    assert coll.store.file.disk_bytes() < 1.1 * one_copy  # 2 MiB written twice, about 2 MiB held
    stored = coll.store.stored_vectors(x[::-1])
    for item, vec in zip(coll.get(keys, with_vectors=True), stored):
        np.testing.assert_array_equal(item.vector, vec)
    assert coll.check().ok
    coll.close()
    again = Collection(open_store(tmp_path, "ix", binding), AnnSettings(exact_max=10**9), pool.submit)
    (hits,) = again.search(stored[:1], top_k=1)
    assert hits[0].key == "k0" and again.check().ok  # k0 now holds what k3999 held
    again.close()
