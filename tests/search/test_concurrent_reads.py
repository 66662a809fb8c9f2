"""Searches and reads while another thread replaces every item, again and again (embedded
back end): every search finds every item exactly once, with the score of the vector stored
with the metadata it shows, and `get` returns each key's own vector. Reads run without the
write lock: their SQLite read transaction must see the database exactly as the memory view
the scores came from (SqliteStore.consistent_read), or they retry. Meanwhile the dead rows'
disk blocks are given back again and again (never a live row's)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from search.ann import AnnSettings
from search.collection import Collection
from search.sqlite_store import open_store
from tests.search.helpers import BINDING, vector_for

KEYS = [f"k{i}" for i in range(40)]


def vec(key: str, round_: int) -> np.ndarray:
    return vector_for(f"{key}@{round_}")


def test_reads_see_one_state_while_everything_is_replaced(tmp_path, monkeypatch):
    from search import sqlite_store, sqlite_upkeep

    monkeypatch.setattr(sqlite_upkeep, "RECLAIM_MIN_ROWS", 300)
    monkeypatch.setattr(sqlite_store.SqliteStore, "reclaim_due", lambda self: True)  # after every write
    with ThreadPoolExecutor(1) as pool:
        coll = Collection(open_store(tmp_path, "ix", BINDING, create=True), AnnSettings(exact_max=10**9), pool.submit)
        coll.upsert(KEYS, np.stack([vec(k, 0) for k in KEYS]), [{"round": 0}] * len(KEYS))
        stop, errors = threading.Event(), []

        def write() -> None:
            round_ = 1
            while not stop.is_set():
                for start in range(0, len(KEYS), 8):  # a few keys at a time: states in between
                    part = KEYS[start : start + 8]
                    coll.upsert(part, np.stack([vec(k, round_) for k in part]), [{"round": round_}] * len(part))
                round_ += 1

        def read(seed: int) -> None:
            rng = np.random.default_rng(seed)
            try:
                for _ in range(150):
                    q = rng.standard_normal(BINDING.dim).astype(np.float32)
                    q /= np.linalg.norm(q)
                    (hits,) = coll.search(q[None], top_k=len(KEYS))
                    assert sorted(h.key for h in hits) == sorted(KEYS)  # none missing, none twice
                    for h in hits:
                        stored = coll.store.stored_vectors(vec(h.key, h.metadata["round"]))[0]
                        assert abs(h.score - float(stored @ q)) < 1e-5  # the score of the vector shown
                    for item in coll.get(KEYS[:5], with_vectors=True):
                        np.testing.assert_array_equal(item.vector, coll.store.stored_vectors(vec(item.key, item.metadata["round"]))[0])
            except Exception as exc:  # reported by the main thread
                errors.append(exc)

        writer = threading.Thread(target=write)
        readers = [threading.Thread(target=read, args=(s,)) for s in range(3)]
        writer.start()
        for r in readers:
            r.start()
        for r in readers:
            r.join(120)
        stop.set()
        writer.join(60)
        assert not errors, errors[0]
        assert coll.check().ok
        coll.close()
