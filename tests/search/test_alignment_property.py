"""Property test: random sequences of upserts, deletes, snapshots and restarts, checked
after every step against a plain dict (the brute-force model).

After each step: the store holds exactly the model's keys, each with the model's vector
and metadata; and for a random query, every search result's score is the dot product of
the query with the model's vector *for that result's key* (keys never drift away from
their vectors), and exact search returns the brute-force top k.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from search.ann import AnnSettings
from search.collection import Collection
from search.store import StoreSettings, open_store
from tests.search.helpers import BINDING, DIM

KEYS = st.sampled_from([f"img/{i}.jpg" for i in range(12)])
SEEDS = st.integers(0, 2**16)


def make_vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class StoreMachine(RuleBasedStateMachine):
    ann = AnnSettings(kind="hnsw", exact_max=10**9)  # exact search

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="prop-"))
        self.pool = ThreadPoolExecutor(1)
        self.model: dict[str, tuple[np.ndarray, dict]] = {}
        self.open()

    def open(self) -> None:
        store = open_store(self.dir, "ix", BINDING, create=True, settings=StoreSettings(snapshot_every=7))
        self.coll = Collection(store, self.ann, self.pool.submit)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=4), seeds=st.lists(SEEDS, min_size=4, max_size=4))
    def upsert(self, keys, seeds):
        vectors = np.stack([make_vector(s) for s in seeds[: len(keys)]])
        metas = [{"seed": s, "even": s % 2 == 0} for s in seeds[: len(keys)]]
        self.coll.upsert(keys, vectors, metas)
        for k, v, m in zip(keys, vectors, metas):
            self.model[k] = (v, m)

    @rule(keys=st.lists(KEYS, min_size=1, max_size=3))
    def delete(self, keys):
        deleted, missing = self.coll.delete(keys)
        assert set(deleted) == {k for k in keys if k in self.model}
        assert set(missing) == {k for k in keys if k not in self.model}
        for k in keys:
            self.model.pop(k, None)

    @rule()
    def snapshot(self):
        self.coll.store.snapshot()

    @rule(graceful=st.booleans())
    def restart(self, graceful):
        self.coll.wait_idle()
        self.coll.store.close(snapshot=graceful)
        self.open()

    @rule()
    def settle(self):
        self.coll.wait_idle()

    @invariant()
    def store_equals_model(self):
        store = self.coll.store
        assert sorted(store.keys()) == sorted(self.model)
        items = store.get(list(self.model), with_vectors=True)
        for item in items:
            vec, meta = self.model[item.key]
            np.testing.assert_allclose(item.vector, vec, atol=1e-6)
            assert item.metadata == meta
        assert store.check().ok

    @invariant()
    def results_belong_to_their_keys(self):
        q = make_vector(len(self.model) * 7919 + self.coll.store.table.lsn)
        (hits,) = self.coll.search(q[None], top_k=5)
        for hit in hits:
            assert abs(hit.score - float(self.model[hit.key][0] @ q)) < 1e-5
            assert hit.metadata == self.model[hit.key][1]
        self.check_top_k(q, hits)

    def check_top_k(self, q, hits):
        truth = sorted(((float(v @ q), k) for k, (v, _) in self.model.items()), reverse=True)[:5]
        assert len(hits) == len(truth)
        np.testing.assert_allclose([h.score for h in hits], [s for s, _ in truth], atol=1e-5)

    @precondition(lambda self: len(self.model) > 0)
    @rule(data=st.data())
    def similar_excludes_itself(self, data):
        key = data.draw(st.sampled_from(sorted(self.model)))
        hits = self.coll.similar(key, top_k=3)
        assert key not in [h.key for h in hits]
        for hit in hits:
            assert abs(hit.score - float(self.model[hit.key][0] @ self.model[key][0])) < 1e-5

    def teardown(self):
        self.coll.wait_idle()
        self.coll.store.close(snapshot=False)
        self.pool.shutdown()
        shutil.rmtree(self.dir, ignore_errors=True)


class ApproximateStoreMachine(StoreMachine):
    """The same sequences with an approximate index always in use (built in the background,
    extended, retrained): alignment must hold whatever the index proposes."""

    ann = AnnSettings(kind="hnsw", exact_max=0, tail_max=2, rebuild_growth=1.5, rebuild_dead=0.2, candidates=4)

    def check_top_k(self, q, hits):
        pass  # approximate: recall is measured by the benchmark, alignment is checked above


PROFILE = settings(max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck))
TestStoreAlignment = StoreMachine.TestCase
TestStoreAlignment.settings = PROFILE
TestApproximateAlignment = ApproximateStoreMachine.TestCase
TestApproximateAlignment.settings = PROFILE
