"""PostgreSQL's bulk path (search/pg_bulk.py): a large batch goes in by binary COPY with the
same upsert semantics as a small one; against a small table it defers the HNSW index, and
searches stay exact meanwhile; the builder builds it once the writes go quiet (also after a
restart, and after a build cut short); one server builds while the others wait; rows
written during a build are in the index after it."""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
import pytest

from search import pg_bulk
from search.pg_bulk import build_index, hnsw_state
from search.pg_indexes import PgIndexRegistry
from search.pg_store import PgSettings
from tests.postgres import fresh_database
from tests.search.helpers import BINDING, clustered
from tests.search.test_thumbnails import webp

BULK = pg_bulk.BULK_MIN_ROWS


@pytest.fixture()
def url() -> str:
    return fresh_database("bulk")


def open_indexes(url: str, quiet_s: float = 0.2) -> PgIndexRegistry:
    registry = PgIndexRegistry(PgSettings(url=url, connect_timeout=2))
    registry.db.builder.quiet_s = quiet_s
    return registry


def state(index) -> str:
    with index.store.db.connection() as conn:
        return hnsw_state(conn, index.store.table)


def wait_built(index, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while state(index) != "built":
        assert time.monotonic() < deadline, f"the HNSW index is {state(index)} after {timeout} s"
        time.sleep(0.1)


def nearest_through_hnsw(index, q: np.ndarray) -> str:
    with index.store.db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        return conn.execute(f"SELECT key FROM {index.store.table} ORDER BY embedding <=> %s LIMIT 1", (q,)).fetchone()[0]


def uses_hnsw(index, q: np.ndarray) -> bool:
    """Whether a search can go through the HNSW index (the planner may prefer a scan of a small table)."""
    with index.store.db.connection() as conn, conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(f"EXPLAIN SELECT key FROM {index.store.table} ORDER BY embedding <=> %s LIMIT 5", (q,)).fetchall()
    return any("_embedding" in line[0] for line in plan)


def exact_top(x: np.ndarray, keys: list[str], q: np.ndarray, k: int) -> list[str]:
    return [keys[i] for i in np.argsort(-(x @ q))[:k]]


def test_the_copy_path_has_the_upsert_semantics_of_the_small_path(url):
    registry = open_indexes(url, quiet_s=60)
    small, large = registry.get("small", BINDING, create=True), registry.get("large", BINDING, create=True)
    x = clustered(BULK + 20, BINDING.dim, seed=1)
    keys = [f"k{i}" for i in range(len(x))]
    keys[5] = keys[3]  # a key twice in one batch: the last wins
    metas = [{"i": i} for i in range(len(x))]
    sources = [f"https://example.org/{i}.jpg" for i in range(len(x))]
    thumbs = [webp((i, 0, 0)) if i % 50 == 0 else None for i in range(len(x))]
    ids = {}
    for name, index in (("small", small), ("large", large)):
        first = []
        for start in (range(0, len(x), 7) if name == "small" else [0]):  # batches of 7, or one batch
            stop = len(x) if name == "large" else start + 7
            first += index.upsert(keys[start:stop], x[start:stop], metas[start:stop], sources[start:stop], thumbs[start:stop])
        assert index.store.thumbnail("k50") == thumbs[50] and index.store.thumbnail("k51") is None
        again = index.upsert(keys[:BULK], x[:BULK] * 2, [{"again": True}] * BULK)  # replace, no source now
        assert index.store.thumbnail("k50") is None  # replaced without one
        ids[name] = (first, again)
        got = {it.key: it for it in index.store.get(keys, with_vectors=True)}
        assert got["k3"].metadata == {"again": True} and got["k3"].source is None
        np.testing.assert_allclose(got["k3"].vector, x[5], atol=1e-6)  # the last of the batch, normalized
        last = keys[-1]
        assert got[last].metadata == {"i": len(x) - 1} and got[last].source == sources[-1]
        assert index.store.count == len(set(keys))
        assert index.store.check().ok
    for name in ("small", "large"):
        first, again = ids[name]
        by_key = {it.key: it.id for it in (small if name == "small" else large).store.get(keys)}
        assert first[len(keys) - 1] == by_key[keys[-1]] and first[3] == first[5] == by_key["k3"]
        assert again == [by_key[k] for k in keys[:BULK]]  # replacing keeps an item's id
    registry.close()


def test_a_large_batch_defers_the_index_and_the_builder_builds_it(url):
    registry = open_indexes(url)
    index = registry.get("ix", BINDING, create=True)
    assert state(index) == "built"  # created with its HNSW index
    x = clustered(3 * BULK, BINDING.dim, seed=2)
    keys = [f"k{i}" for i in range(len(x))]
    q = clustered(20, BINDING.dim, seed=3)
    index.upsert(keys[:BULK], x[:BULK])
    assert state(index) == "absent" and registry.db.builder.armed == [index.store.table]
    assert index.stats()["index_type"] == "exact" and index.stats()["approximate"]["hnsw"] == "absent"
    for start in range(BULK, len(x), BULK):
        index.upsert(keys[start : start + BULK], x[start : start + BULK])
        assert state(index) == "absent"
    for qq in q:  # exact meanwhile
        assert not uses_hnsw(index, qq)
        (hits,) = index.search(qq[None], 10)
        assert [h.key for h in hits] == exact_top(x, keys, qq, 10)
    wait_built(index)
    deadline = time.monotonic() + 10  # the builder records its build and disarms just after
    while registry.db.builder.armed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert registry.db.builder.last_build["rows"] == len(x) and not registry.db.builder.armed
    assert index.stats()["index_type"] == "approximate"
    assert uses_hnsw(index, q[0])
    recall = np.mean([len({h.key for h in index.search(qq[None], 10)[0]} & set(exact_top(x, keys, qq, 10))) / 10 for qq in q])
    assert recall >= 0.9
    registry.close()


def filled(url: str, n: int, first: int, seed: int):
    """A registry (its builder idle), an index, n vectors and their keys; the first `first` written."""
    registry = open_indexes(url, quiet_s=60)
    index = registry.get("ix", BINDING, create=True)
    x = clustered(n, BINDING.dim, seed=seed)
    keys = [f"k{i}" for i in range(len(x))]
    index.upsert(keys[:first], x[:first])
    return registry, index, x, keys


def test_a_batch_small_against_the_table_keeps_the_index(url):
    registry, index, x, keys = filled(url, 11 * BULK, 10 * BULK, seed=4)
    build_index(registry.db, index.store.table)
    assert state(index) == "built"
    index.upsert(keys[10 * BULK :], x[10 * BULK :])  # a tenth of the table: inserted into the graph
    assert state(index) == "built"
    (hits,) = index.search(x[-1][None], 1)
    assert hits[0].key == keys[-1]
    registry.close()


def test_a_restart_builds_what_an_import_left_unbuilt_and_a_build_cut_short(url):
    registry = open_indexes(url, quiet_s=60)
    index = registry.get("ix", BINDING, create=True)
    x = clustered(BULK, BINDING.dim, seed=5)
    index.upsert([f"k{i}" for i in range(BULK)], x)
    registry.close()  # the server stops before the table went quiet

    restarted = open_indexes(url)
    assert restarted.open_all() == {"ix": "ok"} and restarted.db.builder.armed == [index.store.table]
    wait_built(restarted.get("ix"))
    restarted.close()

    with psycopg.connect(url, autocommit=True) as conn:  # as a build killed half-way leaves it
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)", (f"{index.store.table}_embedding",))
    again = open_indexes(url)
    assert state(again.get("ix")) == "unfinished" and again.get("ix").stats()["index_type"] == "exact"
    again.open_all()
    wait_built(again.get("ix"))
    again.close()


def test_one_builder_at_a_time(url):
    registry, other = open_indexes(url, quiet_s=60), open_indexes(url, quiet_s=60)
    index = registry.get("ix", BINDING, create=True)
    index.upsert([f"k{i}" for i in range(BULK)], clustered(BULK, BINDING.dim, seed=6))
    first: list[str] = []
    with psycopg.connect(url) as writer:  # an open write: the first build waits for it, under way
        unit = "[" + ",".join(["1"] + ["0"] * (BINDING.dim - 1)) + "]"
        writer.execute(f"INSERT INTO {index.store.table} (key, embedding) VALUES ('w', %s)", (unit,))
        builder = threading.Thread(target=lambda: first.append(build_index(registry.db, index.store.table)))
        builder.start()
        wait_for_build_under_way(url)
        assert build_index(other.db, index.store.table) == "busy"  # another server's builder waits
        assert state(index) == "unfinished"
        writer.commit()
    builder.join(60)
    assert first == ["built"] and state(index) == "built"
    assert build_index(other.db, index.store.table) == "exists"
    registry.close()
    other.close()


def wait_for_build_under_way(url: str) -> None:
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute("SELECT count(*) FROM pg_stat_progress_create_index").fetchone()[0]:
            assert time.monotonic() < deadline
            time.sleep(0.01)


def test_rows_written_during_a_build_are_in_the_index(url):
    registry, index, x, keys = filled(url, 30 * BULK, 20 * BULK, seed=7)
    builder = threading.Thread(target=build_index, args=(registry.db, index.store.table))
    builder.start()
    for start in range(20 * BULK, len(x), 50):  # small writes while it builds
        index.upsert(keys[start : start + 50], x[start : start + 50])
    builder.join(120)
    assert state(index) == "built"
    late = range(20 * BULK, len(x), 37)
    assert uses_hnsw(index, x[0])
    for i in late:  # found through the graph alone
        assert nearest_through_hnsw(index, x[i]) == keys[i]
    assert index.store.count == len(x) and index.store.check().ok
    registry.close()


def test_dropping_an_index_while_it_builds(url):
    registry = open_indexes(url, quiet_s=60)
    index = registry.get("ix", BINDING, create=True)
    index.upsert([f"k{i}" for i in range(40 * BULK)], clustered(40 * BULK, BINDING.dim, seed=8))
    result: list = []
    builder = threading.Thread(target=lambda: result.append(_build_or_error(registry, index)))
    builder.start()
    wait_for_build_under_way(url)
    assert registry.drop("ix")  # cancels the build rather than waiting for it (or deadlocking)
    builder.join(60)
    assert "canceling statement" in result[0], result
    assert registry.names() == []
    registry.close()


def _build_or_error(registry, index) -> str:
    try:
        return build_index(registry.db, index.store.table)
    except psycopg.Error as exc:
        return str(exc)
